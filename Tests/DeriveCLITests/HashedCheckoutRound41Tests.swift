import Foundation
import Testing
import TestSupport

/// Attack 41b's M4: `git checkout` back to a commit whose committed `{hash}` outputs another
/// branch's build deleted brought them back with their lock lines, but the state no longer
/// recorded them. Every build refused them, `--verify` too, though each held exactly what its
/// rule renders (`--verify` never rendered a `{hash}` output's file again). Such a file is
/// rendered again and taken; one holding other bytes stays refused.
@Suite(.ownThreads) struct HashedCheckoutRound41Tests {
    static func manifest(_ widths: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: r
            from: src/*.jpg
            process: image/resize,w_{w}/format,png
            matrix: {w: [\(widths)]}
            to: out/{name}-{w}.{hash}.png
        """
    }

    /// Built at widths 40 and 60 (the "commit"), then at 50 (the other branch: the two files
    /// deleted, the state forgets them), then the commit's manifest, lock and files put back.
    /// Returns the folder and the files put back, name → bytes.
    func checkedOutAgain() throws -> (folder: URL, files: [String: Data]) {
        let folder = try CLI.temporaryFolder()
        let manager = FileManager.default
        try manager.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try manager.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data(Self.manifest("40, 60").utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let first = try CLI.run(["build", "-q"], in: folder)
        #expect(first.status == 0, "\(said(first))")
        let out = folder.appendingPathComponent("out")
        var files: [String: Data] = [:]
        for name in try manager.contentsOfDirectory(atPath: out.path) { files[name] = try Data(contentsOf: out.appendingPathComponent(name)) }
        #expect(files.count == 2, "\(files.keys)")
        let lock = try Data(contentsOf: folder.appendingPathComponent("derive.lock"))
        try Data(Self.manifest("50").utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let other = try CLI.run(["build", "-q"], in: folder)
        #expect(other.status == 0, "\(said(other))")
        // The checkout: the other branch's files go, the commit's come back.
        for name in try manager.contentsOfDirectory(atPath: out.path) { try manager.removeItem(at: out.appendingPathComponent(name)) }
        for (name, bytes) in files { try bytes.write(to: out.appendingPathComponent(name)) }
        try lock.write(to: folder.appendingPathComponent("derive.lock"))
        try Data(Self.manifest("40, 60").utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return (folder, files)
    }

    func inode(_ url: URL) -> UInt64? { (try? FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? UInt64) ?? nil }

    @Test func aPlainBuildTakesTheFilesThatHoldWhatTheRuleRenders() throws {
        let (folder, files) = try checkedOutAgain()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("out")
        let inodes = files.keys.map { inode(out.appendingPathComponent($0)) }
        let built = try CLI.run(["build"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        // Taken as they are (not written again), and up to date after.
        #expect(files.keys.map { inode(out.appendingPathComponent($0)) } == inodes)
        for (name, bytes) in files { #expect((try? Data(contentsOf: out.appendingPathComponent(name))) == bytes, "\(name)") }
        let check = try CLI.run(["check"], in: folder)
        #expect(check.status == 0, "\(said(check))")
    }

    @Test func verifyTakesThemTooAndRefusesOtherBytes() throws {
        let (folder, _) = try checkedOutAgain()
        defer { try? FileManager.default.removeItem(at: folder) }
        let verified = try CLI.run(["build", "--verify"], in: folder)
        #expect(verified.status == 0, "\(said(verified))")
        #expect(try CLI.run(["check"], in: folder).status == 0)

        // Other bytes at a `{hash}` name (its lock line's digest is not theirs): refused, kept.
        let (again, more) = try checkedOutAgain()
        defer { try? FileManager.default.removeItem(at: again) }
        let name = try #require(more.keys.sorted().first)
        let mine = Data("not what the rule renders".utf8)
        try mine.write(to: again.appendingPathComponent("out/" + name))
        let refused = try CLI.run(["build", "--verify"], in: again)
        #expect(refused.status != 0 && said(refused).contains("out/" + name), "\(said(refused))")
        #expect((try? Data(contentsOf: again.appendingPathComponent("out/" + name))) == mine)
    }
}
