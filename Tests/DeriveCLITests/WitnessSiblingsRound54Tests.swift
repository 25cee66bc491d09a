import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 54c's F1: a manifest's lock or state folder may not lie inside a bucket of a manifest
/// beside it, built or not, and validate and the full plan refuse one; but once the no-op witness
/// was saved, a `site.yaml` added beside (its bucket the folder holding this manifest's lock), or
/// one already there edited in place to that bucket, left `check`, `build` and `plan` saying up to
/// date. The witness now stamps the manifests beside this one, so the full plan runs.
@Suite(.ownThreads, .serialized) struct WitnessSiblingsRound54Tests {
    static let sibling = "version: 1\nbuckets:\n  mmm: {path: meta}\n  sss: {path: src}\nderivatives:\n  - name: s\n    from: sss/*.jpg\n    process: image/resize,w_8\n    to: mmm/{name}.jpg\n"

    @Test(arguments: ["a manifest added beside", "a manifest beside edited in place"])
    func aSiblingWhoseBucketHoldsTheLockIsWeighedByTheNoOp(change: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("st").path]
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nlock: meta/d.lock\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/{name}.jpg\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        let site = root.appendingPathComponent("site.yaml")
        let editedInPlace = change.contains("edited")
        if editedInPlace {
            // Already there, with a bucket of its own, before the witness.
            try Data(Self.sibling.replacingOccurrences(of: "path: meta", with: "path: other").utf8).write(to: site)
        }
        #expect(try CLI.run(["build", "-q"], in: root, environment: environment).status == 0)
        usleep(1_200_000)
        _ = try CLI.run(["build"], in: root, environment: environment)
        usleep(1_200_000)
        let witnessed = try CLI.run(["build"], in: root, environment: environment)
        #expect(witnessed.status == 0 && said(witnessed).contains("Nothing to do"), "\(said(witnessed))")

        if editedInPlace {
            // The same inode, written over in place.
            let handle = try #require(FileHandle(forWritingAtPath: site.path))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(Self.sibling.utf8))
            try handle.close()
        } else {
            try Data(Self.sibling.utf8).write(to: site)
        }
        for command in [["check"], ["build"], ["plan"]] {
            let result = try CLI.run(command, in: root, environment: environment)
            #expect(result.status != 0, "\(change), \(command[0]) said up to date: \(said(result))")
            #expect(result.stderr.contains("meta/d.lock") && result.stderr.contains("site.yaml"), "\(change), \(command[0]): \(result.stderr)")
        }
    }
}
