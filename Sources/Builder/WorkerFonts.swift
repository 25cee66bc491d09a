import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ImagingCore
import Planner
import ProcessLanguage
import RenderWorkers
import Synchronization

/// The font file of a watermark `type` outside the seven OSS names (any installed fontconfig
/// family), asked of the render worker (`--describe --font TYPE`): derive links no fontconfig.
/// Each answer, found or not, is kept for the life of the process, at most `capacity` of them
/// (a server answering requests that name ever new families asks again past that). The same
/// holds for how each text is drawn (`drawing`), which is kept on disk too.
public final class WorkerFonts: Sendable {
    static let capacity = 1_024
    private let worker: String
    private let environment: [String: String]
    private let known: Mutex<[String: Answer?]>
    /// `TextToDraw.key` → how that text is drawn (`drawing`), asked once.
    private let drawnWith: Mutex<[String: TextDrawing]>

    /// A font's file and how its glyphs are drawn (`FontCatalog.Resolved`, from the worker).
    struct Answer: Sendable {
        var file: String
        var rendering: String?
    }

    /// Where the drawing answers are kept between commands (beside the engine cache entry),
    /// valid only for the same `inputs` (`Found.inputs`: the stat of every file and folder
    /// fontconfig's answers depend on); nil keeps them for this process only.
    private let store: String?
    private let inputs: String
    private let storeRead = Mutex(false)

    init(worker: String, environment: [String: String], known: [String: String], rendering: [String: String] = [:],
         store: String? = nil, inputs: String = "") {
        self.worker = worker
        self.environment = environment
        self.store = store
        self.inputs = inputs
        var answers: [String: Answer?] = [:]
        for (type, file) in known { answers[type] = .some(Answer(file: file, rendering: rendering[type])) }
        for type in Watermark.fonts where answers[type] == nil { answers[type] = .some(nil) }   // the worker looked: missing
        self.known = Mutex(answers)
        self.drawnWith = Mutex([:])
    }

    /// How the render worker draws `text` (`TextDrawing`: every face at the drawn size, the
    /// environment, or why it cannot). Unknown when the worker cannot be asked: then a face
    /// nobody can name is recorded, so the plan rebuilds rather than calling the output up to
    /// date, and asks again next time.
    public func drawing(_ text: TextToDraw) -> TextDrawing {
        readStore()
        if let drawing = drawnWith.withLock({ $0[text.key] }) { return drawing }
        ask(types: [], drawn: [text])
        return drawnWith.withLock { $0[text.key] } ?? TextDrawing.unknown
    }

    /// Asks the worker at once, in one start, for the font files of `types` and the drawing of
    /// every text of `drawn` not yet known: a plan of many text watermarks starts one worker,
    /// not one per text.
    public func prefetch(types: [String], drawn: [TextToDraw]) {
        readStore()
        let missingTypes = known.withLock { known in types.filter { known[$0] == nil && Watermark.isFamilyName($0) } }
        let missingTexts = drawnWith.withLock { drawings in Array(Set(drawn.filter { drawings[$0.key] == nil })) }
        guard !missingTypes.isEmpty || !missingTexts.isEmpty else { return }
        ask(types: Array(Set(missingTypes)).sorted(), drawn: missingTexts)
    }

    private func ask(types: [String], drawn: [TextToDraw]) {
        // Few arguments per start: a manifest's texts are few, but each may be long.
        var start = 0
        repeat {
            let batch = Array(drawn[start..<min(drawn.count, start + 64)])
            guard let report = try? RenderWorkerPool.describe(executable: worker, environment: environment,
                                                              fontTypes: start == 0 ? types : [], drawn: batch) else { return }
            if start == 0 {
                known.withLock { known in
                    for type in types where known.count < Self.capacity {
                        known[type] = .some(report.fonts[type].map { Answer(file: $0, rendering: report.fontRendering[type]) })
                    }
                }
            }
            drawnWith.withLock { drawings in
                for text in batch where drawings.count < Self.capacity {
                    if let answer = report.drawings?[text.key] { drawings[text.key] = answer }
                }
            }
            start += 64
        } while start < drawn.count
        if !drawn.isEmpty { writeStore() }
    }

    /// 2: every face at the drawn size, the environment, and why a text cannot be drawn.
    /// 3: faces without their locale-ordered names, the environment without the language's variables.
    static let storeHeader = "derive-text-drawings/3"

    /// Reads the kept answers once, when they were made against the same inputs.
    private func readStore() {
        guard let store, !inputs.isEmpty, storeRead.withLock({ read in defer { read = true }; return !read }),
              let data = FileManager.default.contents(atPath: store) else { return }
        var input = EntryReader(bytes: [UInt8](data))
        guard let header = input.line(), header.elementsEqual(Self.storeHeader.utf8), input.string() == inputs, let count = input.count() else { return }
        var read: [String: TextDrawing] = [:]
        for _ in 0..<min(count, Self.capacity) {
            guard let key = input.string(), let environment = input.string(), let undrawable = input.string(), let faces = input.count() else { return }
            var list: [DrawnFace] = []
            for _ in 0..<faces {
                guard let family = input.string(), let file = input.string(), let rendering = input.string() else { return }
                list.append(DrawnFace(family: family, file: file, rendering: rendering))
            }
            // An empty reason is none: the worker's reasons are never empty.
            read[key] = TextDrawing(faces: list, environment: environment, undrawable: undrawable.isEmpty ? nil : undrawable)
        }
        guard input.atEnd else { return }
        drawnWith.withLock { drawings in drawings.merge(read) { mine, _ in mine } }
    }

    /// Keeps every answer known (a fresh file renamed over the old one; a failure only costs the
    /// next command a worker start).
    private func writeStore() {
        guard let store, !inputs.isEmpty else { return }
        let all = drawnWith.withLock { $0 }
        var out = EntryWriter()
        out.line(Array(Self.storeHeader.utf8))
        out.string(inputs)
        out.number(all.count)
        for (key, drawing) in all.sorted(by: { $0.key < $1.key }) {
            out.string(key)
            out.string(drawing.environment)
            out.string(drawing.undrawable ?? "")
            out.number(drawing.faces.count)
            for face in drawing.faces { out.string(face.family); out.string(face.file); out.string(face.rendering) }
        }
        let folder = (store as NSString).deletingLastPathComponent
        guard StateFolderTrust.isOwnFolder(folder) else { return }
        let temporary = store + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(out.bytes)) else { return }
        if rename(temporary, store) != 0 { unlink(temporary) }
    }

    /// The font file of `type`, nil when it is not installed, not a family name, or the worker
    /// cannot be asked.
    public func file(_ type: String) -> String? { answer(type)?.file }

    /// How the font of `type` is drawn (antialiasing, hinting, …), nil when it is not installed.
    public func rendering(_ type: String) -> String? { answer(type)?.rendering }

    /// The family fontconfig draws instead of the installed family `type` (a strong alias,
    /// `FontCatalog.substitute`); nil when it draws the family itself, the family is not
    /// installed, or the worker cannot be asked. Asked anew: only a refused font asks.
    public func substitute(_ type: String) -> String? {
        guard Watermark.isFamilyName(type),
              let report = try? RenderWorkerPool.describe(executable: worker, environment: environment, fontTypes: [type]) else { return nil }
        return report.fontSubstitutes?[type]
    }

    /// Why the render worker cannot draw `text` in the font of `type` (every character no face
    /// nor fallback has, `FontCatalog.checkDrawable`); nil when it can, or cannot be asked (the
    /// build refuses such a text when it renders). Asked anew each time: `derive validate` asks
    /// once per watermark text.
    public func undrawable(_ text: String, type: String) -> String? {
        guard let report = try? RenderWorkerPool.describe(executable: worker, environment: environment, drawable: [(type, text)]),
              let answer = report.undrawable?[EngineReport.drawableKey(text: text, type: type)], !answer.isEmpty else { return nil }
        return answer
    }

    private func answer(_ type: String) -> Answer? {
        if let answer = known.withLock({ $0[type] }) { return answer }
        guard Watermark.isFamilyName(type) else { return nil }
        guard let report = try? RenderWorkerPool.describe(executable: worker, environment: environment, fontTypes: [type]) else { return nil }
        let answer = report.fonts[type].map { Answer(file: $0, rendering: report.fontRendering[type]) }
        known.withLock { if $0.count < Self.capacity { $0[type] = .some(answer) } }
        return answer
    }
}
