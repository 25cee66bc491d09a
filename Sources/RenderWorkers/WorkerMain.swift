import Confinement
import Foundation
import ImagingCore
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// The loop of `derive-render-worker`: greet, then render requests from fd 3 one at a time
/// until the parent closes its end. The executable's main is one call to `run(engine:)`, with
/// Imaging's engine (this module does not link libvips). Started with `--describe`, the worker
/// greets with its full `EngineReport` and exits; each `--font TYPE` after it adds that
/// watermark type's font file to the report (derive links no fontconfig to ask itself).
public enum RenderWorkerMain {
    /// The worker's CPU priority: when renders and a server's event loop compete, the loop wins.
    static let niceness: Int32 = 10

    public static let describeArgument = "--describe"
    public static let fontArgument = "--font"
    /// `--drawable TYPE TEXT`: whether the font of TYPE (and its fallbacks) draws every character
    /// of TEXT, answered in the report's `undrawable` (`derive validate` asks: attack 37b's leftover).
    /// TYPE and TEXT travel as base64 of their UTF-8 (`drawableArguments`): an argument ends at its
    /// first NUL, so a text holding U+0000 was asked without it, said drawable by `validate`, and
    /// refused by the build (attack 42b's M-a).
    public static let drawableArgument = "--drawable"

    /// The arguments asking about `drawable`, as `drawableTexts` reads them back.
    public static func drawableArguments(_ drawable: [(type: String, text: String)]) -> [String] {
        drawable.flatMap { [drawableArgument, Data($0.type.utf8).base64EncodedString(), Data($0.text.utf8).base64EncodedString()] }
    }

    /// `--drawn TYPE TEXT SIZE`: how the render draws TEXT at SIZE px in the font of TYPE (every
    /// face, as Pango lays it out), answered in the report's `drawings` (the planner asks); TYPE
    /// and TEXT as base64, as `--drawable` sends them.
    public static let drawnArgument = "--drawn"

    /// The arguments asking about `texts`, as `drawnTexts` reads them back.
    public static func drawnArguments(_ texts: [TextToDraw]) -> [String] {
        texts.flatMap { [drawnArgument, Data($0.type.utf8).base64EncodedString(), Data($0.text.utf8).base64EncodedString(), String($0.size)] }
    }

    /// Every `--drawn TYPE TEXT SIZE` among `arguments` (one that does not read back is not asked).
    static func drawnTexts(_ arguments: [String]) -> [TextToDraw] {
        func decoded(_ argument: String) -> String? {
            Data(base64Encoded: argument).flatMap { String(data: $0, encoding: .utf8) }
        }
        var texts: [TextToDraw] = []
        var index = 0
        while index + 3 < arguments.count {
            if arguments[index] == drawnArgument {
                if let type = decoded(arguments[index + 1]), let text = decoded(arguments[index + 2]), let size = Int(arguments[index + 3]) {
                    texts.append(TextToDraw(type: type, text: text, size: size))
                }
                index += 4
            } else { index += 1 }
        }
        return texts
    }

    /// The (type, text) of every `--drawable TYPE TEXT` among `arguments` (a pair that is not
    /// base64 of UTF-8 is not asked: no caller writes one).
    static func drawableTexts(_ arguments: [String]) -> [(type: String, text: String)] {
        func decoded(_ argument: String) -> String? {
            Data(base64Encoded: argument).flatMap { String(data: $0, encoding: .utf8) }
        }
        var texts: [(type: String, text: String)] = []
        var index = 0
        while index + 2 < arguments.count {
            if arguments[index] == drawableArgument {
                if let type = decoded(arguments[index + 1]), let text = decoded(arguments[index + 2]) { texts.append((type, text)) }
                index += 3
            } else { index += 1 }
        }
        return texts
    }

    /// The values of every `--font TYPE` pair among `arguments`.
    static func fontTypes(_ arguments: [String]) -> [String] {
        var types: [String] = []
        var index = 0
        while index + 1 < arguments.count {
            if arguments[index] == fontArgument { types.append(arguments[index + 1]); index += 2 } else { index += 1 }
        }
        return types
    }

    public static func run(engine: WorkerEngine) -> Never {
        // Threads libvips starts later inherit the nice value of this (only) thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        // Swift's crash handler would spend seconds writing a backtrace (and ignores a SIGSEGV
        // sent by kill): a worker that faults dies at once, and the parent names the signal.
        for fault in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { signal(fault, SIG_DFL) }
        closeInheritedDescriptors()
        watchParent()
        let channel = FrameChannel(fd: 3)
        if CommandLine.arguments.dropFirst().contains(describeArgument) {
            // A traced start says it only describes the engine (`Vips.describeTrace`).
            if getenv("DERIVE_TRACE_VIPS") != nil { setenv("DERIVE_TRACE_VIPS", "describe", 1) }
            engine.start()   // libvips' modules are mapped once it has started
            var report = engine.describe(fontTypes(Array(CommandLine.arguments.dropFirst())))
            let texts = drawableTexts(Array(CommandLine.arguments.dropFirst()))
            if !texts.isEmpty {
                report.undrawable = Dictionary(texts.map { (EngineReport.drawableKey(text: $0.text, type: $0.type), engine.undrawable($0.text, $0.type) ?? "") },
                                               uniquingKeysWith: { first, _ in first })
            }
            let drawn = drawnTexts(Array(CommandLine.arguments.dropFirst()))
            if !drawn.isEmpty {
                report.drawings = Dictionary(drawn.map { ($0.key, engine.drawing($0)) }, uniquingKeysWith: { first, _ in first })
            }
            report.mappedFiles = EngineReport.mappedSharedObjects()
            report.libvipsFile = report.mappedFiles.first { URL(literalFilePath: $0).lastPathComponent.hasPrefix("libvips.so") } ?? ""
            do { try channel.send(WorkerHello(engineVersion: engine.version(), report: report).encoded()) } catch { leave(2) }
            leave(0)
        }
        do { try channel.send(WorkerHello(engineVersion: engine.version()).encoded()) } catch { leave(2) }
        engine.start()   // starts libvips before the first request
        while true {
            let reply: RenderReply
            do {
                // The last render's cap is lifted first: receiving holds the frame and its decoded
                // copy at once (twice a raised byte limit's source), which the cap of a render
                // of that size did not leave room for (every other large render died in SIGILL).
                capMemory(0)
                let request = try nextRequest(channel)
                // The cap bounds what the render adds: the bytes it was sent are held on top (a
                // 300 MB source under a raised byte limit aborted the worker in GSlice).
                let raised = request.memoryCap.addingReportingOverflow(request.heldBytes)
                capMemory(request.memoryCap > 0 && !raised.overflow ? raised.partialValue : 0)
                let pipeline = try request.pipeline()
                let output = try engine.render(request.source, pipeline, request.limits, PreparedObjects(objects: request.objects), request.reach)
                reply = .output(output)
            } catch let error as ProcessError {
                reply = .failure(error)
            } catch {
                reply = .failure(ProcessError(.internalError, "the render worker could not read its request: \(error)"))
            }
            stallBeforeReply()
            do { try channel.send(reply.encoded()) } catch { leave(4) }
        }
    }

    /// Test hook, inert unless set: `DERIVE_TEST_STALL_BEFORE_REPLY=<path>` makes the worker,
    /// while `<path>` exists (at most 120 s), hold its reply without looking at libvips' stop:
    /// an encoder outside libvips' evaluation (HEIC, AVIF) at a known instant, whatever the load.
    static func stallBeforeReply() {
        guard let path = ProcessInfo.processInfo.environment["DERIVE_TEST_STALL_BEFORE_REPLY"] else { return }
        for _ in 0..<6000 where FileManager.default.fileExists(atPath: path) { usleep(20_000) }
    }

    /// The next request; the frame's buffer becomes the request's source (held once). Exits
    /// when the parent closed its end or the channel failed.
    static func nextRequest(_ channel: FrameChannel) throws -> RenderRequest {
        var payload: Data
        do {
            guard let received = try channel.receive(slice: 3600) else { leave(0) }
            payload = received
        } catch { leave(3) }
        return try RenderRequest(taking: &payload)
    }

    /// Descriptors the parent left open without close-on-exec (a server's sockets, open
    /// sources) are closed: the worker reads nothing but fd 3.
    static func closeInheritedDescriptors() {
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for case let fd? in open.map({ Int32($0) }) where fd > 3 { close(fd) }
    }

    /// The worker's own temporary folder (the parent removes it too once it has reaped the worker).
    static let temporaryFolder = ProcessInfo.processInfo.environment[WorkerTemporaryFolder.environmentVariable]

    /// Ends the worker, its temporary folder removed first: on every exit path, since a parent
    /// that ends without reaping it (serve at SIGTERM) cannot remove it (the main thread saw
    /// the socket close and exited before the watching thread had removed it).
    static func leave(_ status: Int32) -> Never {
        if let folder = temporaryFolder, !folder.isEmpty { WorkerTemporaryFolder.removeTree(folder) }
        exit(status)
    }

    /// A worker whose parent died (killed mid-render, or ended by SIGTERM) exits at once instead
    /// of rendering on for nobody, and removes its temporary folder, which the parent can no
    /// longer remove: the parent's end of fd 3 closes when it dies, which `poll` reports at once
    /// (a change of parent is the fallback check, every 20 ms).
    static func watchParent() {
        let parent = getppid()
        let folder = temporaryFolder
        Thread.detachNewThread {
            // POLLRDHUP (Linux, 0x2000) is behind _GNU_SOURCE, which Swift's Glibc does not expose.
            let peerClosed: Int16 = 0x2000
            var watched = pollfd(fd: 3, events: peerClosed, revents: 0)
            while getppid() == parent {
                let ready = poll(&watched, 1, 20)
                if ready > 0, watched.revents & (peerClosed | Int16(POLLHUP | POLLERR | POLLNVAL)) != 0 { break }
            }
            if let folder, !folder.isEmpty { WorkerTemporaryFolder.removeTree(folder) }
            _exit(0)
        }
    }

    /// The private data (heap and anonymous mappings) the worker may use from now on (soft
    /// limit; 0 lifts it). Past it, allocations fail and the render fails or the worker ends;
    /// the parent reports either. RLIMIT_DATA rather than RLIMIT_AS: the address space also
    /// holds shared libraries, thread stacks and allocator reservations (an idle worker maps
    /// 280 MB, a HEIC encode 830 MB for 180 MB of data), which say nothing about memory used.
    static func capMemory(_ bytes: Int) {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
        limit.rlim_cur = bytes > 0 ? min(rlim_t(bytes), limit.rlim_max) : limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
    }
}

/// The watermark objects the parent resolved, or the errors it met resolving them.
struct PreparedObjects: ObjectResolver {
    let objects: [(key: String, result: Result<Data, ProcessError>)]

    func object(_ key: String) throws -> Data {
        guard let found = objects.first(where: { $0.key == key }) else {
            throw ProcessError(.internalError, "the render worker was not sent the object '\(key)'")
        }
        return try found.result.get()
    }
}
