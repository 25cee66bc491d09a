import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The thirteenth round on build safety (issue 9, attack 12's B1, W1 to W3 and K), end to end
/// through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound13Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// Runs `derive` in the project and returns its result and its own peak resident memory in KiB:
    /// the highest `VmHWM` of its `/proc/<pid>/status`, polled every 2 ms until it exits (no outside
    /// tool, so the test never skips: CI's fresh machine has no `/usr/bin/time`). Not `wait4`'s
    /// `ru_maxrss`: posix_spawn shares the test runner's memory until exec, and Linux folds that
    /// memory's peak (the runner's, hundreds of MiB on CI) into the child's `ru_maxrss`; `VmHWM` is
    /// the peak of the process's own memory since its last exec. A whole read of the 400 MiB file
    /// takes far longer than one poll, and the peak only grows, so it cannot slip between polls.
    /// `sh` execs derive, so the process measured is derive itself.
    func runMeasured(_ project: Project, _ arguments: [String]) throws -> (result: CLI.Result, peakKiB: Int) {
        let scratch = (try ScratchFolder.make("measured"))
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout").path, err = scratch.appendingPathComponent("stderr").path
        let argv = ["/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\" >\"$OUT\" 2>\"$ERR\"", "sh",
                    project.root.path, CLI.executable.path] + arguments
        let environment = ProcessInfo.processInfo.environment.merging(["OUT": out, "ERR": err]) { $1 }.map { "\($0.key)=\($0.value)" }
        var cArguments = argv.map { strdup($0) } + [nil]
        var cEnvironment = environment.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) }; cEnvironment.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, &cArguments, &cEnvironment)
        try #require(spawned == 0, "posix_spawn /bin/sh: \(spawned)")
        var status: Int32 = 0
        var peakKiB = 0
        while true {
            peakKiB = max(peakKiB, Self.peakResidentKiB(of: pid) ?? 0)
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { Issue.record("waitpid \(pid): errno \(errno)"); break }
            usleep(2_000)
        }
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let result = CLI.Result(status: exitStatus, stdout: (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data(),
                                stderr: String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: err))) ?? Data(), as: UTF8.self))
        return (result, peakKiB)
    }

    /// `VmHWM` (peak resident set since the last exec) of a live process, in KiB; nil once it has
    /// exited (a zombie has no memory left to report).
    static func peakResidentKiB(of pid: pid_t) -> Int? {
        // Read with read(2): /proc files report size 0, which Foundation's whole-file reads trust.
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        let status = String(decoding: bytes, as: UTF8.self)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        return Int(line.dropFirst("VmHWM:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")   // "VmHWM:\t  1234 kB"
    }

    /// A sparse file of `bytes` zeros at `path` (no disk space used; reading it costs its size).
    func sparseFile(_ project: Project, _ path: String, bytes: UInt64) throws {
        let url = project.url(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: bytes)
        try handle.close()
    }

    static let bigFile: UInt64 = 400 << 20
    /// Far below the 400 MiB a whole read costs, far above what the binary needs otherwise.
    static let peakLimitKiB = 200 << 10

    // MARK: B1: a file named as the index is never read whole into memory

    /// A hostile lock header names a user's 400 MiB file as the old index (fresh clone): plan,
    /// check, build and clean keep it, name it, and never load it.
    @Test func aHugeFileTheLockNamesAsTheOldIndexIsNotReadIntoMemory() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try sparseFile(project, "meta/big.json", bytes: Self.bigFile)
        for command in [["plan"], ["check"], ["build"], ["clean"]] {
            try? FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone
            if command == ["clean"] { #expect(try project.run(["build", "-q"]).status == 0); try FileManager.default.removeItem(at: project.url(".derive")) }
            try pointLockHeader(project, at: "meta/big.json", digest: String(repeating: "0", count: 64))
            let (result, peak) = try runMeasured(project, command)
            #expect(peak > 0, "\(command): no VmHWM was read for derive")
            #expect(peak < Self.peakLimitKiB, "\(command): \(peak) KiB: the file the lock names as the old index was read whole")
            if command != ["check"] {
                #expect((text(result.stdout) + result.stderr).contains("meta/big.json"), "\(command): \(text(result.stdout)) \(result.stderr)")
            }
            #expect(try FileManager.default.attributesOfItem(atPath: project.url("meta/big.json").path)[.size] as? UInt64 == Self.bigFile)
        }
    }

    /// A user's 400 MiB file at the manifest's index path, with a state and without: plan and
    /// build refuse it (not Derive's index) without loading it; clean keeps it and says so.
    @Test(arguments: [true, false])
    func aHugeFileAtTheIndexPathIsNotReadIntoMemory(withState: Bool) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        try sparseFile(project, "out/index.json", bytes: Self.bigFile)
        for command in [["plan"], ["build"], ["check"], ["clean"]] {
            if !withState { try? FileManager.default.removeItem(at: project.url(".derive")) }
            let (result, peak) = try runMeasured(project, command)
            #expect(peak > 0, "\(command): no VmHWM was read for derive")
            #expect(peak < Self.peakLimitKiB, "\(command): \(peak) KiB: the file at the index path was read whole")
            let said = text(result.stdout) + result.stderr
            #expect(said.contains("out/index.json"), "\(command): \(said)")
            if command != ["clean"] { #expect(said.contains("not written by Derive"), "\(command): \(said)") }
            #expect(try FileManager.default.attributesOfItem(atPath: project.url("out/index.json").path)[.size] as? UInt64 == Self.bigFile)
        }
    }
}

extension BuildSafetyRound13Tests {
    /// A manifest whose rule `t` reads `from` and writes `to`, no index.
    static func lockManifest(from: String, to: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: \(from)
            process: image/resize,w_20
            to: \(to)

        """
    }

    /// Lock lines for `user` (files no source can give) and for `stale` (what a source could give:
    /// Derive's old outputs in a fresh clone) keep them through plan, build and clean: without a
    /// state nothing is deleted on the lock's word (attack 16's H2); each is named once.
    func lockLines(from: String, to: String, user: [String], stale: [String]) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let entries = (user + stale).map { (path: $0, format: "jpg") }
        let bytes = try BuildSafetyRound12Tests().freshCloneWithUserFiles(project, manifest: Self.lockManifest(from: from, to: to), entries)
        let plan = try project.run(["plan"])
        let planned = text(plan.stdout) + plan.stderr
        #expect(plan.status == 0, "\(planned)")
        for path in user + stale {
            #expect(planned.contains("= \(path)  left: known only from derive.lock"), "\(path) not named: \(planned)")
        }
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        for path in user + stale { #expect(try Data(contentsOf: project.url(path)) == bytes[path], "build deleted \(path): \(text(build.stdout))") }
        try FileManager.default.removeItem(at: project.url(".derive"))
        try BuildSafetyRound11Tests().injectLock(project, user.map { (path: $0, format: "jpg") })
        _ = try project.run(["clean"])
        for path in user { #expect(try Data(contentsOf: project.url(path)) == bytes[path], "clean deleted \(path)") }
    }

    // MARK: K: `**` and {key} never vouch for a name starting with a dot

    @Test func lockLinesForDotNamesThroughDoubleStarAreRefused() throws {
        try lockLines(from: "src/**/*.jpg", to: "out/k/{key}",
                      user: ["out/k/.y.jpg", "out/k/.g/z.jpg", "out/k/sub/.w.jpg", "out/k/sub/.hid/x.jpg"],
                      stale: ["out/k/old.jpg", "out/k/sub/deeper/old.jpg"])
    }

    // MARK: leftover: a {dir} line only where a source the rule's from: matches can be

    /// `from: src/*.jpg` has no folders: `{dir}` is always empty, so a line naming a file in a
    /// folder of the output bucket is a user's file; one at the top is Derive's stale output.
    @Test func aDirLineInAFolderNoFromReachesIsKept() throws {
        try lockLines(from: "src/*.jpg", to: "out/{dir}/{name}.{ext}",
                      user: ["out/userfolder/x.jpg", "out/a/b/c.jpg"], stale: ["out/old.jpg"])
    }

    /// `from: src/photos/*.jpg`: `{dir}` is exactly `photos`.
    @Test func aDirLineOutsideTheFromFolderIsKept() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("src/photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: project.url("src/landscape.jpg"), to: project.url("src/photos/landscape.jpg"))
        let user = ["out/other/x.jpg", "out/x.jpg", "out/photos/sub/x.jpg"], stale = ["out/photos/old.jpg"]
        let entries = (user + stale).map { (path: $0, format: "jpg") }
        let bytes = try BuildSafetyRound12Tests().freshCloneWithUserFiles(project, manifest: Self.lockManifest(from: "src/photos/*.jpg", to: "out/{dir}/{name}.{ext}"), entries)
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        // Without a state, stale lines are left like the user's (attack 16's H2).
        for path in user + stale { #expect(try Data(contentsOf: project.url(path)) == bytes[path], "build deleted \(path): \(text(build.stdout))") }
        #expect(project.exists("out/photos/landscape.jpg"))
    }
}

extension BuildSafetyRound13Tests {
    // MARK: L1: a source bucket that is a loop of links, or a link to nothing, is said as such

    @Test(arguments: [("src", "leads back to itself (a loop of symbolic links)"), ("nowhere", "is a symbolic link to nothing")])
    func aSourceBucketThatIsABadLinkIsNamedForWhatItIs(_ target: String, _ said: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.moveItem(at: project.url("src"), to: project.url("src.x"))
        try FileManager.default.createSymbolicLink(atPath: project.url("src").path, withDestinationPath: target)
        for command in [["validate"], ["plan"]] {
            let result = try project.run(command)
            #expect(result.status != 0)
            let text = text(result.stdout) + result.stderr
            #expect(text.contains("whose folder src \(said)"), "\(command): \(text)")
        }
    }
}
