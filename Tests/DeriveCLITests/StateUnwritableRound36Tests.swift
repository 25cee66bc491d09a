import Foundation
import Testing
import TestSupport

/// Attack 36's F4 and F7: a state database that cannot be written (a full disk, an immutable or
/// read-only state folder). The no-op's stat-cache refresh is an optimisation: it may fail, and the
/// build still says "Nothing to do" (exit 0) with one warning naming the file and the cause. A
/// build that must record something fails with a message naming the file, why and how to fix it,
/// never SQLite's raw statement.
@Suite(.ownThreads, .serialized) struct StateUnwritableRound36Tests {
    static let manifest = """
    version: 1
    buckets:
      src: {path: src}
      out: {path: out}
    derivatives:
      - name: r
        from: src/*.jpg
        process: image/resize,w_16/format,png
        to: out/{name}.png

    """

    func out(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// A project built just after its sources were copied (their records are within the racy
    /// margin, so every later plan hashes them again and wants to save the refreshed records).
    func builtProject(in folder: URL) throws {
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("src/a.jpg"))
        try copySample("orientation-1.jpg", to: folder.appendingPathComponent("src/b.jpg"))
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status == 0, "\(out(build))")
    }

    func outputs(_ folder: URL) throws -> [Data] {
        try ["out/a.png", "out/b.png"].map { try Data(contentsOf: folder.appendingPathComponent($0)) }
    }

    static func tool(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Writes zeros to `url` until the file system refuses more.
    static func fill(_ url: URL) {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        var one: UInt8 = 0
        while write(fd, &one, 1) == 1 {}
    }

    @Test func aNoOpOnAFullDiskStillSaysNothingToDo() throws {
        let mount = try CLI.temporaryFolder()
        defer { _ = Self.tool("/usr/bin/umount", [mount.path]); try? FileManager.default.removeItem(at: mount) }
        // Needs root (or a mount namespace): without it there is no small disk to fill.
        guard Self.tool("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount.path]) == 0 else { return }
        let folder = mount.appendingPathComponent("p")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try builtProject(in: folder)
        let before = try outputs(folder)
        Thread.sleep(forTimeInterval: 1.2)
        Self.fill(mount.appendingPathComponent("filler"))

        for _ in 0..<2 {
            let build = try CLI.run(["build"], in: folder)
            #expect(build.status == 0, "\(out(build))")
            #expect(out(build).contains("Nothing to do: 2 outputs up to date"), "\(out(build))")
            let warnings = build.stderr.split(separator: "\n").filter { $0.contains("warning") }
            #expect(warnings.count == 1, "\(build.stderr)")
            #expect(warnings.first.map { $0.contains(".derive/derive/state.sqlite") && $0.contains("full") } == true, "\(build.stderr)")
            #expect(!build.stderr.contains("UPDATE"), "SQLite's raw statement: \(build.stderr)")
            #expect(try outputs(folder) == before)
        }
        let check = try CLI.run(["check"], in: folder)
        #expect(check.status == 0, "\(out(check))")

        // Space again: the refresh is saved, and the no-op says nothing more.
        try FileManager.default.removeItem(at: mount.appendingPathComponent("filler"))
        let again = try CLI.run(["build"], in: folder)
        #expect(again.status == 0, "\(out(again))")
        #expect(out(again).contains("Nothing to do: 2 outputs up to date"), "\(out(again))")
        #expect(!again.stderr.contains("warning"), "\(again.stderr)")
        #expect(try outputs(folder) == before)
    }

    @Test func anImmutableStateFolderIsNamedWithItsFix() throws {
        let folder = try CLI.temporaryFolder()
        let state = folder.appendingPathComponent(".derive/derive")
        defer { _ = Self.tool("/usr/bin/chattr", ["-i", state.path]); try? FileManager.default.removeItem(at: folder) }
        try builtProject(in: folder)
        let before = try outputs(folder)
        Thread.sleep(forTimeInterval: 1.2)
        // Needs root and a file system with the immutable flag (not tmpfs).
        guard Self.tool("/usr/bin/chattr", ["+i", state.path]) == 0 else { return }

        let noOp = try CLI.run(["build"], in: folder)
        #expect(noOp.status == 0, "\(out(noOp))")
        #expect(out(noOp).contains("Nothing to do: 2 outputs up to date"), "\(out(noOp))")
        #expect(noOp.stderr.split(separator: "\n").filter { $0.contains("warning") }.count == 1, "\(noOp.stderr)")
        #expect(noOp.stderr.contains(".derive/derive/state.sqlite"), "\(noOp.stderr)")
        #expect(try outputs(folder) == before)

        // A build with something to record fails, naming the file, why and how to fix it.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("src/b.jpg"))
        try copySample("orientation-3.jpg", to: folder.appendingPathComponent("src/b.jpg"))
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 1, "\(out(build))")
        #expect(build.stderr.contains(".derive/derive/state.sqlite"), "\(build.stderr)")
        #expect(build.stderr.contains("chattr -i"), "no fix named: \(build.stderr)")
        #expect(!build.stderr.contains("while executing"), "SQLite's raw statement: \(build.stderr)")

        // Writable again: the build records what it must.
        #expect(Self.tool("/usr/bin/chattr", ["-i", state.path]) == 0)
        let healed = try CLI.run(["build"], in: folder)
        #expect(healed.status == 0, "\(out(healed))")
        #expect(try CLI.run(["check"], in: folder).status == 0)
    }

    /// Runs derive with `arguments` in `folder` with its state folder remounted read-only, in a
    /// mount namespace of the run's own (gone when derive exits); status 99 when that failed.
    static func runWithReadOnlyState(_ arguments: [String], in folder: URL) throws -> CLI.Result {
        let script = "mount --bind \"$1\" \"$1\" && mount -o remount,ro,bind \"$1\" || exit 99; shift; exec \"$@\""
        return try CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", ".derive/derive", CLI.executable.path] + arguments,
                           in: folder, executable: BindMounts.unshare)
    }

    /// Attack 36c's M3: the state folder on a read-only mount. `build.lock` cannot be opened for
    /// writing (EROFS), which failed even a build with nothing to do; the lock is now taken on a
    /// read-only descriptor (flock needs no write access, so a concurrent build is still kept
    /// out), the no-op answers as promised, and a build with work fails before writing anything.
    @Test(.enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
    func aReadOnlyStateMountStillAnswersANoOp() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try builtProject(in: folder)
        let before = try outputs(folder)
        let lockBefore = try Data(contentsOf: folder.appendingPathComponent("derive.lock"))
        Thread.sleep(forTimeInterval: 1.2)

        let noOp = try Self.runWithReadOnlyState(["build"], in: folder)
        #expect(noOp.status == 0, "\(out(noOp))")
        #expect(out(noOp).contains("Nothing to do: 2 outputs up to date"), "\(out(noOp))")
        let warnings = noOp.stderr.split(separator: "\n").filter { $0.contains("warning") }
        #expect(warnings.count == 1, "\(noOp.stderr)")
        #expect(warnings.first.map { $0.contains(".derive/derive") } == true, "\(noOp.stderr)")
        #expect(try outputs(folder) == before)

        // clean removes outputs it could not then unrecord: refused too, nothing removed.
        let clean = try Self.runWithReadOnlyState(["clean"], in: folder)
        #expect(clean.status == 1, "\(out(clean))")
        #expect(clean.stderr.contains("read-only"), "\(clean.stderr)")
        #expect(try outputs(folder) == before)

        // Something to build: refused before anything is written, naming the folder and the fix.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("src/b.jpg"))
        try copySample("orientation-3.jpg", to: folder.appendingPathComponent("src/b.jpg"))
        let build = try Self.runWithReadOnlyState(["build"], in: folder)
        #expect(build.status == 1, "\(out(build))")
        #expect(build.stderr.contains(".derive/derive"), "\(build.stderr)")
        #expect(build.stderr.contains("read-only"), "\(build.stderr)")
        #expect(build.stderr.contains("remount"), "no fix named: \(build.stderr)")
        #expect(try outputs(folder) == before, "an output was written though its build could not be recorded")
        #expect(try Data(contentsOf: folder.appendingPathComponent("derive.lock")) == lockBefore)

        // Writable again: the build records what it must.
        let healed = try CLI.run(["build"], in: folder)
        #expect(healed.status == 0, "\(out(healed))")
        #expect(try CLI.run(["check"], in: folder).status == 0)
    }
}
