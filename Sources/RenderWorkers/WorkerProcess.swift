import CChildProcess
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One running `derive-render-worker`: its process id and the parent's end of its socket pair.
/// The worker's fd 3 is the other end; its stdin is /dev/null and its stdout goes to the
/// parent's stderr, so nothing it prints can corrupt the protocol or the parent's stdout.
final class WorkerProcess: @unchecked Sendable {
    let pid: pid_t
    let channel: FrameChannel
    /// The worker's first frame.
    private(set) var hello = WorkerHello(engineVersion: "")
    /// Its private temporary folder, removed once it has ended.
    let temporary: WorkerTemporaryFolder
    private var reaped = false

    private init(pid: pid_t, fd: Int32, temporary: WorkerTemporaryFolder) {
        self.pid = pid
        channel = FrameChannel(fd: fd)
        self.temporary = temporary
    }

    /// Starts the executable at `path` and waits for its hello frame (at most `timeout` s).
    /// `expectedEngineVersion` nil accepts any engine; `environment` replaces the worker's
    /// (default: derive's own).
    static func launch(_ path: String, expectedEngineVersion: String?, arguments: [String] = [],
                       environment: [String: String]? = nil, timeout: Double = 30) throws -> WorkerProcess {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw WorkerError.launch("cannot make a socket pair: \(String(cString: strerror(errno)))")
        }
        // The worker's end is closed here as soon as the worker holds it (after the spawn): while
        // derive kept it open, a worker that died before its hello (libvips missing: status 127)
        // was noticed only at the deadline, 30 s later (attack 39b's M1).
        var workerEnd: Int32 = pair[1]
        defer { if workerEnd >= 0 { close(workerEnd) } }
        let temporary: WorkerTemporaryFolder
        do { temporary = try WorkerTemporaryFolder.create() } catch {
            close(pair[0])
            throw error
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for case let pointer? in argv { free(pointer) } }
        // `environment` (default: derive's own) with every temporary path in the worker's folder.
        let workerEnvironment: [String: String] = temporary.environment(from: environment ?? ProcessInfo.processInfo.environment)
        var envp: [UnsafeMutablePointer<CChar>?] = workerEnvironment.keys.sorted().map { key -> UnsafeMutablePointer<CChar>? in
            strdup(key + "=" + (workerEnvironment[key] ?? ""))
        }
        envp.append(nil)
        defer { for case let pointer? in envp { free(pointer) } }
        // Stdin /dev/null, stdout to derive's stderr, the socket as fd 3 and nothing else open: a
        // descriptor derive inherited without close-on-exec (a shell's `exec 7>file`, a parent's
        // socket) no longer lives on in the worker (issue #13). Default signals, none blocked: a
        // server may ignore or block signals (SIGPIPE, SIGTERM) that the worker must receive normally.
        let byFork: Int32 = ProcessInfo.processInfo.environment["DERIVE_TEST_SPAWN_BY_FORK"] == nil ? 0 : 1
        func spawn() -> (pid: pid_t, status: Int32) {
            let started = derive_spawn_worker(path, argv, envp, pair[1], byFork)
            return started > 0 ? (started, 0) : (0, -started)
        }
        var (pid, status) = spawn()
        // ETXTBSY: a worker binary just written (installed, copied) is still open for writing in
        // some process forked meanwhile; that descriptor closes at its exec, within milliseconds.
        var waits = 0
        while status == ETXTBSY, waits < 50 {
            waits += 1
            usleep(10_000)
            (pid, status) = spawn()
        }
        close(workerEnd)
        workerEnd = -1
        guard status == 0 else {
            close(pair[0])
            temporary.remove()
            throw WorkerError.launch("cannot start the render worker \(path): \(String(cString: strerror(status)))")
        }
        let worker = WorkerProcess(pid: pid, fd: pair[0], temporary: temporary)
        let started = Date()
        // Whether it exited before its hello while something it started (a wrapper script's
        // `helper &`) still holds its socket: no end of file comes then, and it was reported 30 s
        // later as not answering, its status unsaid (attack 40b's L1). Peeked at, not reaped: a
        // describing worker sends its hello and exits at once, and the hello is still read then
        // (`FrameChannel.receive`); only `reap` and `stop` reap, so no pid is killed once reused.
        var exited = false
        do {
            guard let payload = try worker.channel.receive(interrupt: {
                if Self.hasExited(pid) { exited = true; return true }
                return Date().timeIntervalSince(started) > timeout
            }) else {
                throw FrameChannel.Failure.closed
            }
            let hello = try WorkerHello(payload)
            if let expectedEngineVersion, hello.engineVersion != expectedEngineVersion {
                throw WorkerError.launch("the render worker \(path) renders with '\(hello.engineVersion)', but derive planned with '\(expectedEngineVersion)': the worker or a library changed since (or they come from different builds; install them together); run the command again")
            }
            worker.hello = hello
        } catch let error as WorkerError {
            worker.stop()
            throw error
        } catch FrameChannel.Failure.interrupted where exited {
            throw WorkerError.launch("the render worker \(path) did not start (\(worker.reap() ?? "ended"))")
        } catch FrameChannel.Failure.interrupted {
            // Killed here, by derive: its ending (SIGKILL) would only say so.
            worker.stop()
            throw WorkerError.launch("the render worker \(path) did not answer within \(Self.seconds(timeout)) s of its start (it was stopped); "
                                     + "run it by hand to see why, or set DERIVE_RENDER_WORKER to a working one")
        } catch {
            let ending = worker.stop()
            throw WorkerError.launch("the render worker \(path) did not start (\(ending ?? "\(error)"))")
        }
        return worker
    }

    /// Kills the worker with SIGKILL (if still running), reaps it and closes the socket.
    /// Returns how it ended, e.g. "was killed by signal SIGSEGV", nil if it was already reaped.
    @discardableResult
    func stop() -> String? {
        guard !reaped else { return nil }
        kill(pid, SIGKILL)
        return reap()
    }

    /// Whether the process `pid` (a child) has ended, without reaping it (`WNOWAIT`).
    static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0 {
            if errno != EINTR { return false }
        }
        return info._sifields._sigchld.si_pid == pid
    }

    /// Waits for the worker to end (it closed its socket or was killed) and says how it ended.
    func reap() -> String? {
        guard !reaped else { return nil }
        reaped = true
        close(channel.fd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return "could not be waited for (\(String(cString: strerror(errno))))" }
        }
        // The worker has ended: nothing writes into its folder any more.
        temporary.remove()
        return Self.describe(status)
    }

    /// `timeout` as the user reads it: "30", "0.5".
    static func seconds(_ timeout: Double) -> String {
        timeout == timeout.rounded() ? String(Int(timeout)) : String(timeout)
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "was stopped by signal \(signalName(signal))"
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGKILL: "SIGKILL",
                                      SIGILL: "SIGILL", SIGFPE: "SIGFPE", SIGTERM: "SIGTERM", SIGINT: "SIGINT",
                                      SIGPIPE: "SIGPIPE", SIGTRAP: "SIGTRAP", SIGXCPU: "SIGXCPU"]
        return names[signal] ?? "\(signal)"
    }
}

/// Why the pool could not render at all (as opposed to a render's own `ProcessError`).
enum WorkerError: Error, CustomStringConvertible {
    case launch(String)

    var description: String {
        switch self {
        case .launch(let message): return message
        }
    }
}
