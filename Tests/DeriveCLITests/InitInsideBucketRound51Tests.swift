import Foundation
import Testing
import TestSupport

/// Attack 50c's M7 (issue #9): `derive init` run in another project's public output bucket (`cd
/// _site`, which Derive's own "no manifest" error suggested) wrote a manifest, `.gitignore` and
/// `.gitattributes` there, and every command of the outer project was refused from then on; run
/// in its source bucket, the outer project took the new project's outputs for sources. init now
/// refuses a folder that is, or lies in, another project's bucket or state folder, naming that
/// project, and writes nothing; the "no manifest" error there says where the manifest is instead.
@Suite(.ownThreads) struct InitInsideBucketRound51Tests {
    static let outer = "version: 1\nbuckets:\n  src: {path: images}\n  site: {path: _site, acl: public-read}\n"
        + "derivatives:\n  - {name: t, from: src/*.jpg, process: \"image/resize,w_8\", to: \"site/{name}.jpg\", acl: public-read}\n"

    func project() throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        for folder in ["images/trip", "_site", ".derive/derive"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("images/a.jpg"))
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("images/trip/b.jpg"))
        try Data(Self.outer.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        return root
    }

    @Test func initRefusesAnotherProjectsBucketOrStateFolderAndWritesNothing() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        for (folder, images, what) in [("_site", "../images", "bucket 'site'"), ("images", "trip", "bucket 'src'"),
                                       (".derive/derive", "../../images", "state folder")] {
            let here = root.appendingPathComponent(folder)
            let run = try CLI.run(["init", images], in: here)
            #expect(run.status == 1 && run.stderr.contains("derive.yaml") && run.stderr.contains(what), "\(folder): \(said(run))")
            let written = try FileManager.default.contentsOfDirectory(atPath: here.path).filter { ["derive.yaml", ".gitignore", ".gitattributes", "_site"].contains($0) }
            #expect(written.isEmpty, "\(folder): init wrote \(written)")
        }
        let outer = try CLI.run(["validate"], in: root)
        #expect(outer.status == 0, "\(said(outer))")
    }

    /// A command run in the outer project's bucket, which has no manifest, names the project
    /// instead of suggesting `derive init` there.
    @Test func theNoManifestErrorInABucketNamesTheProjectNotInit() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        for command in [["build"], ["build", "--watch"]] {
            let run = try CLI.run(command, in: root.appendingPathComponent("_site"))
            #expect(run.status != 0 && !said(run).contains("derive init") && said(run).contains("bucket 'site'"), "\(command): \(said(run))")
        }
        // Elsewhere the advice stays.
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        #expect(said(try CLI.run(["build"], in: elsewhere)).contains("derive init"))
    }
}
