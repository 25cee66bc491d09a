import Foundation
import Testing
import TestSupport

/// Attack 50c's M5: a no-op of a project with a public-read bucket searches its neighbourhood
/// (sibling projects, gone projects' locks and states) on every run; its answers are now kept
/// per process while their files keep their stamps (`StampedAnswers`), and `check` searches
/// once. A change the search sees must still stop the very next no-op build and check: another
/// project's manifest put into the public bucket, then a gone project's lock put there.
@Suite(.ownThreads) struct NeighbourChangeSeenByNoOpRound51Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    static let manifest = """
        version: 1
        buckets:
          src: {path: a}
          out: {path: out, acl: public-read}
        derivatives:
          - from: src/*.jpg
            process: image/resize,w_8
            to: out/{name}.jpg
            acl: public-read

        """

    @Test func aNoOpNearSiblingProjectsStillSeesANeighbourAppearingInItsPublicBucket() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        // The project and three sibling copies of it, each built.
        for name in ["x", "p1", "p2", "p3"] {
            let folder = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("a"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("a/l.jpg"))
            try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            let built = try CLI.run(["build", "-q"], in: folder)
            #expect(built.status == 0, "\(name): \(said(built))")
        }
        let x = root.appendingPathComponent("x")
        let noOp = try CLI.run(["build"], in: x)
        #expect(noOp.status == 0 && said(noOp).contains("Nothing to do"), "\(said(noOp))")
        let checked = try CLI.run(["check"], in: x)
        #expect(checked.status == 0 && said(checked).contains("Up to date"), "\(said(checked))")

        // Another project's manifest in the public bucket.
        let copied = x.appendingPathComponent("out/derive.yaml")
        try Data(Self.manifest.utf8).write(to: copied)
        for command in [["build"], ["check"], ["build"]] {
            let run = try CLI.run(command, in: x)
            #expect(run.status == 1 && said(run).contains("bucket 'out' (out) holds the manifest out/derive.yaml"), "\(command): \(said(run))")
        }
        try FileManager.default.removeItem(at: copied)
        let again = try CLI.run(["build"], in: x)
        #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(said(again))")

        // A gone project's lock in the public bucket (its first line names `../z.yaml`, not there).
        let lock = try String(contentsOf: x.appendingPathComponent("derive.lock"), encoding: .utf8)
            .replacingOccurrences(of: "\"manifest\":\"derive.yaml\"", with: "\"manifest\":\"../z.yaml\"")
        #expect(lock.contains("../z.yaml"))
        try Data(lock.utf8).write(to: x.appendingPathComponent("out/z.lock"))
        for command in [["build"], ["check"]] {
            let run = try CLI.run(command, in: x)
            #expect(run.status == 1 && said(run).contains("bucket 'out' (out) holds the lock out/z.lock of z.yaml, another project, which is no longer there"),
                    "\(command): \(said(run))")
        }
    }
}
