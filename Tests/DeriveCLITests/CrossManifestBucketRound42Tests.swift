import Foundation
import Testing
import TestSupport

/// Attack 42a's H1, H2 and nestb2: a second manifest's bucket on another project's folder, or on
/// the output, lock or index folder of the manifest beside it, validated, and its `derive serve`
/// served and took anonymous writes over that project's files; a manifest dropping a rule removed
/// the folder that was the bucket of the manifest beside it.
@Suite(.ownThreads, .serialized) struct CrossManifestBucketRound42Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// A built project in `folder` (`lib2.sh`'s): sources in src, private outputs out/t/… in
    /// bucket out at `outputs`; `lines` added at its top.
    static func project(in folder: URL, outputs: String = "out", lines: String = "", to: String = "out/t/{name}.jpg") throws {
        for (name, sample) in ["a1.jpg": "landscape.jpg", "a2.jpg": "portrait.jpg"] {
            let url = folder.appendingPathComponent("src/" + name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: url)
        }
        try Data("""
            version: 1
            \(lines)buckets:
              src: {path: src}
              out: {path: \(outputs)}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_8", to: "\(to)"}

            """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
    }

    /// A manifest with one bucket and no rules.
    static func serveOnly(_ path: String, acl: String = "public-read-write") -> Data {
        Data("version: 1\nbuckets:\n  upl: {path: \(path), acl: \(acl)}\nderivatives: []\n".utf8)
    }

    /// Attack 45c's ms: a project not built yet has no lock or state folder; the refusal said the
    /// bucket held them. It names the manifest as held and the lock and state as what that
    /// project's first build would write there (refused all the same).
    @Test func anUnbuiltProjectsLockAndStateAreNotSaidToBeThere() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("P")
        try FileManager.default.createDirectory(at: project.appendingPathComponent("src"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives: []\n".utf8)
            .write(to: project.appendingPathComponent("derive.yaml"))
        try Self.serveOnly("P").write(to: root.appendingPathComponent("site.yaml"))
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(validate.status == 1, "\(said(validate))")
        let refusal = said(validate).split(separator: "\n").first { $0.contains("bucket 'upl' (P) ") }.map(String.init) ?? ""
        #expect(refusal.contains("(P) holds the manifest P/derive.yaml of another project, and would hold the lock P/derive.lock, the state folder P/.derive/derive of it once that project builds, and is public-read-write"),
                "\(said(validate))")
        // Issue #9 (4): the manifest is named once ("holds the manifest P/derive.yaml of P/derive.yaml").
        #expect(!refusal.contains("of P/derive.yaml"), "\(refusal)")
        #expect(!FileManager.default.fileExists(atPath: project.appendingPathComponent("derive.lock").path))
    }

    /// H1: nested (`upl: P`) and sibling (`upl: ../P`, site.yaml in srv/).
    @Test(arguments: [("P", "."), ("../P", "srv")])
    func aBucketHoldingAnotherProjectIsRefused(bucket: String, siteFolder: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.project(in: root.appendingPathComponent("P"))
        let site = root.appendingPathComponent(siteFolder)
        try FileManager.default.createDirectory(at: site, withIntermediateDirectories: true)
        try Self.serveOnly(bucket).write(to: site.appendingPathComponent("site.yaml"))
        let validate = try CLI.run(["validate", "site.yaml"], in: site)
        #expect(validate.status == 1, "\(said(validate))")
        let refusal = said(validate).split(separator: "\n").first { $0.contains("bucket 'upl' (\(bucket)) holds the manifest ") }.map(String.init) ?? ""
        #expect(["P/derive.yaml, the lock ", "P/derive.lock, the state folder ", "P/.derive/derive of another project"].allSatisfy(refusal.contains) && !refusal.contains("of P/derive.yaml"),
                "\(said(validate))")
        let lock = try Data(contentsOf: root.appendingPathComponent("P/derive.lock"))
        let serve = try ServeStartRound41Tests.run(["serve", "site.yaml", "--port", "0"], in: site, seconds: 20, until: "Serving")
        #expect(serve.status == 1 && serve.stderr.contains("holds the manifest"), "\(String(describing: serve.status)) \(serve.stdout) \(serve.stderr)")
        #expect(try Data(contentsOf: root.appendingPathComponent("P/derive.lock")) == lock)
        // A private bucket may nest a project: nothing of it is answered anonymously (serve
        // refuses its control files to signed requests: CrossManifestServeRound42Tests).
        try Self.serveOnly(bucket, acl: "private").write(to: site.appendingPathComponent("site.yaml"))
        let nested = try CLI.run(["validate", "site.yaml"], in: site)
        #expect(nested.status == 0, "\(said(nested))")
    }

    /// H2: site.yaml beside derive.yaml puts its bucket on derive.yaml's private outputs (the
    /// bucket folder, or the rule's subfolder), its lock's folder or its index's.
    @Test(arguments: [("pub", "the outputs"), ("pub/t", "the outputs"), ("meta", "the lock meta/l.lock"), ("pub", "the index pub/index.json")])
    func aBucketOnTheOutputsLockOrIndexOfTheManifestBesideItIsRefused(bucket: String, what: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("meta"), withIntermediateDirectories: true)
        let lines = what == "the outputs" ? "" : "lock: meta/l.lock\nindex: out/index.json\n"
        try Self.project(in: root, outputs: "pub", lines: lines)
        try Self.serveOnly(bucket).write(to: root.appendingPathComponent("site.yaml"))
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(validate.status == 1, "\(said(validate))")
        let expected = what == "the outputs"
            ? "bucket 'upl' (\(bucket)) shares files with bucket 'out' (pub) that derive.yaml, another project, writes its outputs into, and is public-read-write where those outputs are private"
            : "bucket 'upl' (\(bucket)) holds \(what) of derive.yaml, another project"
        #expect(said(validate).contains(expected), "\(said(validate))")
        // The simplest sound rule: a private bucket there answers nothing anonymously, so it may.
        try Self.serveOnly(bucket, acl: "private").write(to: root.appendingPathComponent("site.yaml"))
        let quiet = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(!said(quiet).contains("shares files with bucket 'out'"), "\(said(quiet))")
    }

    /// nestb2: derive.yaml drops its rule; pub/u, a folder it made, is site.yaml's bucket folder.
    @Test func aFolderThatIsTheBucketOfTheManifestBesideItIsNeverRemoved() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.project(in: root, outputs: "pub", to: "out/u/{name}.jpg")
        try Self.serveOnly("pub/u", acl: "private").write(to: root.appendingPathComponent("site.yaml"))
        let manifest = try String(contentsOf: root.appendingPathComponent("derive.yaml"), encoding: .utf8)
        try Data(manifest.replacingOccurrences(of: "derivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/u/{name}.jpg\"}",
                                                with: "derivatives: []").utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: root)
        #expect(build.status == 0 && said(build).contains("deleted 2"), "\(said(build))")
        var folder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/u").path, isDirectory: &folder) && folder.boolValue,
                "site.yaml's bucket folder pub/u was removed")
    }
}
