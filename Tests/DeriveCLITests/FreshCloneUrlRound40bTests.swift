import Foundation
import Testing
import TestSupport

/// Attack 40b's M1: in a fresh clone (no state) a bucket's `url:` changed (README's advice:
/// `url: /`, or a CDN's address) made build and check call Derive's own committed index "not
/// written by Derive". The index lists the lock's outputs under the old prefix: it is Derive's,
/// adopted and rewritten under the new one.
@Suite(.ownThreads) struct FreshCloneUrlRound40bTests {
    static func manifest(url: String) -> String {
        """
        version: 1
        buckets:
          images: {path: p}
          site: {path: _site, url: "\(url)"}
        derivatives:
          - from: images/*.jpg
            process: image/resize,w_64
            to: site/{name}.{hash}.jpg
        index: site/derive-index.json

        """
    }

    @Test func aChangedUrlInAFreshCloneAdoptsTheIndex() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("p"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("p/a.jpg"))
        try Data(Self.manifest(url: ".").utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let first = try CLI.run(["build", "--quiet"], in: folder)
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.removeItem(at: folder.appendingPathComponent(".derive"))
        try Data(Self.manifest(url: "https://cdn.example.com/img").utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let check = try CLI.run(["check"], in: folder)
        #expect(!said(check).contains("not written by Derive"), "\(said(check))")
        let build = try CLI.run(["build", "--quiet"], in: folder)
        #expect(build.status == 0, "\(said(build))")
        let index = try String(contentsOf: folder.appendingPathComponent("_site/derive-index.json"), encoding: .utf8)
        #expect(index.contains("\"url\": \"https://cdn.example.com/img/a."), "\(index)")
        #expect(!index.contains("\"url\": \"./"), "\(index)")
        let after = try CLI.run(["check"], in: folder)
        #expect(after.status == 0, "\(after.stderr)")
        // With a state, an index whose urls were edited is a hand edit: never rewritten.
        let handEdited = index.replacingOccurrences(of: "https://cdn.example.com/img/", with: "https://elsewhere.example/")
        #expect(handEdited != index)
        try Data(handEdited.utf8).write(to: folder.appendingPathComponent("_site/derive-index.json"))
        let kept = try CLI.run(["build", "--quiet"], in: folder)
        #expect(kept.status == 1, "\(said(kept))")
        #expect(try String(contentsOf: folder.appendingPathComponent("_site/derive-index.json"), encoding: .utf8) == handEdited)
        // An index whose url does not end with its output's key is not what Derive writes: left alone.
        try FileManager.default.removeItem(at: folder.appendingPathComponent(".derive"))
        let edited = index.replacingOccurrences(of: "\"url\": \"https://cdn.example.com/img/a.", with: "\"url\": \"https://cdn.example.com/img/b.")
        #expect(edited != index)
        try Data(edited.utf8).write(to: folder.appendingPathComponent("_site/derive-index.json"))
        let refused = try CLI.run(["build", "--quiet"], in: folder)
        #expect(refused.status == 1 && said(refused).contains("not written by Derive"), "\(said(refused))")
    }
}
