import Foundation
import ProcessLanguage
import RenderWorkers
import Synchronization

/// The font file of a watermark `type` outside the seven OSS names (any installed fontconfig
/// family), asked of the render worker (`--describe --font TYPE`): derive links no fontconfig.
/// Each answer, found or not, is kept for the life of the process, at most `capacity` of them
/// (a server answering requests that name ever new families asks again past that).
public final class WorkerFonts: Sendable {
    static let capacity = 1_024
    private let worker: String
    private let environment: [String: String]
    private let known: Mutex<[String: Answer?]>

    /// A font's file and how its glyphs are drawn (`FontCatalog.Resolved`, from the worker).
    struct Answer: Sendable {
        var file: String
        var rendering: String?
    }

    init(worker: String, environment: [String: String], known: [String: String], rendering: [String: String] = [:]) {
        self.worker = worker
        self.environment = environment
        var answers: [String: Answer?] = [:]
        for (type, file) in known { answers[type] = .some(Answer(file: file, rendering: rendering[type])) }
        for type in Watermark.fonts where answers[type] == nil { answers[type] = .some(nil) }   // the worker looked: missing
        self.known = Mutex(answers)
    }

    /// The font file of `type`, nil when it is not installed, not a family name, or the worker
    /// cannot be asked.
    public func file(_ type: String) -> String? { answer(type)?.file }

    /// How the font of `type` is drawn (antialiasing, hinting, …), nil when it is not installed.
    public func rendering(_ type: String) -> String? { answer(type)?.rendering }

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
