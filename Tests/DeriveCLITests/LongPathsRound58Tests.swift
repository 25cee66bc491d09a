import Foundation
import Testing
import TestSupport

/// Issue #9, attack 58c: long paths. Foundation answers an empty current folder past about 1 024
/// bytes, and relative paths then resolved against "/": a project 1 237 bytes deep with a bucket
/// at `../NAME` wrote its outputs to `/NAME`, `check` called them up to date, and `--overwrite` and
/// `clean` replaced and deleted a file there. SQLite opens no database whose path reaches 512
/// bytes, and the refusal advised `chattr -i`.
@Suite(.ownThreads) struct LongPathsRound58Tests {
    /// The one-source project `makeSampleProject` makes, made by the shell: Foundation's file
    /// calls past 1 024 bytes copied nothing and said nothing.
    static func project(_ folder: URL, manifest: String) throws {
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/bin/sh")
        make.arguments = ["-c", "mkdir -p \"$1/src\" && cp \"$2\" \"$1/src/a.jpg\" && printf '%s' \"$3\" > \"$1/derive.yaml\"", "sh",
                          folder.path, CLI.samples.appendingPathComponent("landscape.jpg").path, manifest]
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
    }

    /// A folder `depth` levels of 200-byte names below `root`.
    static func deep(_ root: URL, depth: Int) throws -> URL {
        var folder = root
        for level in 1...depth { folder = folder.appendingPathComponent(String(repeating: "d", count: 200) + "\(level)") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test(arguments: ["plan", "build", "check", "clean"])
    func aCurrentFolderPastFoundationsReachIsRefused(command: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try Self.deep(root, depth: 6)
        #expect(base.path.utf8.count > 1_100)
        let name = "derive-longcwd-\(UUID().uuidString)"
        try Self.project(base.appendingPathComponent("A"), manifest:
            "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../\(name)}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\nstate: \(root.path)/st\n")
        let run = try CLI.run([command, "A/derive.yaml"], in: base, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        defer { try? FileManager.default.removeItem(atPath: "/" + name) }
        #expect(run.status != 0 && said(run).contains("the current folder's path is") && said(run).contains("cd to a folder with a shorter path"), "\(said(run))")
        #expect(!FileManager.default.fileExists(atPath: "/" + name), "wrote to /\(name)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(name).path)) ?? []).isEmpty)
    }

    /// The same project built from a short current folder, by its absolute path, builds into its
    /// own bucket.
    @Test func aDeepProjectBuildsFromAShortCurrentFolder() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try Self.deep(root, depth: 6)
        try Self.project(base.appendingPathComponent("A"), manifest:
            "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\nstate: \(root.path)/st\n")
        let run = try CLI.run(["build", base.appendingPathComponent("A/derive.yaml").path], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        #expect(run.status == 0, "\(said(run))")
        #expect(FileManager.default.fileExists(atPath: base.appendingPathComponent("out/a.jpg").path), "\(said(run)) \(run.stdout)")
    }

    @Test func aStatePathPastSQLitesLimitSaysSo() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try Self.deep(root, depth: 3)
        #expect(base.path.utf8.count > 512 - 30)
        try Self.project(base, manifest: "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n")
        let run = try CLI.run(["build"], in: base, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        #expect(run.status != 0 && said(run).contains("SQLite opens no database whose path") && said(run).contains("set 'state:'") && !said(run).contains("chattr"), "\(said(run))")
    }
}
