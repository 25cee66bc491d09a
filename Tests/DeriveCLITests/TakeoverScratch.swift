import Foundation
import Testing
import TestSupport

/// The scratch project of issue #9's takeover suites (RegistrySoundnessRound52Tests,
/// FarTakersByIdentityRound53Tests, TakerStateLostRound53Tests): the site (the original) with one
/// source `src/a.jpg` whose rule `t` writes `pub/n/{name}.jpg`, and a taker whose bucket `out` is
/// the site's `pub/n`, near (inside the site's folder) or far (beyond every folder the site looks
/// in, by absolute paths); both built, the taker with `--overwrite`, so its state records the very
/// file the site wrote; the state home inside the scratch root. One copy, so a fix to how a
/// takeover is set up reaches every suite that makes one.
protocol TakeoverScratch {}

extension TakeoverScratch {
    /// The site's manifest.
    static var site: String {
        "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n"
    }

    /// A far taker's manifest: the site `proj`'s `src` and `pub/n` by absolute paths; `extraBuckets`
    /// more buckets (named before `out`), its rule's width.
    static func farTaker(_ proj: URL, width: Int = 8, extraBuckets: [URL] = []) -> String {
        let extra = extraBuckets.enumerated().map { "  b\(String(format: "%02d", $0.offset)): {path: \($0.element.path)}\n" }.joined()
        return "version: 1\nbuckets:\n\(extra)  src: {path: \(proj.path)/src}\n  out: {path: \(proj.path)/pub/n}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_\(width)\", to: \"out/{name}.jpg\"}\n"
    }

    func inode(_ file: URL) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: file.path))?[.systemFileNumber] as? UInt64
    }

    func write(_ text: String, _ file: URL) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    /// A site project at `folder`: one source `src/a.jpg`, `manifest` as its `derive.yaml`.
    func makeSite(_ folder: URL, manifest: String = Self.site) throws {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try write(manifest, folder.appendingPathComponent("derive.yaml"))
    }

    /// The site `root/<folder>` (manifest `site`) and the taker `root/<taker>` (its manifest
    /// `takerManifest(site folder)`, a far taker unless said), both built, the taker with
    /// `--overwrite`; the state home `home` (made first), `root/xdg` unless said.
    func takeover(_ root: URL, taker path: String = "far/a/b/n.yaml", site: String = Self.site, in folder: String = "proj", home: URL? = nil,
                  takerManifest: (URL) -> String = { Self.farTaker($0) }) throws -> (proj: URL, taker: URL, environment: [String: String]) {
        let proj = root.appendingPathComponent(folder), taker = root.appendingPathComponent(path)
        try makeSite(proj, manifest: site)
        try write(takerManifest(proj), taker)
        if let home { try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true) }
        let environment = ["XDG_STATE_HOME": (home ?? root.appendingPathComponent("xdg")).path]
        let built = try CLI.run(["build", "-q"], in: proj, environment: environment)
        #expect(built.status == 0, "\(said(built))")
        let taken = try CLI.run(["build", "-q", "--overwrite", taker.path], in: proj, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        return (proj, taker, environment)
    }

    /// Plan names `owner` (a path fragment) as the owner of `file` and adopts nothing; build adopts
    /// nothing; clean leaves the very file.
    func expectClaimed(_ proj: URL, _ file: String = "pub/n/a.jpg", by owner: String, _ environment: [String: String], _ context: String) throws {
        let file = proj.appendingPathComponent(file)
        let before = inode(file)
        #expect(before != nil, "\(context): the taker's file is not there")
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        let text = said(plan)
        #expect(plan.status == 1 && text.contains(owner), "\(context): \(text)")
        #expect(!text.contains("restored copy"), "\(context): \(text)")
        let build = try CLI.run(["build"], in: proj, environment: environment)
        #expect(!said(build).contains("adopted"), "\(context): \(said(build))")
        let clean = try CLI.run(["clean"], in: proj, environment: environment)
        #expect(FileManager.default.fileExists(atPath: file.path) && inode(file) == before, "\(context): clean removed the taker's file: \(said(clean))")
    }
}
