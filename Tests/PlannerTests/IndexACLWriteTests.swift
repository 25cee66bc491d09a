import Foundation
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// Attack 17's N4 at write time: whatever the load checked (the no-op fast path and watch skip
/// the listing checks), the build never writes a public index listing a private output.
@Suite(.ownThreads, .serialized) struct IndexACLWriteTests {
    static let yaml = """
    version: 1
    buckets:
      pub: {path: pub, acl: public-read}
      priv: {path: priv, acl: private}
      site: {path: site, acl: public-read, url: /site}
      drafts: {path: drafts}
    derivatives:
      - name: gallery
        from: pub/*.jpg
        process: image/resize,w_200
        to: site/g/{name}.{ext}
      - name: internal
        from: priv/*.jpg
        process: image/resize,w_200
        to: drafts/internal/{name}.{ext}
    index: site/index.json

    """

    /// A session whose manifest was loaded without the whole-manifest checks, as the fast path
    /// and watch load it: only the build's own check stands between the records and the index.
    func session(_ project: Project) throws -> BuildSession {
        var loader = ManifestLoader()
        loader.crossChecks = false
        let result = loader.load(project.manifestPath)
        let manifest = try #require(result.manifest)
        #expect(!result.diagnostics.hasErrors, "\(result.diagnostics.sorted)")
        return BuildSession(manifestPath: project.manifestPath, manifest: manifest, manifestFiles: result.files, identity: project.identity)
    }

    /// Rule `internal`'s outputs take the private source's ACL: the plan blocks the index with the
    /// rule's words (outputs, rule, source, both fixes), nothing is written, and the full load
    /// says the same at the rule.
    @Test func aPublicIndexListingPrivateOutputsIsNeverWritten() throws {
        let project = try Project(Self.yaml, files: ["pub/lake.jpg": "lake", "priv/ceo-passport-scan.jpg": "secret"])
        let outcome = try session(project).build(options: BuildOptions(jobs: 1, quiet: true)) { project.renderer }
        let blocked = outcome.plan.blockedControlFiles.first { $0.file == "site/index.json" }
        #expect(blocked?.reason.contains("is not written: it is public-read (bucket 'site') and would list private outputs (drafts/internal/ceo-passport-scan.jpg of rule 'internal', from priv/ceo-passport-scan.jpg)") == true,
                "\(outcome.plan.controlFiles)")
        #expect(blocked?.reason.contains("acl: public-read on their rule") == true)
        #expect(!project.exists("site/index.json"))
        #expect(!project.exists("drafts/internal"))
        let full = ManifestLoader().load(project.manifestPath)
        #expect(full.diagnostics.errors.contains { $0.line == 12 && $0.message.contains("rule 'internal' writes derivatives of private objects of bucket 'priv' (ceo-passport-scan.jpg)") },
                "\(full.diagnostics.sorted)")
    }

    /// Made private by an `objects:` rule, the same index lists every output; published by the
    /// rule's `acl: public-read`, the public index lists it too.
    @Test(arguments: [("site: {path: site, acl: public-read, url: /site}", "site: {path: site, acl: public-read, url: /site, objects: [{match: index.json, acl: private}]}"),
                      ("    to: drafts/internal/{name}.{ext}\n", "    to: drafts/internal/{name}.{ext}\n    acl: public-read\n")])
    func aPrivateIndexOrPublicOutputsAreWritten(replace: String, with: String) throws {
        let project = try Project(Self.yaml.replacingOccurrences(of: replace, with: with), files: ["pub/lake.jpg": "lake", "priv/ceo-passport-scan.jpg": "secret"])
        let outcome = try project.build()
        #expect(outcome.plan.blockedControlFiles.isEmpty, "\(outcome.plan.controlFiles)")
        #expect(project.read("site/index.json")?.contains("priv/ceo-passport-scan.jpg") == true)
    }

    /// The records decide at write time: an index whose records include a private output
    /// (built while the index was private) is not rewritten once the index is made public.
    @Test func makingTheIndexPublicAfterABuildIsRefused() throws {
        let privateIndex = Self.yaml.replacingOccurrences(of: "site: {path: site, acl: public-read, url: /site}",
                                                          with: "site: {path: site, acl: public-read, url: /site, objects: [{match: index.json, acl: private}]}")
        let project = try Project(privateIndex, files: ["pub/lake.jpg": "lake", "priv/ceo-passport-scan.jpg": "secret"])
        try project.build()
        let before = project.read("site/index.json")
        #expect(before?.contains("priv/ceo-passport-scan.jpg") == true)
        try project.write("derive.yaml", Self.yaml)
        try project.write("pub/more.jpg", "more")   // the index would change
        let outcome = try session(project).build(options: BuildOptions(jobs: 1, quiet: true)) { project.renderer }
        #expect(outcome.plan.blockedControlFiles.contains { $0.file == "site/index.json" && $0.reason.contains("would list private outputs") },
                "\(outcome.plan.controlFiles)")
        #expect(project.read("site/index.json") == before)
    }
}
