import Foundation
import Testing
import TestSupport

/// Attack 41a's B10: a bucket folder that holds another project (`top: {path: sub}`, with
/// sub/derive.yaml) let `derive build --overwrite` write a JPEG over that project's manifest
/// (`to: top/{name}.yaml`), over one of its sources (`to: top/src/{name}.jpg`), and the index
/// over its manifest (`index: top/derive.yaml`). Another project's manifest, includes, lock,
/// index, state and sources are never written over, with or without `--overwrite`; a user's
/// file elsewhere in the bucket is still replaced with `--overwrite`. And a re-point without a
/// state never deletes, as old copies, files another manifest has taken over (attack 41c's C0).
@Suite(.ownThreads, .serialized) struct ForeignProjectRound41Tests {
    typealias Site = SiteRound11Tests.Site

    /// sub/derive.yaml, a project of its own, inside site.yaml's bucket `top`.
    static func nested(to: String, index: String? = nil) throws -> (Site, Data, Data) {
        let site = try Site(["s2/derive.jpg": "landscape.jpg", "sub/src/derive.jpg": "portrait.jpg"], manifest: nil)
        let inner = Data(NeighbourManifestRound40Tests.manifest.utf8)
        try inner.write(to: site.url("sub/derive.yaml"))
        try Data("""
            version: 1
            \(index.map { "index: \($0)\n" } ?? "")buckets:
              sss: {path: s2}
              top: {path: sub}
            derivatives:
              - {name: x, from: "sss/*.jpg", process: "image/resize,w_8", to: "\(to)"}

            """.utf8).write(to: site.url("site.yaml"))
        return (site, inner, try Data(contentsOf: site.url("sub/src/derive.jpg")))
    }

    @Test(arguments: ["top/{name}.yaml", "top/src/{name}.jpg"])
    func anotherProjectsFileIsNeverWrittenOver(to: String) throws {
        let (site, manifest, source) = try Self.nested(to: to)
        defer { site.remove() }
        for arguments in [["build", "site.yaml"], ["build", "--overwrite", "site.yaml"], ["build", "--verify", "site.yaml"]] {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(said(refused).contains("another project") && said(refused).contains("with or without --overwrite"), "\(arguments): \(said(refused))")
            #expect(!said(refused).contains("pass --overwrite"), "\(arguments): offers --overwrite: \(said(refused))")
        }
        #expect(try Data(contentsOf: site.url("sub/derive.yaml")) == manifest)
        #expect(try Data(contentsOf: site.url("sub/src/derive.jpg")) == source)
        let inner = try site.run(["build", "-q", "sub/derive.yaml"])
        #expect(inner.status == 0, "the inner project still builds: \(said(inner))")
    }

    /// Attack 41c's C2: the other project's manifest mid-edit (a YAML syntax error) protected nothing.
    @Test(arguments: ["top/{name}.yaml", "top/src/{name}.jpg", "top/{name}.lock"])
    func aProjectWhoseManifestDoesNotParseKeepsItsFiles(to: String) throws {
        let (site, _, source) = try Self.nested(to: to)
        defer { site.remove() }
        try Data("lock".utf8).write(to: site.url("sub/derive.lock"))
        var broken = try Data(contentsOf: site.url("sub/derive.yaml"))
        broken.append(Data("  - {name: u, from: [oops\n".utf8))
        try broken.write(to: site.url("sub/derive.yaml"))
        let refused = try site.run(["build", "--overwrite", "site.yaml"])
        #expect(refused.status == 1, "\(said(refused))")
        #expect(said(refused).contains("with or without --overwrite"), "\(said(refused))")
        #expect(try Data(contentsOf: site.url("sub/derive.yaml")) == broken)
        #expect(try Data(contentsOf: site.url("sub/src/derive.jpg")) == source)
        #expect(try Data(contentsOf: site.url("sub/derive.lock")) == Data("lock".utf8))
    }

    /// Attack 41c's C0: derive.yaml re-pointed (outA → userB) without its state deleted, as old
    /// copies, the files a copied site.yaml (still on outA) had taken over with `--verify`.
    @Test func aRepointWithoutAStateLeavesWhatAnotherManifestTookOver() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"],
                            manifest: FolderRecreatedRound40Tests.manifest().replacingOccurrences(of: "path: out}", with: "path: outA}"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try FileManager.default.copyItem(at: site.url("derive.yaml"), to: site.url("site.yaml"))
        let manifest = try String(contentsOf: site.url("derive.yaml"), encoding: .utf8)
        try Data(manifest.replacingOccurrences(of: "path: outA}", with: "path: userB}").utf8).write(to: site.url("derive.yaml"))
        try FileManager.default.removeItem(at: site.url(".derive/derive"))
        let taken = try site.run(["build", "--verify", "site.yaml"])
        #expect(taken.status == 0, "\(said(taken))")
        let before = try ["outA/t/a1.jpg", "outA/t/a2.jpg"].map { try Data(contentsOf: site.url($0)) }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(said(build).contains("is an output of") && !said(build).contains("deleted 2 old copies"), "\(said(build))")
        #expect(try ["outA/t/a1.jpg", "outA/t/a2.jpg"].map { try Data(contentsOf: site.url($0)) } == before)
        let check = try site.run(["check", "site.yaml"])
        #expect(check.status == 0, "site.yaml: \(said(check))")
    }

    @Test func theIndexIsNeverWrittenOverAnotherProjectsManifest() throws {
        let (site, manifest, _) = try Self.nested(to: "top/o/{name}.jpg", index: "top/derive.yaml")
        defer { site.remove() }
        for arguments in [["plan", "site.yaml"], ["build", "site.yaml"], ["build", "--overwrite", "site.yaml"]] {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(said(refused).contains("sub/derive.yaml is another project's manifest") && said(refused).contains("give 'index:' a path"), "\(arguments): \(said(refused))")
        }
        #expect(try Data(contentsOf: site.url("sub/derive.yaml")) == manifest)
    }

    @Test func aUsersFileBesideAnotherProjectIsStillTakenWithOverwrite() throws {
        let (site, manifest, _) = try Self.nested(to: "top/o/{name}.jpg")
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("sub/o"), withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: site.url("sub/o/derive.jpg"))
        let refused = try site.run(["build", "site.yaml"])
        #expect(refused.status == 1 && said(refused).contains("pass --overwrite"), "\(said(refused))")
        let taken = try site.run(["build", "-q", "--overwrite", "site.yaml"])
        #expect(taken.status == 0, "\(said(taken))")
        #expect(try Data(contentsOf: site.url("sub/o/derive.jpg")) != Data("mine".utf8))
        #expect(try Data(contentsOf: site.url("sub/derive.yaml")) == manifest)
    }
}
