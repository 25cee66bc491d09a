import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// The no-op fast path (the witness) is only a shortcut: after every kind of change, either it
/// declines (and the full plan runs) or the full plan over the same tree has nothing to do and
/// `check` (from scratch) is clean. Runs both paths on the same tree.
// Each test's cases run one after another (`.serialized` on the test), the three tests side
// by side: as one serialized suite of 57 cases it was the last suite to finish, 110 s after
// all others, in a 716 s run on 2 cores.
@Suite(.ownThreads) struct WitnessEquivalenceTests {
    static let manifest = siteManifest + "index: site/index.json\n"

    static let changes = ["nothing", "touch a source", "edit a source", "add a source", "remove a source", "add a FIFO source",
                          "add a folder named like a source", "delete an output", "edit an output", "delete the lock",
                          "edit the lock", "delete the index", "edit the index", "move the index", "change a style",
                          "garble the state", "delete the state", "rewrite an output in place", "swap an output for a copy"]

    /// Applies one change to a settled, built project.
    static func apply(_ change: String, to project: Project) throws {
        switch change {
        case "nothing": break
        case "touch a source": _ = utimes(project.path("photos/a.jpg"), nil)
        case "edit a source": try project.write("photos/a.jpg", "A2")
        case "add a source": try project.write("photos/c.jpg", "C")
        case "remove a source": try project.remove("photos/b.jpg")
        case "add a FIFO source": _ = mkfifo(project.path("photos/pipe.jpg"), 0o644)
        case "add a folder named like a source": try project.write("photos/album.jpg/readme.txt", "x")
        case "delete an output": try project.remove("site/a.thumb.jpg")
        case "edit an output": try project.write("site/a.thumb.jpg", "mine")
        case "delete the lock": try project.remove("derive.lock")
        case "edit the lock": try project.write("derive.lock", (project.read("derive.lock") ?? "") + "\n")
        case "delete the index": try project.remove("site/index.json")
        case "edit the index": try project.write("site/index.json", (project.read("site/index.json") ?? "") + " ")
        case "move the index": try project.write("derive.yaml", siteManifest + "index: site/all.json\n")
        case "change a style": try project.write("derive.yaml", manifest.replacingOccurrences(of: "w_200", with: "w_201"))
        case "garble the state": try project.write(".derive/derive/state.sqlite", "garbage")
        case "delete the state": try project.remove(".derive/derive/state.sqlite")
        // Each output's stat is compared on its own witness line (issue 15): every field counts.
        // Same inode, size and mtime (put back); only its ctime moves.
        case "rewrite an output in place": try rewriteInPlace(project.path("site/a.thumb.jpg"))
        // Same size and mtime, another inode (and ctime): a copy renamed over it.
        case "swap an output for a copy":
            let path = project.path("site/a.thumb.jpg")
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[0] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: path + ".copy"))
            var info = stat()
            guard stat(path, &info) == 0 else { throw POSIXError(.ENOENT) }
            var times = [info.st_atim, info.st_mtim]
            guard utimensat(AT_FDCWD, path + ".copy", &times, 0) == 0, rename(path + ".copy", path) == 0 else { throw POSIXError(.EIO) }
        default: Issue.record("unknown change \(change)")
        }
    }

    /// Flips the file's first byte in place, then puts its mtime back: the stat differs only in ctime.
    static func rewriteInPlace(_ path: String) throws {
        var info = stat()
        let fd = open(path, O_RDWR)
        guard fd >= 0, fstat(fd, &info) == 0, info.st_size > 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, 0) == 1 else { throw POSIXError(.EIO) }
        byte ^= 0xFF
        var times = [info.st_atim, info.st_mtim]
        guard pwrite(fd, &byte, 1, 0) == 1, futimens(fd, &times) == 0 else { throw POSIXError(.EIO) }
        var after = stat()
        guard fstat(fd, &after) == 0, after.st_ino == info.st_ino, after.st_size == info.st_size,
              after.st_mtim.tv_sec == info.st_mtim.tv_sec, after.st_mtim.tv_nsec == info.st_mtim.tv_nsec else { throw POSIXError(.EIO) }
    }

    /// Changes after which a build succeeds with nothing left: it must leave a witness that holds
    /// at once (no second no-op, no waiting out the racy margin).
    static let rebuilt = ["nothing", "touch a source", "edit a source", "add a source", "remove a source", "delete an output",
                          "delete the lock", "delete the index", "change a style", "delete the state"]

    @Test(.serialized, arguments: changes)
    func aBuildLeavesAWitnessAtOnceThatAgreesWithThePlan(name: String) throws {
        let project = try Project(Self.manifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        project.settle()
        try project.build()
        try Self.apply(name, to: project)
        project.settle()   // the change itself settles; what the build writes next does not
        try project.build()
        let fast = try project.session().unchanged()
        let plan = try project.plan()
        let check = try project.check()
        let clean = plan.errors.isEmpty && plan.failures.isEmpty && !plan.hasChanges && plan.blockedControlFiles.isEmpty
        if fast != nil {
            #expect(clean, "\(name): the witness holds but the plan is \(plan.summary) \(plan.controlFiles) \(plan.errors) \(plan.failures)")
            #expect(check.problems.isEmpty, "\(name): the witness holds but check finds \(check.problems)")
        }
        if Self.rebuilt.contains(name) {
            #expect(fast != nil, "\(name): no witness right after the build")
            #expect(clean, "\(name): the build left \(plan.summary)")
        }
        // An output the build just wrote, edited at once (racy), is noticed.
        if fast != nil, project.exists("site/a.thumb.jpg") {
            let bytes = try #require(project.read("site/a.thumb.jpg"))
            try project.write("site/a.thumb.jpg", String(bytes.reversed()) == bytes ? bytes + "x" : String(bytes.reversed()))
            #expect(try project.session().unchanged() == nil, "\(name): an output edited right after the build")
        }
    }

    /// Changes after which a build started at once (the change within the racy margin, as when
    /// a user saves a file and builds) must still leave a witness that holds at once (issue 15):
    /// `rebuilt` but for the manifest's own edits (a racy manifest file leaves no witness).
    static let rebuiltAtOnce = rebuilt.filter { $0 != "change a style" }

    @Test(.serialized, arguments: changes)
    func aBuildStartedRightAfterAChangeLeavesAWitnessAtOnce(name: String) throws {
        let project = try Project(Self.manifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        try Self.apply(name, to: project)   // not settled: the build starts within the racy margin
        try project.build()
        let fast = try project.session().unchanged()
        // The slow path, from scratch on the same tree.
        let plan = try project.plan()
        let check = try project.check()
        let clean = plan.errors.isEmpty && plan.failures.isEmpty && !plan.hasChanges && plan.blockedControlFiles.isEmpty
        if fast != nil {
            #expect(clean, "\(name): the witness holds but the plan is \(plan.summary) \(plan.controlFiles) \(plan.errors) \(plan.failures)")
            #expect(check.problems.isEmpty, "\(name): the witness holds but check finds \(check.problems)")
        }
        if Self.rebuiltAtOnce.contains(name) {
            #expect(fast != nil, "\(name): no witness right after a build started at once")
            #expect(clean, "\(name): the build left \(plan.summary)")
        }
        // Then the witness never answers for a tree changed again at once: a source edited (same
        // size) or touched right after the build. Edited: the full plan rebuilds it.
        guard fast != nil, project.exists("photos/a.jpg") else { return }
        let bytes = try #require(project.read("photos/a.jpg"))
        try project.write("photos/a.jpg", String(bytes.reversed()) == bytes ? bytes + "x" : String(bytes.reversed()))
        #expect(try project.session().unchanged() == nil, "\(name): a source edited right after the build")
        let edited = try project.plan()
        if ["garble the state", "delete the state"].contains(name) {
            // Adopted from the lock unverified, its source now changed: plan says the refusal the
            // build makes (attack 37a's M3), not a rebuild the build then refuses.
            #expect(edited.errors.contains { $0.message.contains("cannot be proven Derive's") }, "\(name): \(edited.summary) \(edited.errors)")
        } else {
            #expect(edited.hasChanges, "\(name): a source edited right after the build")
        }
        // Without a state the outputs were adopted from the lock unverified; one whose source then
        // changed cannot be proven Derive's, so only --overwrite replaces it (issue 13's finding 1).
        try project.build(overwrite: ["garble the state", "delete the state"].contains(name))
        #expect(try project.session().unchanged() != nil, "\(name): no witness after the second build started at once")
        #expect(!(try project.plan().hasChanges))
    }

    @Test(.serialized, arguments: changes)
    func theWitnessNeverAnswersForAChangedTree(name: String) throws {
        let project = try Project(Self.manifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        try project.build()
        #expect(try project.session().unchanged() == 2, "\(name): the witness does not hold on a settled tree")
        try Self.apply(name, to: project)
        project.settle()
        let fast = try project.session().unchanged()
        // The slow path, from scratch on the same tree (a session that never looks at the witness).
        let plan = try project.plan()
        let check = try project.check()
        let clean = plan.errors.isEmpty && plan.failures.isEmpty && !plan.hasChanges && plan.blockedControlFiles.isEmpty
        if fast != nil {
            #expect(clean, "\(name): the witness holds but the plan is \(plan.summary) \(plan.controlFiles) \(plan.errors) \(plan.failures)")
            #expect(check.problems.isEmpty, "\(name): the witness holds but check finds \(check.problems)")
        }
        if name != "nothing" && name != "touch a source" {
            #expect(fast == nil, "\(name): the witness still holds")
        }
    }
}
