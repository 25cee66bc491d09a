import Foundation
import Testing
import TestSupport

/// Issue #9, attack 52a's F2, F3, F5, F6, F11, F12, F13: a taker that lost its build
/// state, a site that cleaned, a state home removed. The site `proj/derive.yaml` writes
/// `pub/n/a.jpg`; a taker whose bucket is `proj/pub/n` took the file over with `--overwrite`.
/// F2: a far taker (`far/a/b/n.yaml`, beyond the neighbour search) lost only its build state: the
/// site adopted its file as a restored copy and `clean` deleted it. F3: after the site's `clean`
/// (its lock and state gone) a live neighbour's file was "not written by Derive", and the advice
/// `build --verify` took it. F12: `rm -rf $XDG_STATE_HOME`: the site adopted the far taker's file
/// from its lock, said "Up to date", and `clean` deleted it. F13: an orphan left for a live
/// neighbour's rule was written as "not the file Derive wrote there" and offered for release.
/// F5: a backup of a taker's lock outranked its live state; F6: a lock not there was named.
@Suite(.ownThreads) struct TakerStateLostRound53Tests: TakeoverScratch {
    /// The taker's lock and build state folder (`n.lock`, `.derive/n` beside it).
    func controlFiles(_ taker: URL) -> (lock: URL, state: URL) {
        let folder = taker.deletingLastPathComponent()
        return (folder.appendingPathComponent("n.lock"), folder.appendingPathComponent(".derive"))
    }

    /// Plan and build refuse `pub/n/a.jpg` in doubt naming `owner` with --overwrite advice, adopt
    /// nothing, never advise --verify; `build --verify` and `clean` leave the very file.
    func expectDoubt(_ proj: URL, owner: String, _ environment: [String: String], _ context: String) throws {
        let file = proj.appendingPathComponent("pub/n/a.jpg")
        let before = inode(file)
        #expect(before != nil, "\(context): the taker's file is not there")
        for arguments in [["plan"], ["check"], ["build"], ["build", "--verify"]] {
            let run = try CLI.run(arguments, in: proj, environment: environment)
            let text = said(run)
            #expect(run.status == 1 && text.contains("pub/n/a.jpg may be ") && text.contains(owner), "\(context) \(arguments): \(text)")
            #expect(text.contains("--overwrite") && !text.contains("restored copy") && !text.contains("adopted 1") && !text.contains("adopted from") && !text.contains("Up to date"), "\(context) \(arguments): \(text)")
            #expect(!text.contains("derive build --verify"), "\(context) \(arguments): \(text)")
            #expect(inode(file) == before, "\(context) \(arguments): the taker's file was replaced: \(text)")
        }
        let clean = try CLI.run(["clean"], in: proj, environment: environment)
        #expect(inode(file) == before, "\(context): clean removed the taker's file: \(said(clean))")
    }

    /// F2: the far taker loses its build state (its lock and manifest kept), or its lock too: its
    /// live rule, found through the registry of built projects, keeps the file in doubt.
    @Test(arguments: [false, true])
    func aFarTakerThatLostItsStateKeepsItsFileInDoubt(lockLost: Bool) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, taker, environment) = try takeover(root, taker: "far/a/b/n.yaml")
        let (lock, state) = controlFiles(taker)
        try FileManager.default.removeItem(at: state)
        if lockLost { try FileManager.default.removeItem(at: lock) }
        try expectDoubt(proj, owner: "/far/a/b/n.yaml", environment, "lock lost: \(lockLost)")
        // The advice for the taker settles it: the taker records the file, the site names it.
        let settled = try CLI.run(["build", "-q", "--overwrite", taker.path], in: proj, environment: environment)
        #expect(settled.status == 0, "\(said(settled))")
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("pub/n/a.jpg is an output of ") && said(plan).contains("/far/a/b/n.yaml"), "\(said(plan))")
    }

    /// F3: the taker beside the site lost its lock and state; the site's `clean` (its own lock and
    /// state gone) keeps the doubt, and neither `build` nor its advice takes the file.
    @Test func theSitesCleanKeepsANeighboursFileInDoubt() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, taker, environment) = try takeover(root, taker: "far/n.yaml")
        let (lock, state) = controlFiles(taker)
        try FileManager.default.removeItem(at: state)
        try FileManager.default.removeItem(at: lock)
        let file = proj.appendingPathComponent("pub/n/a.jpg")
        let before = inode(file)
        let clean = try CLI.run(["clean"], in: proj, environment: environment)
        #expect(inode(file) == before && said(clean).contains("in doubt"), "\(said(clean))")
        try expectDoubt(proj, owner: "/far/n.yaml", environment, "after clean")
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(said(plan).contains("nothing of this manifest records a file there"), "\(said(plan))")
    }

    /// F2's variant: the site's rule narrowed onto the far taker's name after the taker built it
    /// (the site never wrote it); the taker's state lost, its lock kept.
    @Test func aNameTheSiteNeverWroteStaysTheFarTakersDoubt() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, taker, environment) = try takeover(root, taker: "far/a/b/n.yaml", site: Self.site.replacingOccurrences(of: "{name}.jpg", with: "{name}-x.jpg"))
        try write(Self.site, proj.appendingPathComponent("derive.yaml"))
        try FileManager.default.removeItem(at: controlFiles(taker).state)
        try expectDoubt(proj, owner: "/far/a/b/n.yaml", environment, "narrowed")
    }

    /// F12: the state home removed (`rm -rf $XDG_STATE_HOME`): the site's state, no longer sealed,
    /// records another file there, so the far taker's file is doubt; building the taker first
    /// (the advice) records it again, and the site then names it.
    @Test func aRemovedStateHomeIsDoubtNotNoOtherProject() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, taker, environment) = try takeover(root, taker: "far/a/b/n.yaml")
        try FileManager.default.removeItem(at: root.appendingPathComponent("xdg"))
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(said(plan).contains("build the other projects that write into this bucket first"), "\(said(plan))")
        try expectDoubt(proj, owner: "state home", environment, "state home removed")
        let taken = try CLI.run(["build", taker.path], in: proj, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        let named = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(named.status == 1 && said(named).contains("pub/n/a.jpg is an output of ") && said(named).contains("/far/a/b/n.yaml"), "\(said(named))")
    }

    /// The state home changed with nothing replaced (a CI cache, another HOME): the very file the
    /// site's unsealed state records is adopted from its lock as before, no doubt.
    @Test func anotherStateHomeWithTheVeryFileIsNoDoubt() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let proj = root.appendingPathComponent("proj")
        try FileManager.default.createDirectory(at: proj.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: proj.appendingPathComponent("src/a.jpg"))
        try write(Self.site, proj.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: proj, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]).status == 0)
        let check = try CLI.run(["check"], in: proj, environment: ["XDG_STATE_HOME": root.appendingPathComponent("other").path])
        #expect(check.status == 0 && !said(check).contains("may be "), "\(said(check))")
    }

    /// F13: the neighbour's file an orphaned name leaves is in doubt in the lock's `left` line.
    @Test func anOrphanLeftForANeighboursRuleIsWrittenAsInDoubt() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, taker, environment) = try takeover(root, taker: "far/n.yaml")
        let (lock, state) = controlFiles(taker)
        try FileManager.default.removeItem(at: state)
        try FileManager.default.removeItem(at: lock)
        try write(Self.site.replacingOccurrences(of: "{name}.jpg", with: "{name}-y.jpg"), proj.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: proj, environment: environment)
        #expect(FileManager.default.fileExists(atPath: proj.appendingPathComponent("pub/n/a.jpg").path), "\(said(build))")
        let written = String(decoding: (try? Data(contentsOf: proj.appendingPathComponent("derive.lock"))) ?? Data(), as: UTF8.self)
        let line = written.split(separator: "\n").first { $0.contains("\"left\":\"pub/n/a.jpg\"") }.map(String.init) ?? ""
        #expect(line.contains("\"why\":\"in doubt: ") && line.contains("far/n.yaml"), "\(written)\n\(said(build))")
        #expect(!said(build).contains("derive release pub/n/a.jpg"), "\(said(build))")
    }

    /// F11: a registry of more lines than it holds is said so, not "not Derive's lines".
    @Test func aRegistryOfTooManyLinesSaysSo() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try takeover(root, taker: "far/a/b/n.yaml")
        var lines = ["derive-projects 2"]
        for index in 0..<1070 {
            lines.append("{\"buckets\":{},\"lock\":\"/nowhere/\(index).lock\",\"manifest\":\"/nowhere/\(index).yaml\",\"state\":\"/nowhere/\(index)\"}")
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: root.appendingPathComponent("xdg/derive/states/projects"))
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("holds 1070 lines, more than the 1024"), "\(said(plan))")
        #expect(!said(plan).contains("does not hold Derive's lines"), "\(said(plan))")
    }

    /// `root/p` with derive.yaml and a copy of it, site.yaml, both writing `pub/n/a.jpg`; built,
    /// site.yaml with `--overwrite` (it installed the file); a folder `root/trash`.
    func twoInOneFolder(_ root: URL) throws -> (p: URL, environment: [String: String]) {
        let p = root.appendingPathComponent("p")
        try FileManager.default.createDirectory(at: p.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("trash"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: p.appendingPathComponent("src/a.jpg"))
        try write(Self.site, p.appendingPathComponent("derive.yaml"))
        try write(Self.site, p.appendingPathComponent("site.yaml"))
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        let taken = try CLI.run(["build", "-q", "--overwrite", "site.yaml"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        return (p, environment)
    }

    /// F5: a backup of site.yaml's lock in `../trash` never outranks site.yaml's live state, which
    /// records the very file, once derive.yaml cleaned.
    @Test func aBackupOfTheTakersLockNeverOutranksItsLiveState() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try twoInOneFolder(root)
        try FileManager.default.copyItem(at: p.appendingPathComponent("site.lock"), to: root.appendingPathComponent("trash/site.lock"))
        let clean = try CLI.run(["clean"], in: p, environment: environment)
        #expect(FileManager.default.fileExists(atPath: p.appendingPathComponent("pub/n/a.jpg").path), "\(said(clean))")
        let plan = try CLI.run(["plan"], in: p, environment: environment)
        let text = said(plan)
        #expect(plan.status == 1 && text.contains("pub/n/a.jpg is an output of ") && text.contains("/p/site.yaml"), "\(text)")
        #expect(!text.contains("trash"), "\(text)")
    }

    /// F6: site.yaml renamed site2.yaml and its lock moved away: the evidence is its build state,
    /// named as such, never a lock that is not there.
    @Test func aLockThatIsNotThereIsNeverNamedAsTheEvidence() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try twoInOneFolder(root)
        try FileManager.default.moveItem(at: p.appendingPathComponent("site.lock"), to: root.appendingPathComponent("trash/site.lock"))
        try FileManager.default.moveItem(at: p.appendingPathComponent("site.yaml"), to: p.appendingPathComponent("site2.yaml"))
        let plan = try CLI.run(["plan"], in: p, environment: environment)
        let text = said(plan)
        #expect(plan.status == 1 && text.contains("/p/site.yaml") && text.contains("its build state ") && text.contains(".derive/site"), "\(text)")
        #expect(!text.contains("site.lock records") && !text.contains("move its lock away"), "\(text)")
    }
}
