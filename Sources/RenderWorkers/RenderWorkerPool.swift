import Foundation
import ImagingCore
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// A pool of long-lived `derive-render-worker` processes, each rendering one image at a time.
///
/// `render` has `Engine.render`'s contract (same output, same `ProcessError`), with isolation:
/// - the deadline (`Limits.renderSeconds`) is enforced twice: libvips stops inside the worker,
///   and if the worker still runs `grace` seconds later (an encoder outside libvips' evaluation
///   loop, such as HEIC or AVIF), it is killed with SIGKILL;
/// - a `RenderCancellation` kills the worker within `pollSlice` seconds;
/// - a worker that crashes fails only its own render, with an error naming the signal;
/// - each worker runs at nice 10 with its address space capped at `Limits.maxMemory` plus
///   `memoryHeadroom` (RLIMIT_DATA), so a render over the cap fails, not the machine.
/// A killed or crashed worker is replaced by a fresh one at once.
///
/// Watermark objects are resolved here, in the parent, through the caller's resolver (where
/// authorisation and confinement live); the worker gets every input as bytes.
public final class RenderWorkerPool: ImageRenderer, @unchecked Sendable {
    public let size: Int
    public let executable: String
    /// The environment every worker starts with; nil: derive's own.
    public let environment: [String: String]?
    /// Seconds past the deadline before the worker is killed (libvips' own stop comes first).
    public var grace: Double = 0.25
    /// Private memory a worker needs besides what `Limits.maxMemory` estimates: the source and
    /// output bytes, codec state, allocator slack. Measured: an idle worker holds 19 MB; an AVIF
    /// encode of a 4096² noise image (estimated 134 MB) peaks at 594 MB, HEIC of 2048² at 180 MB.
    public var memoryHeadroom: Int = RenderWorkerPool.defaultMemoryHeadroom
    public static let defaultMemoryHeadroom = 256 << 20
    /// How often a waiting render checks its cancellation.
    let pollSlice = 0.05

    private let condition = NSCondition()
    private var idle: [WorkerProcess] = []
    private var free: Int
    private var busy: Set<pid_t> = []
    private var stopped = false
    /// The engine every worker must report (guarded by `condition`): the one derive planned
    /// with, or else the first worker's, so that all renders of the pool agree.
    private var engineVersion: String?
    /// Workers busy when `retire` was called (guarded by `condition`): stopped when they finish.
    private var retired: Set<pid_t> = []
    /// Counts `retire` calls (guarded by `condition`): a replacement started before one is not kept.
    private var generation = 0

    /// Finds the worker executable (`WorkerLocation`) unless given; throws when it is missing.
    /// Workers start when first needed. `expectedEngineVersion`: the engine the caller's
    /// fingerprints record (`EngineReport.version`); a worker that reports another is refused.
    /// `environment`: replaces the workers' (default: derive's own; tests set worker hooks this way).
    public init(size: Int, executable: String? = nil, expectedEngineVersion: String? = nil,
                environment: [String: String]? = nil) throws {
        self.size = max(1, size)
        self.executable = try executable ?? WorkerLocation.find()
        self.environment = environment
        engineVersion = expectedEngineVersion
        free = self.size
        // Temporary folders of workers whose derive was killed before it could remove them.
        WorkerTemporaryFolder.sweep()
    }

    /// Starts the worker with `--describe` and returns its engine report (one process, which
    /// exits at once). `environment` replaces the worker's (tests: a copied libvips); the report's
    /// fonts include those of `fontTypes` that are installed.
    public static func describe(executable: String? = nil, environment: [String: String]? = nil,
                                fontTypes: [String] = [], drawable: [(type: String, text: String)] = [],
                                drawn: [TextToDraw] = []) throws -> EngineReport {
        let path = try executable ?? WorkerLocation.find()
        let arguments = [RenderWorkerMain.describeArgument] + fontTypes.flatMap { [RenderWorkerMain.fontArgument, $0] }
            + RenderWorkerMain.drawableArguments(drawable) + RenderWorkerMain.drawnArguments(drawn)
        let worker = try WorkerProcess.launch(path, expectedEngineVersion: nil, arguments: arguments,
                                              environment: environment)
        worker.stop()
        guard let report = worker.hello.report else {
            throw WorkerError.launch("the render worker \(path) did not describe its engine: it comes from another build of Derive; install derive and derive-render-worker together")
        }
        return report
    }

    deinit { shutdown() }

    /// Kills every worker; renders in progress fail with the cancellation error, later ones at once.
    public func shutdown() {
        condition.lock()
        stopped = true
        let waiting = idle
        idle = []
        for pid in busy { kill(pid, SIGKILL) }
        condition.broadcast()
        condition.unlock()
        for worker in waiting { worker.stop() }
    }

    /// Workers started so far are not used again: idle ones stop now, busy ones when their render
    /// ends; later renders start fresh workers, which must report `expectedEngineVersion` (when
    /// given). A long-lived process (watch) calls this when the engine or its configuration
    /// changed (a fontconfig file: a worker draws text as the configuration it loaded at start).
    public func retire(expectedEngineVersion: String? = nil) {
        condition.lock()
        generation += 1
        if let expectedEngineVersion { engineVersion = expectedEngineVersion }
        retired.formUnion(busy)
        let waiting = idle
        idle = []
        condition.broadcast()
        condition.unlock()
        for worker in waiting { worker.stop() }
    }

    /// Removes the temporary folders of every worker this process started; for a process that
    /// is about to exit, after `shutdown` (other pools' workers would lose theirs).
    public static func removeTemporaryFolders() {
        WorkerTemporaryFolder.removeOwn()
    }

    /// Processes started and alive now (tests).
    public var workerIDs: [pid_t] {
        condition.lock()
        defer { condition.unlock() }
        return idle.map(\.pid) + busy
    }

    public func render(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver = NoObjects(),
                       cancellation: RenderCancellation? = nil) throws -> RenderOutput {
        try render(source, pipeline, limits: limits, resolver: resolver, cancellation: cancellation, reach: .output)
    }

    /// Runs the render's own checks on `source` and stops before decoding (`RenderReach`):
    /// throws what the render would refuse it for, else returns.
    public func check(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver = NoObjects(),
                      reach: RenderReach = .checks) throws {
        _ = try render(source, pipeline, limits: limits, resolver: resolver, cancellation: nil, reach: reach)
    }

    func render(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver,
                cancellation: RenderCancellation?, reach: RenderReach) throws -> RenderOutput {
        // Refused by size before anything is sent or any mark is read: a worker never receives
        // more than the limit, nor more than one render takes (the marks sized from their files).
        try RenderInputs(pipeline, resolver: resolver, limits: limits).checkSource(nil, bytes: source.count)
        var objects: [(key: String, result: Result<Data, ProcessError>)] = []
        for case .object(let key) in pipeline.dependencies {
            do { objects.append((key, .success(try resolver.object(key)))) } catch let error as ProcessError {
                objects.append((key, .failure(error)))
            } catch {
                objects.append((key, .failure(ProcessError(.watermarkError, "watermark: the object '\(key)' cannot be read: \(error)",
                                                           action: Watermark.name, parameter: "image"))))
            }
        }
        // Saturating: a limit near Int.max means "no cap", never an overflow trap.
        let cap = limits.maxMemory > 0 ? limits.maxMemory.addingReportingOverflow(memoryHeadroom).overflow ? 0 : limits.maxMemory + memoryHeadroom : 0
        let unencoded = RenderRequest(limits: limits, memoryCap: cap, actions: pipeline.actions.map(\.canonical),
                                      objects: objects, source: source, reach: reach)
        // The source and the marks travel in one message: refused before it is encoded (each
        // alone was checked against the byte limit, which is at most `Limits.renderBytes`).
        let held = unencoded.heldBytes
        guard held <= Limits.renderBytes else {
            throw ProcessError(.imageTooLarge, ec: "0040-00000012",
                               "the source and its watermark images are \(held) bytes together; one render takes at most \(Limits.renderBytes) bytes of them (use smaller files or fewer watermark images)")
        }
        // In pieces: the source and the marks are sent from the caller's bytes, not copied into one message.
        let request = unencoded.encodedParts()
        let requestBytes = request.reduce(0) { $0 + $1.count }
        guard requestBytes <= Wire.maxPayload else {
            throw ProcessError(.imageTooLarge, ec: "0040-00000012",
                               "the render request is \(requestBytes) bytes; a render worker takes at most \(Wire.maxPayload) bytes (use smaller files)")
        }
        var worker = try checkOut(cancellation)
        let started = Date()
        do {
            do {
                try worker.channel.send(parts: request)
            } catch FrameChannel.Failure.closed {
                // It ended between renders (killed from outside): not this render's doing.
                release(worker)
                _ = worker.reap()
                worker = try launch()
                try worker.channel.send(parts: request)
            }
            let deadline = limits.renderSeconds > 0 ? limits.renderSeconds + grace : .infinity
            let payload = try worker.channel.receive(slice: pollSlice) {
                cancellation?.isCancelled == true || Date().timeIntervalSince(started) > deadline || isStopped
            }
            guard let payload else { throw FrameChannel.Failure.closed }
            let reply = try RenderReply(payload)
            checkIn(worker)
            switch reply {
            case .output(let output): return output
            case .failure(let error): throw error
            }
        } catch let error as ProcessError {
            throw error
        } catch FrameChannel.Failure.interrupted {
            release(worker)
            worker.stop()
            replace()
            if cancellation?.isCancelled == true || isStopped { throw ProcessError.renderCancelled }
            throw ProcessError.renderDeadline(limits)
        } catch FrameChannel.Failure.closed {
            release(worker)
            let ending = worker.reap() ?? "ended"
            replace()
            if cancellation?.isCancelled == true || isStopped { throw ProcessError.renderCancelled }
            var message = "the render worker \(ending) during this render; only this render failed, the next one gets a fresh worker"
            if cap > 0 { message += " (a render that outgrows the worker's memory cap of \(cap >> 20) MB, the memory limit (\(limits.setting("memory"))) plus \(memoryHeadroom >> 20) MB, ends this way too)" }
            throw ProcessError(.internalError, message)
        } catch {
            release(worker)
            worker.stop()
            replace()
            throw ProcessError(.internalError, "the render worker failed: \(error)")
        }
    }

    private var expectedVersion: String? {
        condition.lock()
        defer { condition.unlock() }
        return engineVersion
    }

    private var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// A worker for one render: an idle one, or a new one while the pool has fewer than `size`.
    private func checkOut(_ cancellation: RenderCancellation?) throws -> WorkerProcess {
        condition.lock()
        while free == 0 && !stopped && cancellation?.isCancelled != true {
            _ = condition.wait(until: Date().addingTimeInterval(pollSlice))
        }
        if stopped || cancellation?.isCancelled == true {
            condition.unlock()
            throw ProcessError.renderCancelled
        }
        free -= 1
        let reused = idle.popLast()
        if let reused { busy.insert(reused.pid) }
        condition.unlock()
        if let reused { return reused }
        do {
            return try launch()
        } catch {
            condition.lock()
            free += 1
            condition.signal()
            condition.unlock()
            if let error = error as? WorkerError { throw ProcessError(.internalError, error.description) }
            throw error
        }
    }

    /// Starts a worker and counts it as busy (its slot is already taken).
    private func launch() throws -> WorkerProcess {
        condition.lock()
        let started = generation
        condition.unlock()
        let worker = try WorkerProcess.launch(executable, expectedEngineVersion: expectedVersion, environment: environment)
        condition.lock()
        if engineVersion == nil { engineVersion = worker.hello.engineVersion }
        busy.insert(worker.pid)
        if generation != started { retired.insert(worker.pid) }   // started before a `retire`: this render only
        let late = stopped
        condition.unlock()
        if late { kill(worker.pid, SIGKILL) }
        return worker
    }

    /// Starts one worker now (it then waits idle for the first render): a caller that must know
    /// whether rendering works at all (init) learns it once, before any image is blamed.
    /// Throws the worker's start failure (`ProcessError`, internal error).
    public func start() throws {
        checkIn(try checkOut(nil))
    }

    /// The worker is done with its render and goes back to the idle list.
    private func checkIn(_ worker: WorkerProcess) {
        condition.lock()
        busy.remove(worker.pid)
        free += 1
        if stopped || retired.remove(worker.pid) != nil {
            condition.unlock()
            worker.stop()
            return
        }
        idle.append(worker)
        condition.signal()
        condition.unlock()
    }

    /// The worker leaves the busy set before it is reaped, so `shutdown` never signals a
    /// process id that may already belong to someone else.
    private func release(_ worker: WorkerProcess) {
        condition.lock()
        busy.remove(worker.pid)
        retired.remove(worker.pid)
        condition.unlock()
    }

    /// Gives back the slot of a killed or crashed worker and starts its replacement in the
    /// background, so the next render does not wait for libvips to start.
    private func replace() {
        condition.lock()
        let stopping = stopped
        condition.unlock()
        guard !stopping else {
            condition.lock(); free += 1; condition.signal(); condition.unlock()
            return
        }
        let executable = executable, engineVersion = expectedVersion, environment = environment
        condition.lock()
        let started = generation
        condition.unlock()
        Thread.detachNewThread { [self] in
            let fresh = try? WorkerProcess.launch(executable, expectedEngineVersion: engineVersion, environment: environment)
            condition.lock()
            free += 1
            let kept = fresh != nil && !stopped && generation == started
            if kept, let fresh { idle.append(fresh) }
            condition.signal()
            condition.unlock()
            if !kept { fresh?.stop() }
        }
    }
}
