import Foundation
import Testing
import TestSupport

/// Attack 42a's M1: derive.yaml's `lock:` or `state:` could name a path in a bucket folder of
/// site.yaml beside it (its declared index, one of its outputs, a folder of its bucket) before
/// site.yaml had built: validate said valid, the build wrote its lock there, and site.yaml then
/// failed for good (or, built first, derive.yaml was told the output was "another tool's file").
/// A manifest's lock and state lie outside every bucket folder of the manifests beside it, as
/// they do outside its own.
@Suite(.ownThreads, .serialized) struct NeighbourBucketControlRound42Tests {
    typealias Site = SiteRound11Tests.Site

    @Test(arguments: ["lock: sout/index.json", "lock: sout/t/a1.jpg", "state: sout/st"])
    func aLockOrStateNeverLiesInANeighboursBucket(line: String) throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg"], manifest: nil)
        defer { site.remove() }
        let manifest = FolderRecreatedRound40Tests.manifest()
        try Data(manifest.replacingOccurrences(of: "version: 1\n", with: "version: 1\n\(line)\n").utf8).write(to: site.url("derive.yaml"))
        try Data(manifest.replacingOccurrences(of: "out: {path: out}", with: "out: {path: sout}")
            .replacingOccurrences(of: "version: 1\n", with: "version: 1\nindex: out/index.json\n").utf8).write(to: site.url("site.yaml"))
        let validate = try site.run(["validate"])
        #expect(validate.status != 0, "\(said(validate))")
        #expect(said(validate).contains("site.yaml") && said(validate).contains("bucket 'out' (sout)"), "names the neighbour and its bucket: \(said(validate))")
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(said(build))")
        #expect(!FileManager.default.fileExists(atPath: site.url("sout").path), "nothing written into site.yaml's bucket")
    }
}
