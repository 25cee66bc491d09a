import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 13b's finding 4: a source that fails only when the build decodes it (damage inside a
/// JPEG's scan data, a source over a pixel limit) is planned as a create, so the plan lists the
/// lock and the index as rewritten, and every build then replaced both with the same bytes (new
/// inode and time, "rewrote derive.lock, out/index.json"). Two `build --watch` on the project took
/// each other's needless rewrite for a change and rebuilt each other without end. A build whose
/// new renders all fail now writes either file only when its bytes differ, and still names the
/// failure every time.
@Suite(.ownThreads, .serialized) struct FailedRenderRound27Tests {
    /// `images/a.jpg` (good) and `images/bad.jpg` (garbled inside its scan: `plan` cannot see it),
    /// one rule into `out/`, an index.
    final class Project {
        let root: URL
        init() throws {
            root = try CLI.temporaryFolder()
            try FileManager.default.createDirectory(at: url("images"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url("images/a.jpg"))
            var bytes = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
            for index in bytes.count / 2 ..< bytes.count / 2 + 2000 { bytes[index] ^= 0x55 }
            try bytes.write(to: url("images/bad.jpg"))
            try Data("""
            version: 1
            buckets:
              images: {path: images}
              site: {path: out, acl: public-read}
            derivatives:
              - name: r
                from: images/*.jpg
                process: image/resize,w_100/format,webp
                to: site/{name}.webp
                acl: public-read
            index: site/index.json

            """.utf8).write(to: url("derive.yaml"))
        }
        deinit { try? FileManager.default.removeItem(at: root) }

        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }

        /// Device, inode and modification time (ns) of a file: what a rewrite changes even with the same bytes.
        func identity(_ path: String) -> [Int]? {
            var info = stat()
            guard lstat(url(path).path, &info) == 0 else { return nil }
            return [Int(info.st_dev), Int(info.st_ino), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
        }
    }

    /// A build whose only render fails: exit 1, the failure named, the lock and the index not
    /// touched (same inode and time) and not said to be rewritten, run after run.
    @Test func aBuildWhoseOnlyRenderFailsLeavesTheLockAndIndexAsTheyAre() throws {
        let project = try Project()
        let first = try project.run(["build"])
        #expect(first.status == 1, "\(text(first.stdout)) \(first.stderr)")
        #expect(first.stderr.contains("images/bad.jpg") || first.stderr.contains("site/bad.webp"), "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: project.url("out/a.webp").path))
        let lock = try Data(contentsOf: project.url("derive.lock")), index = try Data(contentsOf: project.url("out/index.json"))
        let lockBefore = project.identity("derive.lock"), indexBefore = project.identity("out/index.json")
        #expect(lockBefore != nil && indexBefore != nil)
        for run in 1...2 {
            usleep(20_000)   // a rewrite would get another time stamp
            let again = try project.run(["build"])
            let said = text(again.stdout) + again.stderr
            #expect(again.status == 1, "run \(run): \(said)")
            #expect(said.contains("1 failed") && said.contains("corrupt"), "run \(run): the failure is not named again: \(said)")
            #expect(!said.contains("rewrote"), "run \(run): \(said)")
            #expect(project.identity("derive.lock") == lockBefore, "run \(run): derive.lock was written again (same bytes): \(said)")
            #expect(project.identity("out/index.json") == indexBefore, "run \(run): out/index.json was written again (same bytes): \(said)")
            #expect(try Data(contentsOf: project.url("derive.lock")) == lock)
            #expect(try Data(contentsOf: project.url("out/index.json")) == index)
        }
        // `check` still calls the project not up to date (the failing output is missing).
        #expect(try project.run(["check"]).status == 1)
    }

    /// The source fixed: the output is built, and the lock and index are written with it.
    @Test func theSourceFixedBuildsAndRewritesBoth() throws {
        let project = try Project()
        #expect(try project.run(["build"]).status == 1)
        let lockBefore = try Data(contentsOf: project.url("derive.lock"))
        try FileManager.default.removeItem(at: project.url("images/bad.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("images/bad.jpg"))
        let fixed = try project.run(["build"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(text(fixed.stdout).contains("rewrote derive.lock, out/index.json"), "\(text(fixed.stdout))")
        #expect(try Data(contentsOf: project.url("derive.lock")) != lockBefore)
        #expect(try String(contentsOf: project.url("out/index.json"), encoding: .utf8).contains("site/bad.webp"))
    }

    /// `derive build --watch --quiet` in the project, its standard output collected.
    final class Watcher: @unchecked Sendable {
        let process = Process()
        private let lock = NSLock()
        private var output = ""

        init(_ project: Project) throws {
            process.executableURL = CLI.executable
            process.arguments = ["build", "--watch", "--quiet", project.url("derive.yaml").path]
            process.currentDirectoryURL = project.root
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            out.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                self?.lock.withLock { self?.output += String(decoding: data, as: UTF8.self) }
            }
            try process.run()
        }

        /// One line a build.
        var lines: [String] { lock.withLock { output.split(separator: "\n").map(String.init) } }
        /// The lines of builds a change asked for: not the bounded tries of a failed build with no
        /// change seen (attack 41b's M3), which follow their own clock.
        /// The builds this watch ran: not a retry of a failed one, nor a wait while the other watch
        /// holds the build lock (under load the other's build lasts seconds, one line a second:
        /// the full suite at load 12 counted three of them as rebuilds).
        var builds: [String] { lines.filter { !$0.contains("the failed build tried again") && !$0.contains("another derive command holds the lock") } }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
    }

    static func wait(_ timeout: Double = 60, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    /// Two watches on one project with a failing source settle: neither rebuilds on the other's
    /// build. A change by hand still builds in both, and each names the failure again.
    @Test func twoWatchesWithAFailingSourceSettle() throws {
        let project = try Project()
        #expect(try project.run(["build", "-q"]).status == 1)
        let first = try Watcher(project)
        defer { first.stop() }
        #expect(Self.wait { first.builds.count >= 1 }, "\(first.lines)")
        let second = try Watcher(project)
        defer { second.stop() }
        #expect(Self.wait { second.builds.count >= 1 }, "\(second.lines)")
        // Long past any build the other's could trigger (each took well under a second here).
        sleep(8)
        let settled = (first.builds.count, second.builds.count)
        #expect(settled.0 <= 2 && settled.1 <= 2, "the watches rebuilt each other:\n\(first.lines.suffix(4))\n\(second.lines.suffix(4))")
        sleep(3)
        #expect(first.builds.count == settled.0 && second.builds.count == settled.1,
                "still building:\n\(first.lines.suffix(4))\n\(second.lines.suffix(4))")

        // A source added by hand: each watch builds it and names the failing source again.
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: project.url("images/c.jpg"))
        #expect(Self.wait { first.builds.count > settled.0 && second.builds.count > settled.1 }, "\(first.lines) \(second.lines)")
        #expect(Self.wait { FileManager.default.fileExists(atPath: project.url("out/c.webp").path) })
        sleep(6)
        for watcher in [first, second] {
            let after = watcher.builds.dropFirst(watcher === first ? settled.0 : settled.1)
            #expect(after.contains { $0.contains("1 failed") }, "the failure is not named after the edit: \(Array(after))")
            #expect(after.count <= 3, "the watches rebuilt each other after the edit: \(Array(after))")
        }
    }
}
