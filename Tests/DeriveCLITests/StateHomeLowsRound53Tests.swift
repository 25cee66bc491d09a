import Foundation
import Testing
import TestSupport

/// Attack 52b's 4 (validate's part), 6, L1, L2, L5 and L6, each a derive run or two on a tiny project.
@Suite(.ownThreads) struct StateHomeLowsRound53Tests {
    static let published = """
        version: 1
        buckets:
          img: {path: img}
          www: {path: pub, acl: public-read}
        derivatives:
          - {from: img/*.jpg, process: "image/resize,w_16", to: "www/t/{name}.jpg", acl: public-read}

        """

    /// p.yaml publishing `pub`, with one image to render.
    func project() throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("img"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("img/s.jpg"))
        try Data(Self.published.utf8).write(to: root.appendingPathComponent("p.yaml"))
        try Data("<p>hi</p>\n".utf8).write(to: root.appendingPathComponent("pub/index.html"))
        return root
    }

    func files(below folder: URL) -> [String] {
        let found = FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String] ?? []
        return found.filter { name in
            var isFolder: ObjCBool = false
            return !(FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path, isDirectory: &isFolder) && isFolder.boolValue)
        }.sorted()
    }

    /// 52b's 4: validate warns of Derive's per-user records (copied or hard-linked) in a public bucket.
    @Test func validateWarnsOfPerUserRecordsInAPublicBucket() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let clean = try CLI.run(["validate", "p.yaml"], in: root)
        #expect(clean.status == 0 && !said(clean).contains("per-user records"), "\(said(clean))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub/.st"), withIntermediateDirectories: true)
        try Data("secret \(String(repeating: "0f", count: 32))\nstate \"/p/.derive/p/state.sqlite\"\n".utf8)
            .write(to: root.appendingPathComponent("pub/.st/notes.txt"))
        let warned = try CLI.run(["validate", "p.yaml"], in: root)
        #expect(warned.status == 0 && warned.stderr.contains("holds Derive's per-user records") && warned.stderr.contains("pub/.st/notes.txt"), "\(said(warned))")
    }

    /// 52b's L5: a relative XDG_STATE_HOME is ignored, as the XDG spec says, and said once, with
    /// the folder used instead (HOME's, here in the scratch folder).
    @Test func aRelativeStateHomeIsSaidIgnoredOnce() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let home = root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let result = try CLI.run(["build", "p.yaml"], in: root, environment: ["XDG_STATE_HOME": "pub/st", "HOME": home.path])
        #expect(result.status == 0, "\(said(result))")
        let line = "XDG_STATE_HOME (pub/st) is not an absolute path, so it is ignored"
        #expect(result.stderr.components(separatedBy: line).count == 2, "\(said(result))")
        #expect(result.stderr.contains(home.path + "/.local/state/derive/states"), "\(said(result))")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/st").path))
    }

    /// 52b's L6: with HOME inside a public bucket (and no XDG_STATE_HOME), a build refused for it
    /// writes nothing into the bucket, not even the engine cache.
    @Test func aRefusedBuildWritesNothingIntoTheBucketHoldingHome() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let result = try CLI.run(["build", "p.yaml"], in: root, environment: ["HOME": root.appendingPathComponent("pub/home").path],
                             unset: ["XDG_STATE_HOME", "XDG_CACHE_HOME", "DERIVE_ENGINE_CACHE"])
        #expect(result.status != 0 && result.stderr.contains("holds Derive's folder of per-user secrets"), "\(said(result))")
        #expect(files(below: root.appendingPathComponent("pub")) == ["index.html"], "\(files(below: root.appendingPathComponent("pub")))")
    }

    /// 52b's L1: an older copy of this manifest's own lock in its public bucket is named as what it
    /// most likely is, not blamed on a manifest that never existed (`pub/old/p.yaml`).
    @Test func anOlderCopyOfTheOwnLockIsNotBlamedOnAMadeUpManifest() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try CLI.run(["build", "p.yaml"], in: root)
        #expect(first.status == 0, "\(said(first))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub/old"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: root.appendingPathComponent("p.lock"), to: root.appendingPathComponent("pub/old/p.lock"))
        try Data(Self.published.replacingOccurrences(of: "w_16", with: "w_18").utf8).write(to: root.appendingPathComponent("p.yaml"))
        // The build still finds the copy current (it rewrites the lock): said as a copy, and builds.
        let second = try CLI.run(["build", "p.yaml"], in: root)
        #expect(second.status == 0, "\(said(second))")
        let validated = try CLI.run(["validate", "p.yaml"], in: root)
        let planned = try CLI.run(["plan", "p.yaml"], in: root)
        for result in [validated, planned] {
            #expect(result.status != 0, "\(said(result))")
            #expect(!said(result).contains("another project, which is no longer there") && !said(result).contains("put pub/old/p.yaml back"), "\(said(result))")
            #expect(said(result).contains("an older copy of this manifest's lock") && said(result).contains("pub/old/p.lock"), "\(said(result))")
        }
    }

    /// 52b's 6 and L2: init follows a `_site` link into a registered project's private bucket
    /// (absolute, so no look upward meets it): refused, naming that project, nothing written;
    /// also when that folder holds the project's outputs (not "files Derive did not write").
    @Test func initNeverWritesThroughASiteLinkIntoAnotherProjectsBucket() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        for folder in ["p/img", "out/sub", "site/photos", "site2/photos"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("p/img/s.jpg"))
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("site/photos/x.jpg"))
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("site2/photos/x.jpg"))
        try Data("version: 1\nbuckets:\n  img: {path: img}\n  out: {path: \(root.appendingPathComponent("out").path)}\nderivatives:\n  - {from: img/*.jpg, process: \"image/resize,w_16\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("p/p.yaml"))
        let built = try CLI.run(["build", "p.yaml"], in: root.appendingPathComponent("p"))
        #expect(built.status == 0, "\(said(built))")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("site/_site").path, withDestinationPath: "../out/sub")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("site2/_site").path, withDestinationPath: "../out")
        for site in ["site", "site2"] {
            let folder = root.appendingPathComponent(site)
            let result = try CLI.run(["init", "photos"], in: folder)
            #expect(result.status != 0 && result.stderr.contains("p.yaml") && result.stderr.contains("another project")
                        && !result.stderr.contains("Derive did not write"), "\(site): \(said(result))")
            #expect(!fm.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path), "\(site)")
        }
        #expect(files(below: root.appendingPathComponent("out")) == ["s.jpg"], "\(files(below: root.appendingPathComponent("out")))")
    }
}
