import Foundation
import Testing
import TestSupport

/// Attack 43b's finding 4: B's build (or clean) removed a folder it had made, out/t, which a
/// project two levels down in B's own folder (B/x/y, `src: {path: ../../out/t}`) declares as its
/// bucket; that project then no longer validated. B's writes already saw it (a rule writing into
/// x/y/src is refused); the made-folder check looked only at direct sub-folders nearby.
@Suite(.ownThreads) struct NestedConsumerBucketFolderRound44Tests {
    @Test(arguments: ["build", "clean"]) func aFolderAProjectDeepInsideDeclaresIsKept(_ command: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let b = root.appendingPathComponent("B"), consumer = b.appendingPathComponent("x/y")
        try FileManager.default.createDirectory(at: consumer, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: b)
        try Data("""
            version: 1
            buckets:
              src: {path: ../../out/t}
              out: {path: out}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_4", to: "out/{name}.jpg"}

            """.utf8).write(to: consumer.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: consumer)
        #expect(built.status == 0, "\(built.stderr)")
        if command == "build" {
            try SiblingBucketFolderRound43Tests().dropRule(in: b)
        }
        let run = try CLI.run([command], in: b)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(SiblingBucketFolderRound43Tests().isFolder(b.appendingPathComponent("out/t")), "x/y's bucket folder ../../out/t was removed")
        let validate = try CLI.run(["validate"], in: consumer)
        #expect(validate.status == 0, "\(validate.stderr)")
    }
}
