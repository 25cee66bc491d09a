import Foundation
import Testing
import TestSupport

/// Attack round 29's finding 10: a manifest in another folder could put a bucket, its lock or its
/// index inside a neighbour project's state folder (`../b/.derive/derive`): validate said valid,
/// a's build wrote there, and b could no longer build. Any such path inside a folder holding a
/// Derive state that is not the manifest's own is a validation error naming that folder.
@Suite(.ownThreads, .serialized) struct ForeignStateFolderRound29Tests {
    static func manifest(out: String, extra: String = "") -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(out)}
        derivatives:
          - {name: t, from: "src/*.jpg", process: "image/resize,w_40", to: "out/{name}.jpg"}

        """ + extra
    }

    /// Projects a and b side by side; b built, so `b/.derive/derive` holds its state.
    func projects() throws -> URL {
        let root = try CLI.temporaryFolder()
        for project in ["a", "b"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(project + "/src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent(project + "/src/x.jpg"))
        }
        try Data(Self.manifest(out: "out").utf8).write(to: root.appendingPathComponent("b/derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: root.appendingPathComponent("b"))
        #expect(build.status == 0, "\(said(build))")
        return root
    }

    static let intrusions: [String: String] = [
        "a bucket in b's state folder": manifest(out: "../b/.derive/derive"),
        "a bucket below b's state folder": manifest(out: "../b/.derive/derive/mine"),
        "the lock as b's state database": manifest(out: "out", extra: "lock: ../b/.derive/derive/state.sqlite\n"),
    ]

    @Test(arguments: ["a bucket in b's state folder", "a bucket below b's state folder", "the lock as b's state database"])
    func aPathInsideANeighboursStateFolderIsRefused(intrusion: String) throws {
        let root = try projects()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        try Data(Self.intrusions[intrusion]!.utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let before = try FileManager.default.contentsOfDirectory(atPath: b.appendingPathComponent(".derive/derive").path).sorted()
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status != 0, "\(intrusion): \(said(validate))")
        #expect(said(validate).contains("a folder holding another manifest's Derive build state") && said(validate).contains("b/.derive/derive"),
                "\(intrusion): \(said(validate))")
        #expect(said(validate).contains("derive.yaml:"), "\(intrusion): names the line: \(said(validate))")
        let build = try CLI.run(["build"], in: a)
        #expect(build.status != 0, "\(intrusion): \(said(build))")
        let after = try FileManager.default.contentsOfDirectory(atPath: b.appendingPathComponent(".derive/derive").path).sorted()
        #expect(after == before, "\(intrusion): a wrote into b's state folder")
        let again = try CLI.run(["build"], in: b)
        #expect(again.status == 0, "\(intrusion): b: \(said(again))")
    }

    @Test func theIndexInsideANeighboursStateFolderIsRefused() throws {
        let root = try projects()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a")
        let manifest = """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
              st: {path: ../b/.derive}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_40", to: "out/{name}.jpg"}
            index: st/derive/i.json

            """
        try Data(manifest.utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status != 0 && said(validate).contains("the index") && said(validate).contains("a folder holding another manifest's Derive build state"),
                "\(said(validate))")
    }

    /// The report's case: b not built yet, so its default state folder does not exist; it is
    /// still b's (`.derive/derive` beside b's `derive.yaml`), and a's build must not make it.
    @Test func aBucketInAnUnbuiltNeighboursDefaultStateFolderIsRefused() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        for project in ["a", "b"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(project + "/src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent(project + "/src/x.jpg"))
        }
        try Data(Self.manifest(out: "out").utf8).write(to: root.appendingPathComponent("b/derive.yaml"))
        try Data(Self.manifest(out: "../b/.derive/derive").utf8).write(to: root.appendingPathComponent("a/derive.yaml"))
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status != 0 && said(validate).contains("b/.derive/derive"), "\(said(validate))")
        let build = try CLI.run(["build"], in: a)
        #expect(build.status != 0, "\(said(build))")
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent(".derive").path))
        let theirs = try CLI.run(["build", "-q"], in: b)
        #expect(theirs.status == 0, "\(said(theirs))")
    }

    /// Beside a neighbour (its outputs folder, its project folder) is fine: no state there.
    @Test func aBucketInANeighboursProjectButOutsideItsStateIsValid() throws {
        let root = try projects()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a")
        try Data(Self.manifest(out: "../b/shared").utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status == 0, "\(said(validate))")
        let build = try CLI.run(["build", "-q"], in: a)
        #expect(build.status == 0, "\(said(build))")
        let again = try CLI.run(["build", "-q"], in: a)
        #expect(again.status == 0, "\(said(again))")
    }
}
