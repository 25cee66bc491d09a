import Foundation
import Testing
import TestSupport

/// Issue #9, attack 51a's 5, 6, 7, 8, 9: takeovers judged by what is known.
/// 5: a live neighbour (`site.yaml` beside derive.yaml, or `sub/n.yaml` writing `../pub/n`) took
/// `a.jpg` over with `--overwrite`, then lost its lock and state; its rule still writes the name.
/// The original called the file a "restored copy", adopted it, and `clean` deleted it. It is
/// doubt now: named as that neighbour's possible output, never adopted, never deleted.
/// 6: the taker renamed in its folder (`sub/n.yaml` → `sub/m.yaml`) was told its file was the
/// original's (a lock's bytes), without the rename advice its old state's record earns.
/// 7: after a whole project was restored from a backup (new inodes), each manifest named the other.
/// 8: with an unreadable registry, `clean` named the registry file as the owning manifest.
/// 9: a narrowed name left in doubt was written in the lock as "not the file Derive wrote there".
@Suite(.ownThreads) struct RuleDoubtTakeoverRound52Tests {
    static let site = "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n"
    static let taker = "version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: ../pub/n}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"

    /// `root/p` with the site `derive.yaml` and its taker (`site.yaml` beside it, or `sub/n.yaml`),
    /// and a state home of its own in `root/home`; the taker's manifest path, relative.
    func project(_ root: URL, beside: Bool) throws -> (p: URL, taker: String, environment: [String: String]) {
        let p = root.appendingPathComponent("p")
        for folder in ["p/src", "p/sub", "home"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: p.appendingPathComponent("src/a.jpg"))
        try Data(Self.site.utf8).write(to: p.appendingPathComponent("derive.yaml"))
        let taker = beside ? "site.yaml" : "sub/n.yaml"
        try Data((beside ? Self.site : Self.taker).utf8).write(to: p.appendingPathComponent(taker))
        return (p, taker, ["XDG_STATE_HOME": root.appendingPathComponent("home").path])
    }

    func inode(_ file: URL) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: file.path))?[.systemFileNumber] as? UInt64
    }

    /// 5: the taker loses its lock and state; its manifest and rule stay. The site's plan, build
    /// and clean never adopt or delete the file, and name the taker.
    @Test(arguments: [true, false])
    func aLiveTakersFileIsDoubtOnceItsLockAndStateAreLost(beside: Bool) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, taker, environment) = try project(root, beside: beside)
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        let taken = try CLI.run(["build", "-q", "--overwrite", taker], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        let stem = ((taker as NSString).lastPathComponent as NSString).deletingPathExtension
        let folder = p.appendingPathComponent((taker as NSString).deletingLastPathComponent)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("\(stem).lock"))
        try FileManager.default.removeItem(at: folder.appendingPathComponent(".derive/\(stem)"))

        let file = p.appendingPathComponent("pub/n/a.jpg")
        let before = inode(file)
        for arguments in [["plan"], ["build"]] {
            let run = try CLI.run(arguments, in: p, environment: environment)
            let text = said(run)
            #expect(run.status == 1 && text.contains("pub/n/a.jpg may be an output of ") && text.contains("/p/\(taker)"), "\(arguments): \(text)")
            #expect(text.contains("derive build") && text.contains("--overwrite"), "\(arguments): \(text)")
            #expect(!text.contains("restored copy") && !text.contains("adopted 1"), "\(arguments): \(text)")
        }
        let clean = try CLI.run(["clean"], in: p, environment: environment)
        #expect(inode(file) == before && inode(file) != nil, "clean removed the taker's file: \(said(clean))")
    }

    /// 5, the neighbour that never built: the site's own record of the very file still wins; a
    /// copy restored by hand (a new inode) while the neighbour's rule writes its name is doubt,
    /// and the advice that names this manifest with --overwrite takes it over.
    @Test func aRestoredCopyANeighboursRuleWritesIsDoubtUntilTakenOver() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, _, environment) = try project(root, beside: true)
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        // The very file the site installed: its own, site.yaml's rule notwithstanding.
        #expect(try CLI.run(["check"], in: p, environment: environment).status == 0)
        let file = p.appendingPathComponent("pub/n/a.jpg")
        let bytes = try Data(contentsOf: file)
        try FileManager.default.removeItem(at: file)
        try bytes.write(to: file)
        let plan = try CLI.run(["plan"], in: p, environment: environment)
        let text = said(plan)
        #expect(plan.status == 1 && text.contains("pub/n/a.jpg may be an output of ") && text.contains("/p/site.yaml"), "\(text)")
        #expect(text.contains("derive build \(p.path)/site.yaml --overwrite") || text.contains("site.yaml --overwrite"), "\(text)")
        #expect(text.contains("derive.yaml --overwrite") && !text.contains("restored copy"), "\(text)")
        let taken = try CLI.run(["build", "--overwrite"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        #expect(try CLI.run(["check"], in: p, environment: environment).status == 0)
    }

    /// 6: `sub/n.yaml` renamed `sub/m.yaml`, n's lock and state left recording the very file.
    @Test func aRenamedTakerIsNamedAsItsOldSelfWithTheRenameAdvice() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, taker, environment) = try project(root, beside: false)
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite", taker], in: p, environment: environment).status == 0)
        try FileManager.default.moveItem(at: p.appendingPathComponent("sub/n.yaml"), to: p.appendingPathComponent("sub/m.yaml"))
        let plan = try CLI.run(["plan", "sub/m.yaml"], in: p, environment: environment)
        let text = said(plan)
        #expect(plan.status == 1 && text.contains("/p/sub/n.yaml") && text.contains("'lock: n.lock' and 'state: .derive/n'"), "\(text)")
        #expect(!text.contains("/p/derive.yaml"), "\(text)")
    }

    /// 7: the whole project restored from a copy (every file a new inode): neither manifest names
    /// the other as owner; both say doubt, and following the advice for one settles both.
    @Test func aRestoredProjectsTwoManifestsAgree() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (built, taker, environment) = try project(root, beside: false)
        #expect(try CLI.run(["build", "-q"], in: built, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite", taker], in: built, environment: environment).status == 0)
        // A restore from a backup: the same tree at the same path, every file a new one.
        let backup = root.appendingPathComponent("backup")
        try FileManager.default.copyItem(at: built, to: backup)
        try FileManager.default.removeItem(at: built)
        try FileManager.default.copyItem(at: backup, to: built)
        let p = built
        for manifest in ["derive.yaml", taker] {
            let plan = try CLI.run(["plan", manifest], in: p, environment: environment)
            #expect(plan.status == 1 && said(plan).contains("pub/n/a.jpg may be an output of "), "\(manifest): \(said(plan))")
            #expect(!said(plan).contains("is an output of"), "\(manifest): \(said(plan))")
        }
        let file = p.appendingPathComponent("pub/n/a.jpg")
        for manifest in ["derive.yaml", taker] {
            let clean = try CLI.run(["clean", manifest], in: p, environment: environment)
            #expect(FileManager.default.fileExists(atPath: file.path), "\(manifest): \(said(clean))")
        }
        // The advice, for the taker (it built last): it records the file, and the site names it.
        let taken = try CLI.run(["build", "--overwrite", taker], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        #expect(try CLI.run(["check", taker], in: p, environment: environment).status == 0)
        let site = try CLI.run(["plan"], in: p, environment: environment)
        #expect(site.status == 1 && said(site).contains("pub/n/a.jpg is an output of ") && said(site).contains("/p/sub/n.yaml"), "\(said(site))")
    }

    /// 8: clean with an unreadable registry says the file may be another project's, naming the
    /// registry as the registry, never as the owning manifest.
    @Test func cleanNamesAnUnreadableRegistryAsTheRegistry() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, taker, environment) = try project(root, beside: false)
        try FileManager.default.removeItem(at: p.appendingPathComponent(taker))
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        let file = p.appendingPathComponent("pub/n/a.jpg")
        let bytes = try Data(contentsOf: file)
        try FileManager.default.removeItem(at: file)
        try bytes.write(to: file)
        let registry = root.appendingPathComponent("home/derive/states/projects")
        try Data("not a registry\n".utf8).write(to: registry)
        let clean = try CLI.run(["clean"], in: p, environment: environment)
        let text = said(clean)
        #expect(FileManager.default.fileExists(atPath: file.path), "\(text)")
        #expect(text.contains("pub/n/a.jpg may be another project's output (") && text.contains(registry.path), "\(text)")
        #expect(!text.contains("is an output of \(registry.path)"), "\(text)")
    }

    /// 9: derive.yaml leaves the narrowed `a-800.webp` hero adopted (hero's state lost since) in doubt: its lock's line and
    /// explain give that reason, not "not the file Derive wrote there" (it is the very file).
    @Test func aNarrowedNameLeftInDoubtIsWrittenAsInDoubt() throws {
        let site = try AdoptedByNeighbourRound51Tests.adoptedByHero()
        defer { site.remove() }
        try FileManager.default.removeItem(at: site.url(".derive/hero"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let lock = String(decoding: try Data(contentsOf: site.url("derive.lock")), as: UTF8.self)
        let line = lock.split(separator: "\n").first { $0.contains("\"left\":\"site/a-800.webp\"") }.map(String.init) ?? ""
        #expect(line.contains("\"why\":\"in doubt: hero."), "\(lock)")
        let explain = try site.run(["explain", "site/a-800.webp"])
        #expect(said(explain).contains("left in place (in doubt: hero."), "\(said(explain))")
        #expect(!said(explain).contains("not the file Derive wrote there"), "\(said(explain))")
    }
}
