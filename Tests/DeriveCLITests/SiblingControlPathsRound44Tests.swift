import Foundation
import Testing
import TestSupport

/// Attack 42d's N7: a sibling's `lock:`, `state:` or `index:` could point into another project's
/// bucket (`lock: ../B/out/t/a1.jpg`, `state: ../B/out/st`, `index: nbb/out/t/a1.jpg` with
/// `nbb: {path: ../B}`) before that project built: validate passed, the build wrote there, and B
/// then never built (or its serve handed out A's state database). Refused at validate, by path,
/// built or not, as the same paths into a manifest beside this one are.
@Suite(.ownThreads) struct SiblingControlPathsRound44Tests {
    static func manifest(_ extra: String, buckets: String = "") -> String {
        "version: 1\n\(extra)buckets:\n  src: {path: src}\n  out: {path: out}\n\(buckets)derivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/t/{name}.jpg\n"
    }

    @Test func aLockStateOrIndexInASiblingsBucketIsRefused() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        for folder in ["A/src", "B/src", "locks"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try Self.manifest("").write(to: root.appendingPathComponent("B/derive.yaml"), atomically: true, encoding: .utf8)
        let a = root.appendingPathComponent("A")
        let cases: [(String, String, String)] = [
            ("lock: ../B/out/t/a1.jpg\n", "", "the lock file"),
            ("state: ../B/out/st\n", "", "the state folder"),
            ("index: nbb/out/t/a1.jpg\n", "  nbb: {path: ../B}\n", "the index"),
        ]
        for (extra, buckets, what) in cases {
            try Self.manifest(extra, buckets: buckets).write(to: a.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
            let validate = try CLI.run(["validate"], in: a)
            #expect(validate.status == 1, "\(extra): \(text(validate.stdout)) \(validate.stderr)")
            #expect(validate.stderr.contains(what) && validate.stderr.contains("B/derive.yaml"), "\(extra): \(validate.stderr)")
        }
        // Outside every project: allowed.
        try Self.manifest("lock: ../locks/a.lock\n").write(to: a.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let fine = try CLI.run(["validate"], in: a)
        #expect(fine.status == 0, "\(fine.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("B/out").path))
    }
}
