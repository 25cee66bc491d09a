import Builder
import Confinement
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ImageSimilarity
import ImagingCore
import Manifest
import Planner
import ProcessLanguage

/// Renders both sides of each changed output into a report folder (never a bucket), compares
/// them and fills in bytes after, sizes and SSIM; entries are then sorted worst first.
public struct ReviewRenderer: Sendable {
    public let renderer: any ImageRenderer
    /// The report folder; images go to `images/` inside it.
    public let folder: String
    /// At most this many outputs rendered per group (a deterministic sample); nil: all.
    public let sample: Int?

    public init(renderer: any ImageRenderer, folder: String, sample: Int?) {
        self.renderer = renderer; self.folder = folder; self.sample = sample
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Refuses a report folder (or file) inside (or equal to) any bucket or the state folder of
    /// either side, by real path. With `holder`, `folder` is the `images/` of the report folder
    /// `holder`, and the message names `holder`, the folder the user gave.
    public static func checkOutsideBuckets(_ folder: String, manifests: [Manifest], what: String = "the report folder", holder: String? = nil) throws {
        let report = resolved(folder)
        let subject = holder.map { "\(what) \($0) would keep its images in \(folder), which is" } ?? "\(what) \(folder) is"
        func inside(_ folder: String) -> Bool {
            let path = realPath(folder) ?? folder
            return report == path || report.hasPrefix(path + "/")
        }
        for manifest in manifests {
            for bucket in manifest.buckets where inside(bucket.path) {
                throw Failure(description: "\(subject) inside bucket '\(bucket.name)' (\(bucket.path)); derive never writes a report into a bucket: choose a folder outside it")
            }
            guard inside(manifest.stateFolder) else { continue }
            // A state folder that holds the manifest (`state: .`) is the user's folder: only the
            // names Derive gives its own files there (StateFiles) are the state's (attack 27w's finding 4).
            let state = realPath(manifest.stateFolder) ?? manifest.stateFolder
            if let file = manifest.files.first, Self.inside(file, of: state) {
                guard let name = (report == state ? nil : report.dropFirst(state == "/" ? 1 : state.count + 1).split(separator: "/").first),
                      StateFiles.isReserved(String(name)) else { continue }
                throw Failure(description: "\(subject) at or inside \(name), a name Derive keeps its build state under in the state folder \(manifest.stateFolder); choose another name")
            }
            throw Failure(description: "\(subject) inside the state folder \(manifest.stateFolder); derive keeps only its build state there: choose a folder outside it")
        }
    }

    /// Whether `file` (resolved as a report path is) is in the folder whose real path is `folder`.
    static func inside(_ file: String, of folder: String) -> Bool {
        resolved(file).hasPrefix(folder == "/" ? folder : folder + "/")
    }

    /// The real path of `path`, or of its nearest existing ancestor with the rest appended (a
    /// report folder not made yet, reached through a link into a bucket, is still caught).
    static func resolved(_ path: String) -> String {
        var head = URL(literalFilePath: path).standardizedFileURL.path
        var tail: [String] = []
        while realPath(head) == nil, head != "/" {
            tail.insert((head as NSString).lastPathComponent, at: 0)
            head = (head as NSString).deletingLastPathComponent
        }
        return ([realPath(head) ?? head] + tail).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The sample of a group: outputs ordered by the SHA-256 of their name, the first `n`. The
    /// same outputs are picked on every run and a new source does not reshuffle the others.
    public static func sample(_ outputs: [String], _ n: Int?) -> PathSet {
        guard let n, n < outputs.count else { return PathSet(outputs) }
        let ordered = outputs.map { ($0, SHA256.hash(data: Data($0.utf8)).map { String(format: "%02x", $0) }.joined()) }
            .sorted { $0.1 < $1.1 }
        return PathSet(ordered.prefix(max(0, n)).map(\.0))
    }

    /// `kept` is told, at the end, of each user's file met at a render's name (kept; the render
    /// went under another name, which the review shows).
    public func render(_ review: Review, before: ReviewSide, after: ReviewSide, kept: (String) -> Void = { _ in }) throws -> Review {
        let report = try ReportFolder.claim(folder, manifests: [before.manifest, after.manifest])
        defer { for line in report.kept { kept(line) } }
        var jobs: [(group: Int, entry: Int)] = []
        for (g, group) in review.groups.enumerated() {
            let chosen = Self.sample(group.entries.map(\.output), sample)
            for (e, entry) in group.entries.enumerated() where chosen.contains(entry.output) { jobs.append((g, e)) }
        }
        let work = jobs
        let results = Locked([Int: Review.Entry]())
        let oldRenderer = EngineRenderer(limits: before.manifest.limits, renderer: renderer)
        let newRenderer = EngineRenderer(limits: after.manifest.limits, renderer: renderer)
        DispatchQueue.concurrentPerform(iterations: work.count) { index in
            let (g, e) = work[index]
            var entry = review.groups[g].entries[e]
            self.renderEntry(&entry, number: index + 1, before: before, after: after, old: oldRenderer, new: newRenderer, report: report)
            results.update { $0[index] = entry }
        }
        // Outputs the change leaves alone under a changed budget: judged like the build, every one.
        let unchanged = UnchangedBudgets.candidates(before: before, after: after)
        let judged = Locked([Int: Review.Entry]())
        DispatchQueue.concurrentPerform(iterations: unchanged.count) { index in
            guard let entry = self.judgeUnchanged(unchanged[index], number: work.count + index + 1, before: before, after: after,
                                                  engine: newRenderer, report: report) else { return }
            judged.update { $0[index] = entry }
        }
        var result = review
        for (index, derivative) in unchanged.enumerated() {
            guard let entry = judged.value[index] else { continue }
            let style = ReviewDiff.groupStyle(derivative)
            if let g = result.groups.firstIndex(where: { $0.rule == derivative.rule && $0.style == style }) {
                result.groups[g].entries.append(entry)
            } else {
                result.groups.append(Review.Group(rule: derivative.rule, style: style, entries: [entry]))
            }
            result.totals.budget += 1
        }
        let rendered = results.value
        for (index, job) in jobs.enumerated() {
            guard let entry = rendered[index] else { continue }
            let was = result.groups[job.group].entries[job.entry].kind
            if was != entry.kind {
                // A new render that fails (over the limits): the build fails it, so it is failed.
                if was == .created { result.totals.created -= 1 } else if was == .rebuilt { result.totals.rebuilt -= 1 }
                if entry.kind == .failed { result.totals.failed += 1 }
            }
            result.groups[job.group].entries[job.entry] = entry
        }
        for g in result.groups.indices { result.groups[g].entries.sort(by: Self.worstFirst) }
        result.groups.sort { a, b in
            let x = a.entries.first.map { Self.badness($0) } ?? 0, y = b.entries.first.map { Self.badness($0) } ?? 0
            return x != y ? x > y : a.title < b.title
        }
        result.rendered = true
        // Renders may have learnt old bytes the state did not know (no build yet).
        let renderedOutputs = PathSet(jobs.map { review.groups[$0.group].entries[$0.entry].output })
        if renderedOutputs.count < result.entries.filter({ $0.kind != .budget }).count { result.totals.sampledOutputs = renderedOutputs.count }
        let estimate = Self.totals(result.groups, rendered: renderedOutputs)
        result.totals.bytesBefore = estimate.before
        result.totals.bytesAfter = estimate.after
        result.totals.estimated = estimate.estimated
        if estimate.estimated {
            result.totals.estimateTrusted = estimate.trusted
            result.totals.renderedBytesBefore = estimate.renderedBefore
            result.totals.renderedBytesAfter = estimate.renderedAfter
        }
        return result
    }

    /// The byte totals of a review, exact or (with `--sample`) estimated.
    struct Estimate {
        var before: Int64 = 0, after: Int64 = 0
        /// Whether an unrendered output was counted by estimate.
        var estimated = false
        /// False when an unrendered output's size could not be estimated from its own bytes
        /// (unknown before size, or no rendered output in its group to scale by).
        var trusted = true
        /// The rendered outputs alone, both sides known: what a gate judges an untrusted estimate by.
        var renderedBefore: Int64 = 0, renderedAfter: Int64 = 0
    }

    /// Bytes before and after over every output the change touches, failures left out (they
    /// have no "after"). A rebuilt output `--sample` did not render counts at its own before
    /// size times its group's sampled after/before ratio: a sample that happens to hold a small
    /// image does not make the whole group look small. Created outputs (no before) count at the
    /// mean of their group's rendered ones.
    static func totals(_ groups: [Review.Group], rendered: PathSet) -> Estimate {
        var t = Estimate()
        func mean(_ values: [Int64]) -> Int64? { values.isEmpty ? nil : values.reduce(0, +) / Int64(values.count) }
        for group in groups {
            let counted = group.entries.filter { $0.failure == nil }
            for entry in counted where rendered.contains(entry.output) {
                if entry.kind != .created { t.renderedBefore += entry.bytesBefore ?? 0 }
                if entry.kind != .deleted { t.renderedAfter += entry.bytesAfter ?? 0 }
            }
            let sampled = counted.filter { $0.kind == .rebuilt && $0.bytesAfter != nil && ($0.bytesBefore ?? 0) > 0 }
            let sampledBefore = sampled.reduce(Int64(0)) { $0 + $1.bytesBefore! }
            let ratio = sampledBefore > 0 ? Double(sampled.reduce(Int64(0)) { $0 + $1.bytesAfter! }) / Double(sampledBefore) : nil
            for kind in [Review.Entry.Kind.created, .rebuilt, .deleted] {
                let entries = counted.filter { $0.kind == kind }
                let meanBefore = mean(entries.compactMap(\.bytesBefore)), meanAfter = mean(entries.compactMap(\.bytesAfter))
                for entry in entries {
                    let left = !rendered.contains(entry.output)
                    if kind != .created {
                        if let before = entry.bytesBefore { t.before += before } else if left {
                            t.estimated = true; t.trusted = false; t.before += meanBefore ?? 0
                        }
                    }
                    guard kind != .deleted else { continue }
                    if let after = entry.bytesAfter { t.after += after; continue }
                    guard left else { continue }
                    t.estimated = true
                    if kind == .rebuilt, let before = entry.bytesBefore, let ratio {
                        t.after += Int64((Double(before) * ratio).rounded())
                    } else if let meanAfter {
                        t.after += meanAfter
                        if kind == .rebuilt { t.trusted = false }
                    } else {
                        t.trusted = false
                    }
                }
            }
        }
        return t
    }

    /// How different: 1 - SSIM; a created or deleted output sorts after compared ones.
    static func badness(_ entry: Review.Entry) -> Double { entry.ssim.map { 1 - $0 } ?? -1 }

    static func worstFirst(_ a: Review.Entry, _ b: Review.Entry) -> Bool {
        let x = badness(a), y = badness(b)
        return x != y ? x > y : a.output < b.output
    }

    func renderEntry(_ entry: inout Review.Entry, number: Int, before: ReviewSide, after: ReviewSide,
                     old: EngineRenderer, new: EngineRenderer, report: ReportFolder) {
        let stem = String(format: "%04d", number)
        var notes: [String] = []
        var oldImage: Rendered?, newImage: Rendered?
        let oldName = entry.outputBefore ?? entry.output
        if entry.kind != .created, let derivative = before.derivatives[oldName] {
            do {
                oldImage = try builtOutput(derivative, recorded: after.recorded[oldName]) ?? renderDerivative(derivative, old)
            } catch { notes.append("old render failed: \(error)") }
        }
        var newSource: Data?   // kept for the min_ssim reference: the source is read once
        if entry.kind != .deleted, entry.kind != .failed, let derivative = after.derivatives[entry.output] {
            do {
                let source = try readSource(derivative, new)
                newSource = source
                newImage = try new.render(source, derivative.pipeline, bucketPath: derivative.bucketPath)
            } catch {
                // The build would fail this output too: a failure of the change, not a note.
                entry.failure = "the new render failed: \(error)"
                entry.kind = .failed
            }
        }
        // The page shows a render only under the name it was written as (never a user's file there).
        if let oldImage {
            entry.sizeBefore = .init(width: oldImage.width, height: oldImage.height)
            entry.bytesBefore = entry.bytesBefore ?? Int64(oldImage.bytes.count)
            entry.oldImage = write(oldImage.bytes, "images/\(stem)-old.\(oldImage.format)", report, notes: &notes)
        }
        if let newImage {
            entry.sizeAfter = .init(width: newImage.width, height: newImage.height)
            entry.bytesAfter = Int64(newImage.bytes.count)
            entry.newImage = write(newImage.bytes, "images/\(stem)-new.\(newImage.format)", report, notes: &notes)
        }
        // The rule's min_ssim budget is judged against a lossless reference, as the build does.
        if let newImage, let source = newSource, let derivative = after.derivatives[entry.output],
           OutputBudget.budget(of: derivative, in: after.manifest)?.minSSIM != nil {
            do {
                entry.referenceSSIM = try OutputBudget.similarity(newImage.bytes, width: newImage.width, height: newImage.height,
                                                                  source: source, derivative: derivative, renderer: new)
            } catch { notes.append("not compared with its reference: \(error)") }
        }
        if let oldImage, let newImage {
            do {
                let (similarity, heat) = try compare(oldImage, newImage)
                entry.ssim = ImageComparison.rounded(similarity.ssim)
                entry.heatMap = write(PNGWriter.encode(heat), "images/\(stem)-heat.png", report, notes: &notes)
            } catch { notes.append("not compared: \(error)") }
        }
        if !notes.isEmpty { entry.note = ([entry.note].compactMap { $0 } + notes).joined(separator: "; ") }
    }

    /// The name the render was written as (another than `relative` when a user's file is there), or nil.
    func write(_ bytes: Data, _ relative: String, _ report: ReportFolder, notes: inout [String]) -> String? {
        do { return try report.writeRender(bytes, to: relative) } catch { notes.append("\(error)"); return nil }
    }

    /// The output as built, when the state recorded it under the old recipe's action key and the
    /// file still holds the recorded bytes (digest checked): no render needed.
    func builtOutput(_ derivative: Derivative, recorded: OutputRecord?) throws -> Rendered? {
        guard let recorded, recorded.actionKey == derivative.actionKey,
              let bytes = try? ConfinedFolder.readRegularFile(atPath: derivative.outputPath, maxBytes: 1 << 30),
              ContentDigests.digest(bytes) == recorded.outputDigest else { return nil }
        return Rendered(bytes: bytes, width: recorded.width, height: recorded.height, format: recorded.format)
    }

    func renderDerivative(_ derivative: Derivative, _ engine: EngineRenderer) throws -> Rendered {
        try engine.render(readSource(derivative, engine), derivative.pipeline, bucketPath: derivative.bucketPath)
    }

    func readSource(_ derivative: Derivative, _ engine: EngineRenderer) throws -> Data {
        let key = try ObjectKey(String(derivative.source.dropFirst(derivative.source.prefix { $0 != "/" }.count + 1)))
        return try ConfinedFolder(path: derivative.bucketPath).read(key, maxBytes: engine.limits.maxBytes)
    }

    /// Both images scaled by the render worker to the new one's shape as BMP, compared in Swift.
    func compare(_ old: Rendered, _ new: Rendered) throws -> (Similarity, RGBPixels) {
        try ImageComparison.compare(old.bytes, new.bytes, secondWidth: new.width, secondHeight: new.height) { bytes, pipeline in
            try renderer.render(bytes, pipeline, limits: Limits(), resolver: NoObjects(), cancellation: nil).bytes
        }
    }
}

/// A value shared by the render threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
