import Foundation
import Testing
import TestSupport

/// Issue #9's leftovers of attack 40a's A3 and A6. A3 without a state: `cp derive.yaml site.yaml`
/// in a project whose state folder is gone (a fresh clone, `rm -rf .derive`) left only derive.lock
/// to say whose the outputs are, and `derive build --verify site.yaml` adopted them (a renamed
/// rule or `derive clean site.yaml` then deleted them); the same with derive.yaml's lock at a
/// `lock:` name of its own. A neighbour's lock line naming the very file with its exact bytes
/// makes that neighbour the owner, as its state would.
@Suite(.ownThreads, .serialized) struct NeighbourOwnershipRound41Tests {
    typealias Site = SiteRound11Tests.Site

    static let manifest = FolderRecreatedRound40Tests.manifest()
    static let outputs = ["out/t/a1.jpg", "out/t/a2.jpg"]

    /// derive.yaml (with `extra` added) built, its state folder removed, and site.yaml a copy of
    /// it without `extra` (a `lock:` of derive.yaml's is not copied: the two would share it).
    func copiedWithoutState(extra: String = "") throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.manifest + extra)
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try site.freshClone()
        try Data(Self.manifest.utf8).write(to: site.url("site.yaml"))
        return site
    }

    func bytes(_ site: Site) throws -> [Data] { try Self.outputs.map { try Data(contentsOf: site.url($0)) } }

    /// plan, build and build --verify of site.yaml refuse each output, naming derive.yaml; then
    /// site.yaml's clean and a renamed rule leave derive.yaml's files as they were.
    /// `loads`: whether derive.yaml loads; one that does not is named as such, its files taken at
    /// its word with or without --overwrite (attack 44b's F3).
    func expectRefused(_ site: Site, lock: String, loads: Bool = true) throws {
        let before = try bytes(site)
        let manifest = site.root.resolvingSymlinksInPath().path + "/derive.yaml"
        func names(_ text: String, _ output: String) -> Bool {
            loads ? text.contains(output + " is an output of " + manifest + " (")
                : text.contains(output + " is an output (its lock ") && text.contains("of derive.yaml, another project whose manifest does not load")
        }
        for arguments in [["plan", "site.yaml"], ["build", "site.yaml"], ["build", "--verify", "site.yaml"]] + (loads ? [] : [["build", "--overwrite", "site.yaml"]]) {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(Self.outputs.allSatisfy { names(said(refused), $0) }, "\(arguments): names the owner: \(said(refused))")
            #expect(said(refused).contains(lock), "\(arguments): names the lock that says so: \(said(refused))")
            #expect(!said(refused).contains("--verify renders") && !said(refused).contains("was not written by Derive"), "\(arguments): \(said(refused))")
        }
        #expect(!site.exists("site.lock"), "site.yaml recorded derive.yaml's outputs: \(site.lock())")
        _ = try site.run(["clean", "site.yaml"])
        try Data(Self.manifest.replacingOccurrences(of: "name: t", with: "name: u").replacingOccurrences(of: "out/t/", with: "out/u/").utf8)
            .write(to: site.url("site.yaml"))
        _ = try site.run(["build", "-q", "site.yaml"])
        _ = try site.run(["clean", "site.yaml"])
        #expect(try bytes(site) == before, "derive.yaml's outputs were changed or deleted")
    }

    @Test func aCopiedManifestBesideAProjectWithoutStateNeverTakesOverItsOutputs() throws {
        let site = try copiedWithoutState()
        defer { site.remove() }
        try expectRefused(site, lock: "derive.lock")
        let check = try site.run(["check"])
        #expect(check.status == 0, "derive.yaml: \(said(check))")
        // --overwrite still takes them over (README's copied project).
        try Data(Self.manifest.utf8).write(to: site.url("site.yaml"))
        let taken = try site.run(["build", "--overwrite", "site.yaml"])
        #expect(taken.status == 0, "\(said(taken))")
        #expect(site.exists("site.lock"))
    }

    @Test func theNeighboursLockIsFoundAtItsOwnLockName() throws {
        let site = try copiedWithoutState(extra: "lock: meta/d.lock\n")
        defer { site.remove() }
        #expect(site.exists("meta/d.lock") && !site.exists("derive.lock"))
        try expectRefused(site, lock: "meta/d.lock")
    }

    /// A neighbour that no longer loads (a bad edit) keeps its lock's word: refused, not taken.
    @Test func aNeighbourThatDoesNotLoadStillOwnsWhatItsLockRecords() throws {
        let site = try copiedWithoutState()
        defer { site.remove() }
        try Data((Self.manifest + "  - {name: x, from: [\n").utf8).write(to: site.url("derive.yaml"))
        try expectRefused(site, lock: "derive.lock", loads: false)
    }

    /// The lock's word is for the very bytes: a file changed since is no neighbour's output.
    @Test func aFileNotHoldingTheNeighboursBytesIsNotClaimedByItsLock() throws {
        let site = try copiedWithoutState()
        defer { site.remove() }
        try Data("not the render".utf8).write(to: site.url("out/t/a1.jpg"))
        let plan = try site.run(["plan", "site.yaml"])
        #expect(plan.status == 1, "\(said(plan))")
        // Not the lock's: at most doubt, as derive.yaml's rule writes the name and nothing of site.yaml records a file there (attack 52a's F3).
        #expect(said(plan).contains("out/t/a1.jpg may be an output of ") && !said(plan).contains("out/t/a1.jpg is an output of"), "\(said(plan))")
        #expect(said(plan).contains("out/t/a2.jpg is an output of"), "\(said(plan))")
    }

    // MARK: A6 in validate

    /// `validate` gives the plan's refusal of an output at another manifest's lock; a source of
    /// another name is no one's lock and validates.
    @Test func validateRefusesAnOutputAtAnotherProjectsLockAsPlanDoes() throws {
        // sub/derive.yaml, a project of its own, inside site.yaml's bucket `top`.
        let (site, _, _) = try ForeignProjectRound41Tests.nested(to: "top/{name}.lock")
        defer { site.remove() }
        let refusal = "sub/derive.lock is the lock of sub/derive.yaml, another manifest; top/derive.lock may not be written over it"
        let validate = try site.run(["validate", "site.yaml"])
        #expect(validate.status == 1, "\(said(validate))")
        #expect(said(validate).contains(refusal), "\(said(validate))")
        let plan = try site.run(["plan", "site.yaml"])
        #expect(plan.status != 0 && said(plan).contains(refusal), "\(said(plan))")
        try FileManager.default.moveItem(at: site.url("s2/derive.jpg"), to: site.url("s2/other.jpg"))
        let valid = try site.run(["validate", "site.yaml"])
        #expect(valid.status == 0, "\(said(valid))")
    }

    // MARK: the index in a folder made by hand; `left` lines after a bucket folder's rename

    static func outA(index: Bool) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: outA}
        \(index ? "index: out/index.json\n" : "")derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_32
            to: out/t/{name}.jpg

        """
    }

    func inode(_ site: Site, _ path: String) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: site.url(path).path))?[.systemFileNumber] as? UInt64
    }

    /// outA moved away and made again by hand, holding a copy of the index with the very bytes
    /// Derive writes: the build renders the outputs again but the copy is not Derive's file, so
    /// `clean` leaves it (same bytes, same inode) and names it; before, the build recorded the
    /// copy's device and inode as Derive's and `clean` deleted it.
    @Test func aCopyOfTheIndexInAFolderMadeByHandIsLeftAndNamed() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.outA(index: true))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try FileManager.default.moveItem(at: site.url("outA"), to: site.url("outOld"))
        try FileManager.default.createDirectory(at: site.url("outA"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: site.url("outOld/index.json"), to: site.url("outA/index.json"))
        let copy = try Data(contentsOf: site.url("outA/index.json")), copyInode = inode(site, "outA/index.json")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let clean = try site.run(["clean"])
        #expect(site.exists("outA/index.json"), "clean deleted the user's copy: \(said(clean))")
        #expect((try? Data(contentsOf: site.url("outA/index.json"))) == copy && inode(site, "outA/index.json") == copyInode)
        #expect(said(clean).contains("outA/index.json") && said(clean).contains("left in place"), "\(said(clean))")
        #expect(!site.exists("outA/t/a1.jpg") && !site.exists("outA/t/a2.jpg"), "Derive's outputs stay: \(said(clean))")
    }

    /// A `left` line (a file known only from the lock, its source gone) follows its bucket's
    /// folder renamed (`mv outA userB`, `path: userB`): the lock names the file where it is.
    @Test func aLeftLineFollowsItsRenamedBucketFolder() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.outA(index: false))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try site.freshClone()
        try FileManager.default.removeItem(at: site.url("src/a2.jpg"))
        let left = try site.run(["build"])
        #expect(left.status == 0 && site.lock().contains(#""left":"out/t/a2.jpg""#) && site.lock().contains(#""file":"outA/t/a2.jpg""#), "\(said(left)) \(site.lock())")
        try FileManager.default.moveItem(at: site.url("outA"), to: site.url("userB"))
        try site.write(Self.outA(index: false).replacingOccurrences(of: "path: outA", with: "path: userB"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.lock().contains(#""file":"userB/t/a2.jpg""#) && !site.lock().contains("outA/"), "\(site.lock())")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }
}
