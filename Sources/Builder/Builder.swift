import Foundation
import Manifest
import Planner
import ProcessLanguage

/// An encoded result, as the builder needs it.
public struct Rendered: Sendable {
    public var bytes: Data
    public var width: Int
    public var height: Int
    public var format: String

    public init(bytes: Data, width: Int, height: Int, format: String) {
        self.bytes = bytes; self.width = width; self.height = height; self.format = format
    }
}

/// Renders one derivative's source; the engine in production, a stand-in in tests.
public protocol DerivativeRenderer: Sendable {
    /// `bucketPath` is the source bucket's folder, where watermark images are read.
    func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered
    /// Bytes the render may hold at once, estimated from the header.
    func memoryEstimate(_ source: Data) -> Int
}

public struct BuildOptions: Sendable {
    public var jobs: Int
    public var memoryBudget: Int
    public var quiet: Bool

    public init(jobs: Int? = nil, memoryBudget: Int? = nil, quiet: Bool = false) {
        self.jobs = max(1, jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        self.memoryBudget = memoryBudget ?? MemoryBudget.defaultCapacity
        self.quiet = quiet
    }
}

public struct BuildReport: Sendable {
    public var built: [String] = []
    public var failed: [(output: String, message: String)] = []
    public var deleted: [String] = []
    public var adopted: [String] = []
    public var seconds: Double = 0

    public var succeeded: Bool { failed.isEmpty }
}

/// Applies a plan: renders stale derivatives on worker threads (outside Swift's cooperative
/// pool; one libvips thread each), writes each output to a temporary file beside its target and
/// renames it, records it in the state only after the rename, deletes orphans, then writes
/// `derive.lock` and the index.
public struct Builder: Sendable {
    public let planner: Planner
    public let renderer: any DerivativeRenderer
    public let options: BuildOptions
    public let manifestPath: String

    public init(planner: Planner, manifestPath: String, renderer: any DerivativeRenderer, options: BuildOptions) {
        self.planner = planner
        self.manifestPath = manifestPath
        self.renderer = renderer
        self.options = options
    }

    var disk: any Disk { planner.disk }
    var store: StateStore { planner.store }

    public func build(_ plan: Plan) throws -> BuildReport {
        let started = Date()
        var report = BuildReport()
        let work = plan.work.compactMap(\.derivative)

        // Folders where a killed build may have left temporary files.
        for folder in Set(work.map { ($0.outputPath as NSString).deletingLastPathComponent }) {
            disk.removeStaleTemporaries(in: folder)
        }
        // Sources hashed while planning are remembered even if rendering fails.
        try store.saveFiles(planner.digests.takePending())

        let results = runJobs(work)
        for (derivative, result) in zip(work, results) {
            switch result {
            case .success: report.built.append(derivative.output)
            case .failure(let error): report.failed.append((derivative.output, "\(error)"))
            }
        }

        for item in plan.adoptions {
            guard let derivative = item.derivative, let entry = item.adopted, disk.stat(derivative.outputPath) != nil else { continue }
            let format = planner.digests.record(for: derivative.outputPath)?.format ?? ""
            let record = Self.record(derivative, digest: entry.digest, size: entry.bytes, width: entry.width,
                                     height: entry.height, format: format, time: disk.now())
            try store.recordOutput(record, file: nil)
            report.adopted.append(item.output)
        }

        for item in plan.deletions {
            guard let record = item.recorded, let path = Self.absolutePath(of: record.path, in: planner.manifest) else {
                try store.removeOutputs([item.output])
                continue
            }
            do {
                try disk.remove(path)
                try store.removeOutputs([item.output])
                try store.removeFiles([path])
                report.deleted.append(item.output)
            } catch {
                report.failed.append((item.output, "\(error)"))
            }
        }
        try store.saveFiles(planner.digests.takePending())
        // A no-op leaves derive.lock and the index as they are (derive check verifies them).
        let lockExists = disk.stat(LockFile.path(forManifest: manifestPath)) != nil
        if plan.hasChanges || !plan.adoptions.isEmpty || !lockExists {
            try writeLockAndIndex()
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Runs the jobs on `options.jobs` threads; results come back in job order.
    func runJobs(_ work: [Derivative]) -> [Result<Void, Error>] {
        guard !work.isEmpty else { return [] }
        let progress = Progress(total: work.count, quiet: options.quiet)
        let budget = MemoryBudget(capacity: options.memoryBudget)
        let state = JobState(count: work.count)
        let done = DispatchGroup()
        for _ in 0..<min(options.jobs, work.count) {
            done.enter()
            let thread = Thread {
                while let index = state.next() {
                    let result = Result { try self.run(work[index], budget: budget) }
                    state.store(result, at: index)
                    progress.finished(work[index].output, ok: (try? result.get()) != nil)
                }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return state.results
    }

    func run(_ derivative: Derivative, budget: MemoryBudget) throws {
        let source = try disk.read(derivative.sourcePath)
        // The source must still be what was planned: a file edited mid-build is not recorded under the old digest.
        let digest = ContentDigests.digest(source)
        guard digest == derivative.components.sourceDigest else {
            throw DiskError("\(derivative.source) changed while building; run the build again")
        }
        let cost = budget.acquire(renderer.memoryEstimate(source))
        defer { budget.release(cost) }
        let rendered = try renderer.render(source, derivative.pipeline, bucketPath: derivative.bucketPath)
        try disk.writeAtomically(rendered.bytes, to: derivative.outputPath)
        let outputDigest = ContentDigests.digest(rendered.bytes)
        guard let stat = disk.stat(derivative.outputPath) else { throw DiskError("\(derivative.outputPath) vanished after writing") }
        planner.digests.remember(derivative.outputPath, stat: stat,
                                 content: .init(digest: outputDigest, format: ContentDigests.sniff(rendered.bytes)))
        let record = Self.record(derivative, digest: outputDigest, size: Int64(rendered.bytes.count), width: rendered.width,
                                 height: rendered.height, format: rendered.format, time: disk.now())
        let file = planner.digests.record(for: derivative.outputPath)
        try store.recordOutput(record, file: file)
    }

    static func record(_ derivative: Derivative, digest: String, size: Int64, width: Int, height: Int, format: String, time: Int64) -> OutputRecord {
        OutputRecord(path: derivative.output, rule: derivative.rule, source: derivative.source, style: derivative.style,
                     matrix: derivative.matrix, engine: derivative.components.engine, pipeline: derivative.components.pipeline,
                     sourceDigest: derivative.components.sourceDigest, dependencies: derivative.components.dependencies,
                     encoder: derivative.components.encoder, actionKey: derivative.actionKey, acl: derivative.acl.rawValue,
                     outputDigest: digest, size: size, width: width, height: height, format: format, builtAt: time)
    }

    /// The file of a recorded `bucket/key`, if its bucket still exists.
    public static func absolutePath(of output: String, in manifest: Manifest) -> String? {
        guard let slash = output.firstIndex(of: "/"), let bucket = manifest.bucket(named: String(output[..<slash])) else { return nil }
        return bucket.path + "/" + output[output.index(after: slash)...]
    }

    /// Rewrites `derive.lock` and the index from the state, when their text changes.
    public func writeLockAndIndex() throws {
        let outputs = try store.allOutputs().values.sorted { $0.path < $1.path }
        let lock = LockFile(entries: outputs.map {
            LockFile.Entry(path: $0.path, actionKey: $0.actionKey, digest: $0.outputDigest, width: $0.width, height: $0.height, bytes: $0.size)
        })
        try writeIfChanged(Data(lock.text.utf8), to: LockFile.path(forManifest: manifestPath))
        if let index = planner.manifest.index, let bucket = planner.manifest.bucket(named: index.bucket) {
            try writeIfChanged(IndexWriter.json(outputs, manifest: planner.manifest, indexBucket: index.bucket), to: bucket.path + "/" + index.path)
        }
    }

    func writeIfChanged(_ data: Data, to path: String) throws {
        if disk.stat(path) != nil, (try? disk.read(path)) == data { return }
        try disk.writeAtomically(data, to: path)
    }
}

/// Work distribution and results shared by the worker threads.
final class JobState: @unchecked Sendable {
    private let lock = NSLock()
    private var cursor = 0
    private let count: Int
    private(set) var results: [Result<Void, Error>]

    init(count: Int) {
        self.count = count
        results = Array(repeating: .failure(DiskError("not run")), count: count)
    }

    func next() -> Int? {
        lock.withLock {
            guard cursor < count else { return nil }
            defer { cursor += 1 }
            return cursor
        }
    }

    func store(_ result: Result<Void, Error>, at index: Int) { lock.withLock { results[index] = result } }
}
