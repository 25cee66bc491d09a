import CChildProcess
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
/// with the deadline too, so a child that keeps git's output open cannot hold Derive (F3); and
/// bound to the calling thread, so that a derive killed while git runs leaves no git running
/// (round 31's F6).
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
        /// The reader asked for no more (`run(…receive:)`).
        public var stopped = false
        public var succeeded: Bool { status == 0 && !timedOut && !tooLarge && !stopped }
        public var errorText: String { String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Runs `git [options] -C folder ARGUMENTS` (`git`: another executable, for tests): its
    /// output, cut at `maxBytes` (then `tooLarge`) or the deadline (then `timedOut`).
    public static func run(_ arguments: [String], in folder: String, git: String? = nil,
                           deadline: TimeInterval, maxBytes: Int) throws -> Outcome {
        var output = Data()
        var outcome = try run(arguments, in: folder, git: git, deadline: deadline, maxBytes: maxBytes) { chunk in
            output.append(contentsOf: chunk)
            return true
        }
        outcome.output = output
        return outcome
    }

    /// Runs `git [options] -C folder ARGUMENTS` with `input` (if any) as its standard input, written
    /// as git reads it, and hands its output to `receive` as it arrives, never held whole
    /// (`Outcome.output` stays empty): more than `maxBytes` of it, or `receive` answering false,
    /// ends the run (`tooLarge`, `stopped`), as the deadline does (`timedOut`).
    public static func run(_ arguments: [String], in folder: String, git: String? = nil, input: Data? = nil,
                           deadline: TimeInterval, maxBytes: Int, receive: (UnsafeRawBufferPointer) -> Bool) throws -> Outcome {
        guard let executable = git ?? executable() else {
            throw Failure(description: "git is not installed (looked in /usr/bin, /usr/local/bin, /bin)")
        }
        // Socket pairs rather than pipes: made close-on-exec atomically (no pipe2 in Glibc's
        // module), so no other process started meanwhile inherits git's output.
        var channels: [Int32] = []
        defer { for fd in channels { close(fd) } }
        func channel() throws -> (ours: Int32, theirs: Int32) {
            var ends: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
                throw Failure(description: "cannot run git: \(String(cString: strerror(errno)))")
            }
            channels += ends
            return (ends[0], ends[1])
        }
        func release(_ fd: Int32) { close(fd); channels.removeAll { $0 == fd } }
        let out = try channel(), err = try channel()
        let inputEnds: (ours: Int32, theirs: Int32)
        if input != nil { inputEnds = try channel() } else {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard null >= 0 else { throw Failure(description: "cannot run git: \(String(cString: strerror(errno)))") }
            channels.append(null)
            inputEnds = (-1, null)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + options + ["-C", folder] + arguments).map { strdup($0) } + [nil]
        defer { for case let pointer? in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?] = environment.keys.sorted().map { strdup($0 + "=" + (environment[$0] ?? "")) }
        envp.append(nil)
        defer { for case let pointer? in envp { free(pointer) } }
        // In a process group of its own (killed whole at the deadline), and bound to this thread,
        // which waits for it: a derive killed meanwhile (even by SIGKILL) takes git and its
        // children with it (`ChildProcess`; attack round 31's F6).
        var pid = derive_spawn_bound_to_thread(executable, argv, envp, inputEnds.theirs, out.theirs, err.theirs)
        // ETXTBSY: an executable just written is still open for writing in a process forked
        // meanwhile; that descriptor closes at its exec, within milliseconds (as WorkerProcess).
        var waits = 0
        while pid == -ETXTBSY, waits < 50 {
            waits += 1
            usleep(10_000)
            pid = derive_spawn_bound_to_thread(executable, argv, envp, inputEnds.theirs, out.theirs, err.theirs)
        }
        release(out.theirs)
        release(err.theirs)
        release(inputEnds.theirs)
        guard pid > 0 else { throw Failure(description: "cannot run git: \(String(cString: strerror(-pid)))") }
        var outcome = Outcome(status: nil, output: Data(), errors: Data())
        let end = Date().addingTimeInterval(deadline)
        var open = [out.ours, err.ours]
        // What is left to write of `input`; its end closed once written (git then reads its end).
        var writing: Int32? = input != nil ? inputEnds.ours : nil
        var written = 0
        let toWrite = input ?? Data()
        if let fd = writing, toWrite.isEmpty { release(fd); writing = nil }
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        reading: while !open.isEmpty {
            let remaining = end.timeIntervalSinceNow
            if remaining <= 0 { outcome.timedOut = true; break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if let writing { fds.append(pollfd(fd: writing, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 { if errno == EINTR { continue }; break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == writing {
                    // Never blocking (git may be busy writing its answer) and never SIGPIPE (git may be gone).
                    let count = toWrite.withUnsafeBytes { bytes in
                        send(entry.fd, bytes.baseAddress! + written, bytes.count - written, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                    }
                    if count > 0 { written += count }
                    if written == toWrite.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                        release(entry.fd)
                        writing = nil
                    }
                    continue
                }
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { open.removeAll { $0 == entry.fd }; continue }
                if entry.fd == out.ours {
                    received += count
                    if received > maxBytes { outcome.tooLarge = true; break reading }
                    let wanted = buffer.withUnsafeBytes { receive(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                    if !wanted { outcome.stopped = true; break reading }
                } else if outcome.errors.count < 4096 {
                    outcome.errors.append(contentsOf: buffer[0..<min(count, 4096 - outcome.errors.count)])
                }
            }
        }
        if outcome.timedOut || outcome.tooLarge || outcome.stopped { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
        for fd in channels { close(fd) }
        channels = []
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
        if !outcome.timedOut && !outcome.tooLarge && !outcome.stopped && (status & 0x7f) == 0 { outcome.status = (status >> 8) & 0xff }
        return outcome
    }
}
