import Foundation
import Testing
import TestSupport

/// Attack 39b's L4: a `{hash}` output whose bytes (and so name) change was planned as a bare
/// delete of the old copy and a create of `site/a.{hash}.png`, saying nothing of why, where a
/// plain-named output says `rebuild: source changed`; `explain` of the old copy showed no
/// wanted side, and of the logical name only "will be created".
@Suite(.ownThreads) struct HashedWhyRound40Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: h
            from: src/*.jpg
            process: image/resize,w_61/format,png
            to: out/{name}.{hash}.png
        """

    /// A project built once from the landscape, then its source edited (the portrait's bytes).
    func editedProject() throws -> (folder: URL, old: String) {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        let old = try #require(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("out").path).first { $0.hasSuffix(".png") })
        try FileManager.default.removeItem(at: folder.appendingPathComponent("src/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        return (folder, "out/" + old)
    }

    @Test func thePlanSaysWhyTheHashedOutputIsReplaced() throws {
        let (folder, old) = try editedProject()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plan = try CLI.run(["plan"], in: folder)
        let lines = text(plan.stdout).split(separator: "\n").map(String.init)
        let create = try #require(lines.first { $0.hasPrefix("+ out/a.{hash}.png") }, "\(said(plan))")
        #expect(create.contains("source changed") && create.contains("replaces \(old)"), "\(create)")
        let delete = try #require(lines.first { $0.hasPrefix("- \(old)") }, "\(said(plan))")
        #expect(delete.contains("source changed"), "\(delete)")

        let json = try CLI.run(["plan", "--json"], in: folder)
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let items = try #require(object["items"] as? [[String: Any]])
        let created = try #require(items.first { $0["kind"] as? String == "create" }, "\(items)")
        #expect(created["reasons"] as? [String] == ["source changed"], "\(created)")
        #expect(created["replaces"] as? String == old, "\(created)")
        let deleted = try #require(items.first { $0["kind"] as? String == "delete" }, "\(items)")
        #expect(deleted["replacedBy"] as? String == "out/a.{hash}.png", "\(deleted)")
    }

    @Test func explainShowsTheWantedSideOfBothNames() throws {
        let (folder, old) = try editedProject()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in [old, "out/a.{hash}.png"] {
            let explained = try CLI.run(["explain", name], in: folder)
            let said = text(explained.stdout)
            #expect(explained.status == 0, "\(explained.stderr)")
            #expect(said.contains("source changed"), "\(name): \(said)")
            // The source's digest as recorded (the landscape's) and as wanted now (the portrait's).
            let sha = try #require(said.split(separator: "\n").firstIndex { $0.contains("source sha") }, "\(said)")
            let rows = said.split(separator: "\n")
            #expect(rows[sha].contains("recorded:") && rows[sha + 1].contains("wanted:"), "\(name): \(said)")
        }
        // Built, the logical name is the output of that name, up to date.
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let after = try CLI.run(["explain", "out/a.{hash}.png"], in: folder)
        #expect(after.status == 0 && text(after.stdout).contains(": up to date"), "\(said(after))")
    }
}
