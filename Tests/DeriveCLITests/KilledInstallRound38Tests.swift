import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 37b's finding 1 (issue 9): a restyle of a `{hash}` rule killed with `kill -9` just after
/// it moved a new render into place, before it recorded it, left a file nothing recorded (not
/// the state, not `derive.lock`) under a name no later manifest produces: `build` said "Nothing
/// to do", `check` "Up to date", `clean` left it without naming it, forever. The build notes each
/// file (with the digest of its bytes) in the state before it moves it into place; the next
/// `plan`, `build` and `clean` settle such a note: the file is deleted while it holds exactly
/// those bytes, left and named when it holds others. The hook `DERIVE_TEST_KILL_AFTER_INSTALL`
/// kills the build at that instant.
@Suite(.ownThreads, .serialized) struct KilledInstallRound38Tests {
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Three photos, one `{hash}` rule writing `out/h/`.
    struct Project {
        let root: URL
        init() throws {
            root = try CLI.temporaryFolder()
            try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
            for name in ["landscape.jpg", "orientation-1.jpg", "cmyk.jpg"] {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: root.appendingPathComponent("src/" + name))
            }
            try restyle(width: 48)
        }
        /// The rule at another width: every output gets new bytes, and so a new name.
        func restyle(width: Int) throws {
            try Data("""
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            derivatives:
              - name: h
                from: src/*.jpg
                process: image/resize,w_\(width)
                to: out/h/{name}.{hash}.jpg

            """.utf8).write(to: url("derive.yaml"))
        }
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: url(path).path) }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }
        func remove() { try? FileManager.default.removeItem(at: root) }
        /// `out/h/…` files `derive.lock` does not list.
        var unlisted: [String] {
            let lock = (try? String(contentsOf: url("derive.lock"), encoding: .utf8)) ?? ""
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url("out/h").path)) ?? []
            return names.map { "out/h/" + $0 }.filter { !lock.contains("\"\($0)\"") }.sorted()
        }

        /// `derive build --jobs 1` killed (SIGKILL, by the hook) just after its first output was
        /// moved into place; returns that file, which nothing records.
        func killedBuild() throws -> String {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["build", "--jobs", "1", "--quiet"]
            process.currentDirectoryURL = root
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["XDG_STATE_HOME": CLI.userStateHome.path, "DERIVE_TEST_KILL_AFTER_INSTALL": "1"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
                         "the build was not killed after its first install (exit \(process.terminationStatus))")
            let stray = unlisted
            try #require(stray.count == 1, "one installed file nothing records: \(stray)")
            return stray[0]
        }

        /// `plan --json`: each item's kind and reasons, by output, and the summary.
        func planned() throws -> (kinds: [String: String], reasons: [String: [String]], summary: [String: Int]) {
            let result = try run(["plan", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
            var kinds: [String: String] = [:], reasons: [String: [String]] = [:]
            for item in json?["items"] as? [[String: Any]] ?? [] {
                let output = item["output"] as? String ?? ""
                kinds[output] = item["kind"] as? String
                reasons[output] = item["reasons"] as? [String] ?? []
            }
            return (kinds, reasons, json?["summary"] as? [String: Int] ?? [:])
        }
    }

    /// The stray file is in the plan (`delete`, saying why), the build deletes it (counted with the
    /// three old renders it replaces), and afterwards nothing is left that the lock does not list.
    @Test func aFileInstalledByAKilledBuildIsPlannedAndDeleted() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        try project.restyle(width: 32)   // its name is produced no more

        let plan = try project.planned()
        #expect(plan.kinds[stray] == "delete", "\(plan.kinds)")
        #expect(plan.reasons[stray]?.contains { $0.contains("killed or stopped before it recorded it") } == true, "\(plan.reasons[stray] ?? [])")
        #expect(plan.summary["delete"] == 4, "3 old renders and the stray file: \(plan.summary)")
        let text = Self.text(try project.run(["plan"]).stdout)
        #expect(text.contains("- \(stray)  delete: "), "\(text)")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(Self.text(build.stdout).contains("deleted 4"), "\(Self.text(build.stdout))")
        #expect(!project.exists(stray))
        #expect(project.unlisted.isEmpty, "\(project.unlisted)")
        #expect(try project.run(["check"]).status == 0)
        #expect(Self.text(try project.run(["plan"]).stdout).hasPrefix("No changes"))
    }

    /// `clean` removes it too (it holds the bytes Derive noted), with every recorded output.
    @Test func cleanRemovesAFileInstalledByAKilledBuild() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(!project.exists(stray))
        let left = (try? FileManager.default.contentsOfDirectory(atPath: project.url("out/h").path)) ?? []
        #expect(left.isEmpty, "\(left)")
    }

    /// Control: the user wrote other bytes into the stray file. It is theirs now: planned and
    /// reported as left (named), never deleted, and the note goes (no later build names it).
    @Test func aStrayFileTheUserChangedIsLeftAndNamed() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        let mine = Data("the user's own bytes".utf8)
        try mine.write(to: project.url(stray))
        try project.restyle(width: 32)

        let plan = try project.planned()
        #expect(plan.kinds[stray] == "left", "\(plan.kinds)")
        #expect(plan.reasons[stray]?.contains { $0.contains("\(stray) was changed since Derive wrote it; left in place") } == true, "\(plan.reasons[stray] ?? [])")
        #expect(plan.summary["delete"] == 3 && plan.summary["left"] == 1, "\(plan.summary)")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("\(stray) was changed since Derive wrote it; left in place"), "\(build.stderr)")
        #expect(Self.text(build.stdout).contains("deleted 3"), "\(Self.text(build.stdout))")
        #expect((try? Data(contentsOf: project.url(stray))) == mine)
        // Said once: the note is dropped, the file is the user's like any other.
        #expect(Self.text(try project.run(["plan"]).stdout).hasPrefix("No changes"))
        #expect(try project.run(["check"]).status == 0)
    }

    /// Control: the manifest produces the stray file's name again (the same restyle run again).
    /// Plan and build agree, and the file ends up recorded with the very bytes it held.
    @Test func aStrayFileTheManifestProducesAgainEndsUpRecorded() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        let bytes = try Data(contentsOf: project.url(stray))

        let plan = try project.planned()
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        let deleted = plan.summary["delete"] ?? -1
        #expect(Self.text(build.stdout).contains("deleted \(deleted)"), "plan said \(plan.summary): \(Self.text(build.stdout))")
        #expect((try? Data(contentsOf: project.url(stray))) == bytes)
        let lock = (try? String(contentsOf: project.url("derive.lock"), encoding: .utf8)) ?? ""
        #expect(lock.contains("\"\(stray)\""), "\(lock)")
        #expect(project.unlisted.isEmpty, "\(project.unlisted)")
        #expect(try project.run(["check"]).status == 0)
    }
}
