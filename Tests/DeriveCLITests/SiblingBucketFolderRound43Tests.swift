import Foundation
import Testing
import TestSupport

/// Attack 43's N5: a build or clean removed a folder it had made that a sibling project (a
/// manifest in another folder, `src: {path: ../B/out/t}`) declares as its bucket; that project
/// then no longer validated. Only a manifest in the same folder was asked.
@Suite(.ownThreads, .serialized) struct SiblingBucketFolderRound43Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// B (built, writing out/t/…) and A beside it reading `../B/<bucket>`; returns the workspace.
    func projects(siblingBucket: String) throws -> URL {
        let root = try CLI.temporaryFolder()
        let b = root.appendingPathComponent("B"), a = root.appendingPathComponent("A")
        try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: a, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: b)
        try Data("""
            version: 1
            buckets:
              src: {path: \(siblingBucket)}
              out: {path: out}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_4", to: "out/{name}.jpg"}

            """.utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: a)
        #expect(build.status == 0, "\(said(build))")
        return root
    }

    func isFolder(_ url: URL) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &folder) && folder.boolValue
    }

    func dropRule(in b: URL) throws {
        let manifest = b.appendingPathComponent("derive.yaml")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        let dropped = text.replacingOccurrences(of: "derivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/t/{name}.jpg\"}",
                                                with: "derivatives: []")
        #expect(dropped != text)
        try Data(dropped.utf8).write(to: manifest)
    }

    @Test func aDroppedRuleKeepsTheFolderThatIsASiblingProjectsBucket() throws {
        let root = try projects(siblingBucket: "../B/out/t")
        defer { try? FileManager.default.removeItem(at: root) }
        let b = root.appendingPathComponent("B")
        try dropRule(in: b)
        let build = try CLI.run(["build"], in: b)
        #expect(build.status == 0 && said(build).contains("deleted 2"), "\(said(build))")
        #expect(isFolder(b.appendingPathComponent("out/t")), "A's bucket folder ../B/out/t was removed")
        let validate = try CLI.run(["validate"], in: root.appendingPathComponent("A"))
        #expect(validate.status == 0, "\(said(validate))")
    }

    @Test func cleanKeepsTheFolderThatIsASiblingProjectsBucket() throws {
        let root = try projects(siblingBucket: "../B/out/t")
        defer { try? FileManager.default.removeItem(at: root) }
        let b = root.appendingPathComponent("B")
        let clean = try CLI.run(["clean"], in: b)
        #expect(clean.status == 0 && said(clean).contains("Removed 2 outputs"), "\(said(clean))")
        #expect(isFolder(b.appendingPathComponent("out/t")), "A's bucket folder ../B/out/t was removed")
        let validate = try CLI.run(["validate"], in: root.appendingPathComponent("A"))
        #expect(validate.status == 0, "\(said(validate))")
    }

    /// The control: a sibling's bucket at B's own bucket folder (not one B made) leaves B's made
    /// folder out/t to go once empty, as it goes with no sibling at all.
    @Test func aFolderNoProjectDeclaresStillGoesOnceEmpty() throws {
        let root = try projects(siblingBucket: "../B/out")
        defer { try? FileManager.default.removeItem(at: root) }
        let b = root.appendingPathComponent("B")
        let clean = try CLI.run(["clean"], in: b)
        #expect(clean.status == 0, "\(said(clean))")
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent("out/t").path), "B's empty made folder out/t stayed")
        #expect(isFolder(b.appendingPathComponent("out")))
    }
}
