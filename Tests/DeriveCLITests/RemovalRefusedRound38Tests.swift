import Foundation
import Testing
import TestSupport

/// Whether the immutable flag can be set here (root, and a file system that has it: not tmpfs).
enum ImmutableFlag {
    static let chattr = "/usr/bin/chattr"
    static let isPossible: Bool = {
        guard FileManager.default.isExecutableFile(atPath: chattr), let folder = try? CLI.temporaryFolder() else { return false }
        defer { try? FileManager.default.removeItem(at: folder) }
        let probe = folder.appendingPathComponent("probe")
        guard (try? Data("x".utf8).write(to: probe)) != nil, set(true, probe) else { return false }
        return set(false, probe)
    }()

    /// `chattr +i` (or `-i`) on `url`; whether it worked.
    @discardableResult
    static func set(_ on: Bool, _ url: URL) -> Bool {
        (try? CLI.run([on ? "+i" : "-i", url.path], executable: chattr))?.status == 0
    }
}

/// Attack 38a's M1 and L1: a file Derive wrote that the system will not let it delete (an
/// immutable flag; for a normal user a sticky shared folder or another owner's folder; a
/// read-only mount). `clean` removed the lock and the state while the file stayed, so the next
/// build refused Derive's own file, and both `clean` and `build` blamed "a file was moved onto
/// it … it is not Derive's" for what was the system's refusal. The real reason is named with
/// what to do, `clean` keeps the lock as the file's record, and `build` counts a deletion not
/// done (its record kept, tried again next build), not a derivative that failed.
@Suite(.ownThreads, .serialized) struct RemovalRefusedRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
    func out(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    @Test(.enabled(if: ImmutableFlag.isPossible, "the immutable flag needs root and a file system that has it"))
    func cleanKeepsTheLockOfAnOutputItCannotDelete() throws {
        let project = try Project()
        let stuck = project.url("out/landscape.jpg")
        defer { ImmutableFlag.set(false, stuck); project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let bytes = try Data(contentsOf: stuck)
        #expect(ImmutableFlag.set(true, stuck))

        let clean = try project.run(["clean"])
        #expect(clean.status == 1, "\(out(clean))")
        #expect(clean.stderr.contains("out/landscape.jpg") && clean.stderr.contains("Operation not permitted"), "the real reason is not named: \(clean.stderr)")
        #expect(clean.stderr.contains("chattr -i"), "no fix named: \(clean.stderr)")
        #expect(!clean.stderr.contains("moved onto it"), "a race is blamed: \(clean.stderr)")
        #expect(text(clean.stdout).contains("derive.lock kept"), "\(text(clean.stdout))")
        let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        #expect(lock.contains("out/landscape.jpg"), "the lock no longer records the file left: \(lock)")
        #expect(try Data(contentsOf: stuck) == bytes)
        #expect(!project.exists("out/cmyk.jpg"), "the outputs that could go were not removed")

        // The file is Derive's again for the next build and clean.
        #expect(ImmutableFlag.set(false, stuck))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(out(build))")
        #expect(!build.stderr.contains("not written by Derive"), "\(build.stderr)")
        #expect(try project.run(["check"]).status == 0)
        let again = try project.run(["clean"])
        #expect(again.status == 0, "\(out(again))")
        #expect(!project.exists("out/landscape.jpg") && !project.exists("derive.lock"), "\(out(again))")
    }

    @Test(.enabled(if: ImmutableFlag.isPossible, "the immutable flag needs root and a file system that has it"))
    func cleanKeepsTheLockOfAnIndexItCannotDelete() throws {
        let project = try Project()
        let index = project.url("out/index.json")
        defer { ImmutableFlag.set(false, index); project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let bytes = try Data(contentsOf: index)
        #expect(ImmutableFlag.set(true, index))

        let clean = try project.run(["clean"])
        #expect(clean.status == 1, "\(out(clean))")
        #expect(clean.stderr.contains("out/index.json") && clean.stderr.contains("Operation not permitted"), "\(clean.stderr)")
        #expect(!clean.stderr.contains("moved onto it"), "\(clean.stderr)")
        #expect(text(clean.stdout).contains("derive.lock kept"), "\(text(clean.stdout))")
        #expect(try Data(contentsOf: index) == bytes)

        // The whole build is not blocked by the index Derive wrote.
        #expect(ImmutableFlag.set(false, index))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(out(build))")
        #expect(!build.stderr.contains("not written by Derive"), "\(build.stderr)")
        #expect(try project.run(["check"]).status == 0)
    }

    /// The same refusal without chattr: the output folder on a read-only mount (EROFS), in a
    /// mount namespace of clean's own.
    @Test(.enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
    func cleanOnAReadOnlyOutputMountKeepsTheLock() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let before = try project.outputs.map { try Data(contentsOf: project.url("out/\($0)")) }
        let script = "mount --bind out out && mount -o remount,ro,bind out || exit 99; exec \"$@\""
        let clean = try CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", CLI.executable.path, "clean"],
                                in: project.root, executable: BindMounts.unshare)
        #expect(clean.status == 1, "\(out(clean))")
        #expect(clean.stderr.contains("Read-only file system"), "\(clean.stderr)")
        #expect(clean.stderr.contains("remount"), "no fix named: \(clean.stderr)")
        #expect(!clean.stderr.contains("moved onto it"), "\(clean.stderr)")
        #expect(text(clean.stdout).contains("derive.lock kept"), "\(text(clean.stdout))")
        #expect(try project.outputs.map { try Data(contentsOf: project.url("out/\($0)")) } == before)

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(out(build))")
        #expect(!build.stderr.contains("not written by Derive"), "\(build.stderr)")
        #expect(try project.run(["check"]).status == 0)
    }

    @Test(.enabled(if: ImmutableFlag.isPossible, "the immutable flag needs root and a file system that has it"))
    func anOrphanTheBuildCannotDeleteIsADeletionNotDone() throws {
        let project = try Project()
        let orphan = project.url("out/cmyk.jpg")
        defer { ImmutableFlag.set(false, orphan); project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let bytes = try Data(contentsOf: orphan)
        try FileManager.default.removeItem(at: project.url("src/cmyk.jpg"))
        #expect(ImmutableFlag.set(true, orphan))

        let build = try project.run(["build"])
        #expect(build.status == 1, "\(out(build))")
        #expect(build.stderr.contains("out/cmyk.jpg") && build.stderr.contains("Operation not permitted"), "\(build.stderr)")
        #expect(build.stderr.contains("chattr -i"), "no fix named: \(build.stderr)")
        #expect(!build.stderr.contains("moved onto it"), "\(build.stderr)")
        #expect(!out(build).contains("not built") && !text(build.stdout).contains("failed"), "counted as a derivative: \(out(build))")
        #expect(text(build.stdout).contains("1 deletion not done"), "\(text(build.stdout))")
        #expect(try Data(contentsOf: orphan) == bytes)

        // Its record was kept: the next build deletes it.
        #expect(ImmutableFlag.set(false, orphan))
        let next = try project.run(["build"])
        #expect(next.status == 0, "\(out(next))")
        #expect(text(next.stdout).contains("deleted 1"), "\(text(next.stdout))")
        #expect(try project.run(["check"]).status == 0)
    }
}
