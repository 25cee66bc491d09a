import Foundation
import Testing
import TestSupport
import Planner

/// Attack round 31 on the git proof, end to end. F1: in a damaged clone (an output's loose
/// object truncated) `git ls-tree -l` still showed the blob's size, so the restyled build
/// rendered over the output on git's "proof", and `git checkout -- PATH` then failed: the bytes
/// were lost. F6: a derive killed (SIGKILL) while git ran left git running.
@Suite(.ownThreads, .serialized) struct GitProofCLIRound31Tests {
    let clone = FreshCloneVerifyTests()
    let cli = GitProofCLITests()
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// A fresh clone whose committed outputs' lock lines are stale (the manifest restyled since).
    func restyledClone() throws -> BuildSafetyAttackTests.Project {
        let project = try clone.freshClone(hashed: false)
        try cli.commitAndClone(project)
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: false)
            .replacingOccurrences(of: "/format,webp", with: "/quality,q_60/format,webp"))
        return project
    }

    @Test func aDamagedCloneLeavesTheFileInPlace() throws {
        let project = try restyledClone()
        defer { project.remove() }
        let output = project.url("out/landscape-100.webp")
        let before = try Data(contentsOf: output)
        let id = GitProof.objectId(of: before)
        let object = project.url(".git/objects/\(id.prefix(2))/\(id.dropFirst(2))")
        let stored = try Data(contentsOf: object)
        // A copy of its own (the clone hard-links the objects), cut in half: the header still inflates.
        try FileManager.default.removeItem(at: object)
        try stored.prefix(stored.count / 2).write(to: object)
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("out/landscape-100.webp exists and was not written by Derive")
                && build.stderr.contains("the repository's copy of it is damaged"), "\(build.stderr)")
        #expect(try Data(contentsOf: output) == before, "the file git cannot give back was overwritten")
    }

    /// git hangs (the repository's config is a FIFO nobody writes); derive is killed with SIGKILL
    /// meanwhile: git must not outlive it.
    @Test func gitDiesWithAKilledDerive() throws {
        let project = try restyledClone()
        defer { project.remove() }
        let config = project.url(".git/config")
        try FileManager.default.removeItem(at: config)
        #expect(mkfifo(config.path, 0o600) == 0)
        // Started and reaped here (posix_spawn, waitpid): Foundation's Process never saw this
        // killed child end.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] {
            let mode: Int32 = fd == 0 ? O_RDONLY : O_WRONLY
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", mode, 0)
        }
        let words: [String] = [CLI.executable.path, "build", project.url("derive.yaml").path]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for case let pointer? in argv { free(pointer) } }
        var derive: pid_t = 0
        #expect(posix_spawn(&derive, CLI.executable.path, &actions, nil, argv, environ) == 0)
        var git: pid_t?
        let started = Date()
        var status: Int32 = 0
        while git == nil, Date().timeIntervalSince(started) < 60, waitpid(derive, &status, WNOHANG) == 0 {
            git = Self.processes(naming: project.root.lastPathComponent).first
            if git == nil { usleep(20_000) }
        }
        defer { if let git { kill(git, SIGKILL) } }
        let found = try #require(git, "derive never ran git")
        kill(derive, SIGKILL)
        while waitpid(derive, &status, 0) < 0 && errno == EINTR {}
        let killed = Date()
        while Self.isRunning(found), Date().timeIntervalSince(killed) < 2 { usleep(20_000) }
        #expect(!Self.isRunning(found), "git (pid \(found)) still runs 2 s after derive was killed")
    }

    /// The processes whose arguments mention `name` (this project's folder), but this one.
    static func processes(naming name: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), pid != getpid(),
                  let arguments = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")) else { return nil }
            let words = arguments.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return words.contains("rev-parse") && words.contains(where: { $0.contains(name) }) ? pid : nil
        }
    }

    /// Whether `pid` is a live process (a zombie waiting for its reaper has ended).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
