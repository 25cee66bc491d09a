import Foundation
import Testing
import TestSupport

/// Issue #9, attack 49a's F1, F2 and F4: a neighbour in a subfolder (`sub/n.yaml`, bucket
/// `../pub/n`) took the site's `pub/n/a.jpg` over with `build --overwrite`, rendering identical
/// bytes; its build state records that very file (device, inode, birth). The site then called it
/// its own (its lock line won the tie, or a "restored copy" was adopted) and its clean deleted it
/// when its own state was gone (F1), when the neighbour's manifest did not parse (F2), or when the
/// neighbour had re-pointed its bucket and not rebuilt (F4). The state that installed the file
/// claims it, whatever else says so: the site names it, exits 1, adopts nothing, cleans nothing.
@Suite(.ownThreads) struct InstalledElsewhereRound50Tests {
    static let site = "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n"
    static let neighbour = "version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: ../pub/n}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"

    /// The site built, then `sub/n.yaml` built with `--overwrite` over its file (identical bytes, a new file).
    func takenOverProject() throws -> URL {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data(Self.site.utf8).write(to: root.appendingPathComponent("site.yaml"))
        try Data(Self.neighbour.utf8).write(to: root.appendingPathComponent("sub/n.yaml"))
        let built = try CLI.run(["build", "-q", "site.yaml"], in: root)
        #expect(built.status == 0, "\(said(built))")
        let taken = try CLI.run(["build", "-q", "--overwrite", "n.yaml"], in: root.appendingPathComponent("sub"))
        #expect(taken.status == 0, "\(said(taken))")
        return root
    }

    /// Drops the state home's takeover notes of files below `root` (`TakeoverNotes`), under the
    /// lock builds take on its folder (tests running beside this one share the state home).
    static func forgetTakeoverNotes(below root: URL) throws {
        let folder = CLI.userStateHome.appendingPathComponent("derive/states")
        let descriptor = open(folder.path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        flock(descriptor, LOCK_EX)
        defer { flock(descriptor, LOCK_UN) }
        let notes = folder.appendingPathComponent("takeovers")
        guard let text = try? String(contentsOf: notes, encoding: .utf8) else { return }
        let real = root.resolvingSymlinksInPath().path
        let kept = text.split(separator: "\n").filter { !$0.contains(real + "/") && !$0.contains(root.path + "/") }
        try Data((kept.joined(separator: "\n") + "\n").utf8).write(to: notes, options: .atomic)
        chmod(notes.path, 0o600)
    }

    func identity(_ file: URL) throws -> UInt64? {
        try FileManager.default.attributesOfItem(atPath: file.path)[.systemFileNumber] as? UInt64
    }

    /// plan, check and build of the site name the file as the neighbour's and exit 1; clean
    /// leaves the very file in place.
    func expectRefusedAndKept(_ root: URL, environment: [String: String] = [:]) throws {
        let file = root.appendingPathComponent("pub/n/a.jpg")
        let bytes = try Data(contentsOf: file), inode = try identity(file)
        for arguments in [["plan", "site.yaml"], ["check", "site.yaml"], ["build", "site.yaml"]] {
            let result = try CLI.run(arguments, in: root, environment: environment)
            let text = said(result)
            #expect(result.status == 1, "\(arguments): \(text)")
            #expect(text.contains("pub/n/a.jpg is an output of ") && text.contains("sub/n.yaml"), "\(arguments): \(text)")
            #expect(!text.contains("restored copy") && !text.contains("adopted"), "\(arguments): \(text)")
        }
        let clean = try CLI.run(["clean", "site.yaml"], in: root, environment: environment)
        #expect(FileManager.default.fileExists(atPath: file.path), "clean deleted the neighbour's file: \(said(clean))")
        let after = try? Data(contentsOf: file), afterInode = try? identity(file)
        #expect(after == bytes && afterInode == inode, "the file was replaced: \(said(clean))")
    }

    /// F1: the site's state removed (`rm -rf .derive`), or the site run under another state home
    /// (CI without a cache: its state is not this user's), while the neighbour is live. Its lock
    /// line for the same bytes won the tie, and clean removed the neighbour's files.
    @Test(arguments: ["state-removed", "fresh-state-home"])
    func theSitesOwnLockLineNeverWinsAgainstTheStateThatInstalledTheFile(variant: String) throws {
        let root = try takenOverProject()
        defer { try? FileManager.default.removeItem(at: root) }
        var environment: [String: String] = [:]
        if variant == "state-removed" {
            try FileManager.default.removeItem(at: root.appendingPathComponent(".derive"))
        } else {
            let home = root.appendingPathComponent("other-state-home")
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            environment["XDG_STATE_HOME"] = home.path
        }
        try expectRefusedAndKept(root, environment: environment)
        // The neighbour still has its output, up to date.
        let neighbourPlan = try CLI.run(["plan", "--detailed-exitcode", "n.yaml"], in: root.appendingPathComponent("sub"))
        #expect(neighbourPlan.status == 0, "\(said(neighbourPlan))")
    }

    /// F2: the neighbour's manifest does not parse (mid-edit, emptied by an editor's save) while
    /// its lock and state remain: the identical bytes were a "restored copy", adopted, then cleaned.
    @Test(arguments: ["buckets: {{\n", "", "# wip\n"])
    func aFileANeighbourMidEditInstalledIsNeverARestoredCopy(text: String) throws {
        let root = try takenOverProject()
        defer { try? FileManager.default.removeItem(at: root) }
        try Data(text.utf8).write(to: root.appendingPathComponent("sub/n.yaml"))
        try expectRefusedAndKept(root)
    }

    /// F4: the neighbour re-pointed its bucket (`../pub/elsewhere`) and has not rebuilt: its
    /// state still records the file it installed in `pub/n`. The site adopted it as a restored
    /// copy, then the neighbour's build deleted it as its old copy. Now the site refuses it; the
    /// neighbour's build removes its own old copy, and the site builds its output again.
    @Test func aFileANeighbourRepointedAwayFromIsNeverTheSitesRestoredCopy() throws {
        let root = try takenOverProject()
        defer { try? FileManager.default.removeItem(at: root) }
        try Data(Self.neighbour.replacingOccurrences(of: "../pub/n", with: "../pub/elsewhere").utf8).write(to: root.appendingPathComponent("sub/n.yaml"))
        try expectRefusedAndKept(root)
        let moved = try CLI.run(["build", "n.yaml"], in: root.appendingPathComponent("sub"))
        #expect(moved.status == 0, "\(said(moved))")
        let rebuilt = try CLI.run(["build", "site.yaml"], in: root)
        #expect(rebuilt.status == 0, "\(said(rebuilt))")
        #expect(try CLI.run(["check", "site.yaml"], in: root).status == 0)
        #expect(try CLI.run(["check", "n.yaml"], in: root.appendingPathComponent("sub")).status == 0)
    }

    /// F4's end state, reached while the neighbour's state folder was away for a moment (nothing
    /// said who installed the file, so the site adopted it; then the state came back): two states
    /// record one file. The neighbour's build, its bucket moved, must not delete it as its old
    /// copy: the site's state records it as its own. Only the neighbour's record goes.
    @Test func anOldCopyAnotherStateRecordsAsItsOwnIsNeverDeleted() throws {
        let root = try takenOverProject()
        defer { try? FileManager.default.removeItem(at: root) }
        let sub = root.appendingPathComponent("sub")
        try Data(Self.neighbour.replacingOccurrences(of: "../pub/n", with: "../pub/elsewhere").utf8).write(to: sub.appendingPathComponent("n.yaml"))
        // Away outside the project: a state folder moved within reach (below `sub`) is found where
        // it lies by its identity (attack 52a's F1), and the site would not adopt at all.
        let away = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: away) }
        try FileManager.default.moveItem(at: sub.appendingPathComponent(".derive"), to: away.appendingPathComponent("derive-away"))
        // And the state home's note of the takeover lost (an older Derive took it over): with it,
        // the site refuses the file while the neighbour's state is away (TakerMovedFarRound56).
        try Self.forgetTakeoverNotes(below: root)
        let adopted = try CLI.run(["build", "site.yaml"], in: root)
        #expect(adopted.status == 0 && said(adopted).contains("adopted 1 restored cop"), "\(said(adopted))")
        try FileManager.default.moveItem(at: away.appendingPathComponent("derive-away"), to: sub.appendingPathComponent(".derive"))

        let file = root.appendingPathComponent("pub/n/a.jpg")
        let inode = try identity(file)
        let moved = try CLI.run(["build", "n.yaml"], in: sub)
        #expect(moved.status == 0, "\(said(moved))")
        let afterInode = try? identity(file)
        #expect(afterInode == inode, "the neighbour deleted the site's file: \(said(moved))")
        #expect(!said(moved).contains("deleted 1 old cop"), "\(said(moved))")
        #expect(try CLI.run(["check", "site.yaml"], in: root).status == 0)
        let neighbourCheck = try CLI.run(["check", "n.yaml"], in: sub)
        #expect(neighbourCheck.status == 0, "\(said(neighbourCheck))")
    }
}
