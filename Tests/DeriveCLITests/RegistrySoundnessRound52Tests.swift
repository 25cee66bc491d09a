import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #9, attack 51a's 1, 1b, 2 and 2b: a taker's build state records the very file it
/// installed over the site's output (`build --overwrite`, identical bytes in a new file); the
/// site must never adopt that file as a "restored copy" (and `clean` delete it) because a folder
/// was renamed, the project moved, the registry of built projects lost or full, or the state home
/// lies in a bucket.
@Suite(.ownThreads) struct RegistrySoundnessRound52Tests: TakeoverScratch {
    static let nearTaker = "version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: ../pub/n}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"

    /// `root/p` (the site) and the taker `p/sub/n.yaml` (bucket `../pub/n`), both built, the taker
    /// with `--overwrite`; the state home `root/xdg`.
    func nearTakeover(_ root: URL) throws -> (p: URL, environment: [String: String]) {
        let made = try takeover(root, taker: "p/sub/n.yaml", in: "p") { _ in Self.nearTaker }
        return (made.proj, made.environment)
    }

    /// `root/proj` (the site) and a taker `far/a/b/n.yaml` outside every folder the site looks in,
    /// both built, the taker with `--overwrite`; the state home `home` (default `root/xdg`).
    func farTakeover(_ root: URL, home: URL? = nil) throws -> (proj: URL, taker: URL, environment: [String: String]) {
        try takeover(root, home: home ?? root.appendingPathComponent("xdg"))
    }

    /// 1b (a): the site's bucket folder renamed (`mv pub pub2`, `path: pub2`). The taker
    /// `sub/n.yaml` still records the very file (it moved with the folder).
    @Test func aRenamedBucketFolderKeepsTheTakersClaim() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try nearTakeover(root)
        try FileManager.default.moveItem(at: p.appendingPathComponent("pub"), to: p.appendingPathComponent("pub2"))
        try write(Self.site.replacingOccurrences(of: "{path: pub}", with: "{path: pub2}"), p.appendingPathComponent("derive.yaml"))
        let file = p.appendingPathComponent("pub2/n/a.jpg")
        let before = inode(file)
        let plan = try CLI.run(["plan"], in: p, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("sub/n.yaml") && !said(plan).contains("restored copy"), "\(said(plan))")
        let build = try CLI.run(["build"], in: p, environment: environment)
        #expect(!said(build).contains("adopted"), "\(said(build))")
        let clean = try CLI.run(["clean"], in: p, environment: environment)
        #expect(FileManager.default.fileExists(atPath: file.path) && inode(file) == before, "clean removed the taker's file: \(said(clean))")
    }

    /// 1b (b): the taker's lock lost, then the whole project moved (`mv p q`: every inode kept);
    /// its state moved with it and still records the very file.
    @Test func aMovedProjectKeepsTheTakersClaimByItsState() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try nearTakeover(root)
        try FileManager.default.removeItem(at: p.appendingPathComponent("sub/n.lock"))
        let q = root.appendingPathComponent("q")
        try FileManager.default.moveItem(at: p, to: q)
        try expectClaimed(q, by: "sub/n.yaml", environment, "moved")
    }

    /// 1b (c): a far taker renamed (`mv far/a far/a2`) and built again (a no-op) is found where it
    /// is now: its no-op build registers it again.
    @Test func aRenamedFarTakersNoOpBuildRegistersItAgain() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root)
        try FileManager.default.moveItem(at: root.appendingPathComponent("far/a"), to: root.appendingPathComponent("far/a2"))
        let noOp = try CLI.run(["build", "-q", root.appendingPathComponent("far/a2/b/n.yaml").path], in: proj, environment: environment)
        #expect(noOp.status == 0, "\(said(noOp))")
        let registry = try String(contentsOf: root.appendingPathComponent("xdg/derive/states/projects"), encoding: .utf8)
        #expect(registry.contains("/far/a2/b/n.yaml"), "\(registry)")
        try expectClaimed(proj, by: "far/a2/b/n.yaml", environment, "renamed")
    }

    /// 2: the registry lost (moved away, as the advice for one that cannot be read says; or a
    /// folder at its name while the taker built, so the taker wrote no line): the next commands
    /// find the far taker again from what the state home holds.
    @Test(arguments: ["moved away", "a folder while the taker built"])
    func aLostRegistryIsRebuiltFromTheStateHome(variant: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let home = root.appendingPathComponent("xdg")
        let registry = home.appendingPathComponent("derive/states/projects")
        if variant == "moved away" {
            let (proj, _, environment) = try farTakeover(root)
            try Data("junk\n".utf8).write(to: registry)
            let doubt = try CLI.run(["plan"], in: proj, environment: environment)
            #expect(doubt.status == 1 && said(doubt).contains("move the registry away"), "\(said(doubt))")
            try FileManager.default.moveItem(at: registry, to: root.appendingPathComponent("registry.moved"))
            try expectClaimed(proj, by: "far/a/b/n.yaml", environment, variant)
        } else {
            try FileManager.default.createDirectory(at: registry, withIntermediateDirectories: true)
            let (proj, _, environment) = try farTakeover(root, home: home)
            try FileManager.default.removeItem(at: registry)
            try expectClaimed(proj, by: "far/a/b/n.yaml", environment, variant)
        }
    }

    /// 2b: at the limit of 1 024 lines, every one naming a project still there, two more projects
    /// build: the far taker's line is never dropped as "oldest".
    @Test func theLimitNeverDropsALiveProject() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root)
        let registry = root.appendingPathComponent("xdg/derive/states/projects")
        let fill = root.appendingPathComponent("fill")
        try FileManager.default.createDirectory(at: fill, withIntermediateDirectories: true)
        var lines = try String(contentsOf: registry, encoding: .utf8)
        for index in 1...1022 {
            let manifest = fill.appendingPathComponent("\(index).yaml").path
            _ = FileManager.default.createFile(atPath: manifest, contents: Data())
            lines += "{\"buckets\":{},\"lock\":\"\(fill.path)/\(index).lock\",\"manifest\":\"\(manifest)\",\"state\":\"\(fill.path)/\(index)\"}\n"
        }
        try Data(lines.utf8).write(to: registry)
        for name in ["x", "y"] {
            let other = root.appendingPathComponent(name)
            try makeSite(other)
            let built = try CLI.run(["build", "-q"], in: other, environment: environment)
            #expect(built.status == 0, "\(said(built))")
        }
        let after = try String(contentsOf: registry, encoding: .utf8)
        #expect(after.contains("/far/a/b/n.yaml"), "the far taker's line was dropped")
        // The projects that could not be recorded are found from the tokens until it is whole.
        #expect(FileManager.default.fileExists(atPath: registry.path + ".incomplete"), "no mark that the registry lacks x and y")
        try expectClaimed(proj, by: "far/a/b/n.yaml", environment, "limit")
    }

    /// 1: the state home inside the site's bucket (and the taker's): no build runs there (the
    /// secrets would be a bucket's files), so no registry is written there and nothing adopted.
    @Test func aStateHomeInABucketAdoptsNothing() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let proj = root.appendingPathComponent("proj")
        let home = proj.appendingPathComponent("pub/n/.st")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        #expect(chmod(home.path, 0o700) == 0)
        try makeSite(proj)
        let built = try CLI.run(["build"], in: proj, environment: ["XDG_STATE_HOME": home.path])
        #expect(built.status == 1 && said(built).contains("XDG_STATE_HOME"), "\(said(built))")
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent("derive/states/projects").path))
        #expect(!FileManager.default.fileExists(atPath: proj.appendingPathComponent("pub/n/a.jpg").path))
    }

    /// A registry a build wrote whole is read alone: the state home's tokens (thousands in a
    /// long-lived home: every validate and serve rescan read each, 0.4 s → 6.4 s) are read only
    /// while it may lack a project. Here more token names than are ever read: a whole registry
    /// still names the far taker, where reading the tokens would be doubt.
    @Test func aWholeRegistryIsReadWithoutTheTokens() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root)
        let states = root.appendingPathComponent("xdg/derive/states")
        let registry = try String(contentsOf: states.appendingPathComponent("projects"), encoding: .utf8)
        #expect(registry.hasPrefix("derive-projects 2\n"), "\(registry.prefix(80))")
        for index in 0...8_192 {
            let name = String(repeating: "0", count: 56) + String(format: "%08x", index)
            #expect(FileManager.default.createFile(atPath: states.appendingPathComponent(name).path, contents: Data()))
        }
        try expectClaimed(proj, by: "far/a/b/n.yaml", environment, "whole registry")
    }

    /// A registry an older Derive wrote (`derive-projects 1`, which never read the tokens), here
    /// without the far taker's line: the taker is found from the tokens, and the next build that
    /// writes makes the registry whole again, the taker's line in it.
    @Test func anOlderRegistryIsMadeWholeByTheNextBuild() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root)
        let registry = root.appendingPathComponent("xdg/derive/states/projects")
        let lines = try String(contentsOf: registry, encoding: .utf8).split(separator: "\n").dropFirst().filter { !$0.contains("/far/a/b/") }
        try Data((["derive-projects 1"] + lines).joined(separator: "\n").appending("\n").utf8).write(to: registry)
        let other = root.appendingPathComponent("y")
        try makeSite(other)
        let built = try CLI.run(["build", "-q"], in: other, environment: environment)
        #expect(built.status == 0, "\(said(built))")
        let after = try String(contentsOf: registry, encoding: .utf8)
        #expect(after.hasPrefix("derive-projects 2\n") && after.contains("/far/a/b/n.yaml") && after.contains(other.path + "/derive.yaml"), "\(after)")
        try expectClaimed(proj, by: "far/a/b/n.yaml", environment, "older registry")
    }
}
