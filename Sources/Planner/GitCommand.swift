import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs `git` for Derive (the git proof, `derive diff`'s revisions) so that a repository Derive
/// merely reads can neither run a program nor stall it: a fixed environment and no user or
/// system configuration; no transport at all (`protocol.allow=never`, an empty
/// `GIT_ALLOW_PROTOCOL`), so a partial clone's lazy fetch cannot run the `uploadpack` or
/// `sshCommand` its `.git/config` names (attack round 29's F1); no fsmonitor hook; the process
/// started in a process group of its own, killed as a group at the deadline, and its pipes read
/// with the deadline too, so a child that keeps git's output open cannot hold Derive (F3).
public enum GitCommand {
    public static let environment: [String: String] = [
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C",
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_ALLOW_PROTOCOL": "",
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_LITERAL_PATHSPECS": "1",
        // `git replace` refs would let another object stand in for HEAD's blob (attack round 31, F2).
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
    ]

    /// Options before every command: no pager, no fsmonitor hook, no transport.
    static let options = ["--no-pager", "-c", "core.fsmonitor=false", "-c", "protocol.allow=never"]

    /// The installed git (never one found through the caller's PATH).
    public static func executable() -> String? {
        ["/usr/bin", "/usr/local/bin", "/bin"].first(where: { access($0 + "/git", X_OK) == 0 }).map { $0 + "/git" }
    }

    /// How a run ended.
    public struct Outcome: Sendable {
        /// Its exit status; nil when it was killed (deadline, answer too large) or did not exit.
        public var status: Int32?
        public var output: Data
        /// Standard error, at most the first 4 KiB.
        public var errors: Data
        public var timedOut = false
        public var tooLarge = false
        public var succeeded: Bool { status == 0 && !timedOut && !tooLarge }
        public var errorText: String { String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Runs `git [options] -C folder ARGUMENTS` (`git`: another executable, for tests): its
    /// output, cut at `maxBytes` (then `tooLarge`) or the deadline (then `timedOut`).
    public static func run(_ arguments: [String], in folder: String, git: String? = nil,
                           deadline: TimeInterval, maxBytes: Int) throws -> Outcome {
        guard let executable = git ?? executable() else {
            throw Failure(description: "git is not installed (looked in /usr/bin, /usr/local/bin, /bin)")
        }
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        // Socket pairs rather than pipes: made close-on-exec atomically (no pipe2 in Glibc's
        // module), so no other process started meanwhile inherits git's output.
        func channel(_ ends: inout [Int32]) -> Bool {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0
        }
        guard channel(&outPipe) else { throw Failure(description: "cannot run git: \(String(cString: strerror(errno)))") }
        guard channel(&errPipe) else {
            close(outPipe[0]); close(outPipe[1])
            throw Failure(description: "cannot run git: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        // A process group of its own (0: the child's pid), so the deadline kills its children too.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + options + ["-C", folder] + arguments).map { strdup($0) } + [nil]
        defer { for case let pointer? in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?] = environment.keys.sorted().map { strdup($0 + "=" + (environment[$0] ?? "")) }
        envp.append(nil)
        defer { for case let pointer? in envp { free(pointer) } }
        var pid: pid_t = 0
        var spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        // ETXTBSY: an executable just written is still open for writing in a process forked
        // meanwhile; that descriptor closes at its exec, within milliseconds (as WorkerProcess).
        var waits = 0
        while spawned == ETXTBSY, waits < 50 {
            waits += 1
            usleep(10_000)
            spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        close(outPipe[1])
        close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw Failure(description: "cannot run git: \(String(cString: strerror(spawned)))")
        }
        var outcome = Outcome(status: nil, output: Data(), errors: Data())
        let end = Date().addingTimeInterval(deadline)
        var open = [outPipe[0], errPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        reading: while !open.isEmpty {
            let remaining = end.timeIntervalSinceNow
            if remaining <= 0 { outcome.timedOut = true; break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 { if errno == EINTR { continue }; break }
            for entry in fds where entry.revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { open.removeAll { $0 == entry.fd }; continue }
                if entry.fd == outPipe[0] {
                    outcome.output.append(contentsOf: buffer[0..<count])
                    if outcome.output.count > maxBytes { outcome.tooLarge = true; break reading }
                } else if outcome.errors.count < 4096 {
                    outcome.errors.append(contentsOf: buffer[0..<min(count, 4096 - outcome.errors.count)])
                }
            }
        }
        if outcome.timedOut || outcome.tooLarge { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
        close(outPipe[0])
        close(errPipe[0])
        var status: Int32 = 0
        // git closed its output: it is exiting (or was killed); a git that closed its output and
        // keeps running is killed once the deadline passes.
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { break }
            if end.timeIntervalSinceNow <= 0 && !outcome.timedOut { outcome.timedOut = true; kill(-pid, SIGKILL); kill(pid, SIGKILL) }
            usleep(2_000)
        }
        // Its children too: nothing git started outlives the run.
        kill(-pid, SIGKILL)
        if !outcome.timedOut && !outcome.tooLarge && (status & 0x7f) == 0 { outcome.status = (status >> 8) & 0xff }
        return outcome
    }
}
