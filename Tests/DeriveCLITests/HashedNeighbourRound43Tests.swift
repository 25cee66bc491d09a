import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 43a's H1 (issue #9's ownership rule met by issue #13's `{hash}` names): a copy of the
/// manifest beside it (`cp derive.yaml site.yaml`) rendered the same bytes under the same `{hash}`
/// name, took the original's file over without `--overwrite` ("built 12"), and its `clean` (or a
/// restyle) then deleted it. The name is known only after rendering, so the build asks then what
/// the plan asks of a plain name: the file is the original's output, refused and named.
@Suite(.ownThreads, .serialized) struct HashedNeighbourRound43Tests {
    static func inode(_ url: URL) -> UInt64? {
        var info = stat()
        return lstat(url.path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    @Test func aCopyOfTheManifestNeverTakesOverTheOriginalsHashedOutputs() throws {
        let site = try HashedBuildRound20Tests.Site()
        #expect(try site.run(["build", "-q"]).status == 0)
        let before = site.outputs
        #expect(before.count == 12)
        let inodes = Dictionary(uniqueKeysWithValues: before.keys.map { ($0, Self.inode(site.url("site/" + $0))) })
        // The copy writes its own index elsewhere, so only the outputs meet.
        let text = try String(contentsOf: site.url("derive.yaml"), encoding: .utf8).replacingOccurrences(of: "index: site/index.json", with: "index: site/copy.json")
        try Data(text.utf8).write(to: site.url("site.yaml"))
        let copy = try site.run(["build", "site.yaml"])
        #expect(copy.status == 1, "\(said(copy))")
        #expect(said(copy).contains("is an output of") && said(copy).contains("derive.yaml"), "\(said(copy))")
        for (name, bytes) in before {
            #expect(site.outputs[name] == bytes && Self.inode(site.url("site/" + name)) == inodes[name], "\(name) was replaced by the copy")
        }
        let clean = try site.run(["clean", "site.yaml"])
        #expect(clean.status == 0 || clean.status == 1, "\(said(clean))")
        #expect(site.outputs.count == 12 && Set(site.outputs.keys) == Set(before.keys), "the copy's clean removed the original's outputs")
        let own = try site.run(["check"])
        #expect(own.status == 0, "\(said(own))")
        // --overwrite still takes them, as for a plain name.
        #expect(try site.run(["build", "-q", "--overwrite", "site.yaml"]).status == 0)
    }
}
