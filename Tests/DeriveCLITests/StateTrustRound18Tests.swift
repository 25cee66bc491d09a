import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 18 on where Derive keeps its state and tokens, and who owns those places (issue 9:
/// S12, S10, S1b, S13, S6), end to end through the binary. Another user is `nobody` (65534):
/// the tests that need one run as root (CI) and act as nobody through setpriv(1) (`Nobody`,
/// `runAsNobody`, `giveToNobody` in ProjectHelpers.swift).
@Suite(.ownThreads, .serialized) struct StateTrustRound18Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// A folder of nobody's (0755).
    func nobodysFolder() throws -> URL {
        let folder = try CLI.temporaryFolder()
        giveToNobody(folder)
        return folder
    }

    func owner(_ path: String) -> uid_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_uid : nil
    }

    func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    /// The user's unique `out/README.md` (Derive never wrote it).
    func userReadme(_ project: Project) throws -> Data {
        let notes = Data("my unique notes, not Derive's\n".utf8)
        try notes.write(to: project.url("out/README.md"))
        return notes
    }

    /// One legacy output record (no device and inode, as Derive 0.13 wrote) for `out/README.md`
    /// with its digest: the step attack 18's S1, S1b and S13 use to have Derive delete it.
    static func forgeReadmeRow(_ db: Database, _ notes: Data) throws {
        try db.execute(sql: """
            INSERT INTO outputs (path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder, actionKey,
                                 acl, outputDigest, size, width, height, format, builtAt, folder)
            SELECT 'out/README.md', rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies,
                   encoder, actionKey, acl, ?, ?, width, height, format, builtAt, folder FROM outputs LIMIT 1
            """, arguments: [ContentDigests.digest(notes), notes.count])
    }

    /// Any edit of the manifest (a no-op build is answered by the witness, which opens no state).
    func restyle(_ project: Project, width: Int) throws {
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: width))
    }

    // MARK: S12: the folder of tokens is the user's, reached without following a link

    /// Attack 18's S12: root runs derive with nobody's HOME (`sudo -E`); nobody made
    /// `~/.local/state/derive/states` a link to a folder of root's (standing for /etc/cron.d).
    /// Before the fix a root-owned 0600 file was written there.
    @Test(.enabled(if: Nobody.canActAs)) func rootWithAUsersHomeWritesNothingThroughTheirLink() throws {
        let home = try nobodysFolder(), rootsFolder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home); try? FileManager.default.removeItem(at: rootsFolder) }
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".local/state/derive"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: home.appendingPathComponent(".local/state/derive/states").path, withDestinationPath: rootsFolder.path)
        giveToNobody(home)
        let project = try Project(index: false)
        defer { project.remove() }
        let build = try CLI.run(["build"], in: project.root, environment: ["HOME": home.path, "XDG_STATE_HOME": ""])
        #expect(build.status == 0, "\(text(build))")
        let written = (try? FileManager.default.contentsOfDirectory(atPath: rootsFolder.path)) ?? []
        #expect(written.isEmpty, "root wrote \(written) into the folder nobody's link named: \(text(build))")
        #expect(build.stderr.contains("build state's token is not kept") && build.stderr.contains("belongs to nobody"), "\(build.stderr)")
        #expect(!build.stderr.contains("NSCocoaErrorDomain"), "\(build.stderr)")
    }

    /// S12's injection: a project path holding newlines (`inj⏎* * * * * root evil.sh⏎#`).
    /// Before the fix the token file copied it raw: four lines, one of them a cron line.
    @Test func aProjectPathWithNewlinesMakesNoLineOfItsOwnInTheTokenFile() throws {
        let outer = try CLI.temporaryFolder(), stateHome = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer); try? FileManager.default.removeItem(at: stateHome) }
        let project = try Project(index: false)
        let root = outer.appendingPathComponent("inj\n* * * * * root evil.sh\n#")
        #expect(rename(project.root.path, root.path) == 0)
        let build = try CLI.run(["build", "-q"], in: root, environment: ["XDG_STATE_HOME": stateHome.path])
        #expect(build.status == 0, "\(text(build))")
        let folder = stateHome.appendingPathComponent("derive/states")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        // The secret's file, and beside it the lock this build wrote (`LockProvenance`, `.lock`:
        // two lines and one per bucket folder) and the state folders it made (`StateFolderMade`,
        // `.folders`: `.derive` and `.derive/derive`), and the registry of built projects
        // (`projects`: its header and one JSON line, the path escaped).
        #expect(files.filter { !$0.hasSuffix(".lock") && !$0.hasSuffix(".folders") && $0 != "projects" }.count == 1, "\(files)")
        for file in files {
            let content = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            let lines = content.split(separator: "\n")
            let expected = file.hasSuffix(".lock") ? 4 : 2
            #expect(lines.count == expected && !lines.contains { $0.hasPrefix("* * * * *") }, "the path made lines of its own: \(content)")
            #expect(content.contains("inj\\n* * * * * root evil.sh\\n#"), "the path is not kept escaped: \(content)")
            #expect(mode(folder.appendingPathComponent(file).path) == 0o600)
        }
        // Still the user's own state: the next build after an edit trusts it (no "moved it to").
        try Data(Project.manifest(outPath: "out", index: false, width: 40).utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let again = try CLI.run(["build"], in: root, environment: ["XDG_STATE_HOME": stateHome.path])
        #expect(again.status == 0 && !text(again).contains("moved it to"), "\(text(again))")
    }

    // MARK: S10: root creates nothing in another user's home or project

    /// Attack 18's S10: `sudo -E derive build` with nobody's HOME (no `~/.local` yet). Before the
    /// fix `~/.local`, `~/.local/state`, … were made root's 0700, locking nobody out of them.
    @Test(.enabled(if: Nobody.canActAs)) func rootWithAUsersHomeCreatesNoFolderInIt() throws {
        let home = try nobodysFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let project = try Project(index: false)
        defer { project.remove() }
        let build = try CLI.run(["build"], in: project.root, environment: ["HOME": home.path, "XDG_STATE_HOME": ""])
        #expect(build.status == 0, "\(text(build))")
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent(".local").path), "root created ~/.local in nobody's home: \(text(build))")
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent(".cache").path), "root created ~/.cache in nobody's home: \(text(build))")
        #expect(build.stderr.contains("Derive creates nothing in another user's home"), "\(build.stderr)")
    }

    /// S10: root's first build in nobody's project. Before the fix it made `.derive/` root's and
    /// every later build by nobody failed with an `NSCocoaErrorDomain Code=512` dump. Now root is
    /// refused plainly, creates nothing, and nobody's own build works.
    @Test(.enabled(if: Nobody.canActAs)) func rootsBuildInAUsersProjectDoesNotLockThemOut() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let stateHome = try nobodysFolder()
        defer { try? FileManager.default.removeItem(at: stateHome) }
        giveToNobody(project.root)
        // Read-only commands with no state folder trust nothing there: root's CI in a checkout another uid owns.
        let check = try project.run(["check"])
        #expect(!check.stderr.contains("not safe") && !project.exists(".derive"), "\(text(check))")
        let asRoot = try project.run(["build"])
        #expect(asRoot.status != 0, "\(text(asRoot))")
        #expect(asRoot.stderr.contains("belongs to nobody") && !asRoot.stderr.contains("NSCocoaErrorDomain"), "\(asRoot.stderr)")
        #expect(!project.exists(".derive"), "root made .derive in nobody's project")
        let mine = try runAsNobody(["build"], in: project.root, stateHome: stateHome)
        #expect(mine.status == 0, "nobody is locked out of their own project: \(text(mine))")
        #expect(owner(project.url(".derive/derive/state.sqlite").path) == Nobody.uid)
    }

    /// S10: a `.derive/` an older derive made as root in nobody's project: nobody's build says so
    /// plainly, naming the fix (before: `Error Domain=NSCocoaErrorDomain Code=512 "(null)"`).
    @Test(.enabled(if: Nobody.canActAs)) func aStateFolderRootLeftInAUsersProjectIsSaidPlainly() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let stateHome = try nobodysFolder()
        defer { try? FileManager.default.removeItem(at: stateHome) }
        giveToNobody(project.root)
        // As an older derive run as root left it: root's folders (0755) and lock.
        try FileManager.default.createDirectory(at: project.url(".derive/derive"), withIntermediateDirectories: true)
        try Data("pid 1 on host, since 2026-01-01T00:00:00Z\n".utf8).write(to: project.url(".derive/derive/build.lock"))
        let build = try runAsNobody(["build"], in: project.root, stateHome: stateHome)
        #expect(build.status != 0, "\(text(build))")
        #expect(!build.stderr.contains("NSCocoaErrorDomain") && !build.stderr.contains("UserInfo"), "a Foundation dump: \(build.stderr)")
        #expect(build.stderr.contains("belongs to root") && build.stderr.contains("sudo rm -rf"), "\(build.stderr)")
    }

    /// A build lock that cannot be opened is said plainly (before: a Cocoa error dump).
    @Test(.enabled(if: Nobody.canActAs)) func anUnopenableBuildLockIsSaidPlainly() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let stateHome = try nobodysFolder()
        defer { try? FileManager.default.removeItem(at: stateHome) }
        giveToNobody(project.root)
        #expect(try runAsNobody(["build", "-q"], in: project.root, stateHome: stateHome).status == 0)
        #expect(chmod(project.url(".derive/derive/build.lock").path, 0) == 0)
        try restyle(project, width: 40)
        let build = try runAsNobody(["build"], in: project.root, stateHome: stateHome)
        #expect(build.status != 0, "\(text(build))")
        #expect(build.stderr.contains("cannot open") && build.stderr.contains("build.lock: permission denied"), "\(build.stderr)")
        #expect(!build.stderr.contains("NSCocoaErrorDomain"), "\(build.stderr)")
    }

    // MARK: S1b: a state folder or state another user owns is refused

    /// Attack 18's S1b: `state:` names a folder nobody made first (under /tmp). Before the fix
    /// root's state went into nobody's folder, where nobody could replace it.
    @Test(.enabled(if: Nobody.canActAs)) func aStateFolderAnotherUserMadeIsRefused() throws {
        let shared = try nobodysFolder()
        defer { try? FileManager.default.removeItem(at: shared) }
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", "state: \(shared.path)\n" + Project.manifest(outPath: "out", index: false))
        let build = try project.run(["build"])
        #expect(build.status != 0, "root trusted a state folder of nobody's: \(text(build))")
        #expect(build.stderr.contains(shared.path) && build.stderr.contains("belongs to nobody"), "\(build.stderr)")
        #expect(!FileManager.default.fileExists(atPath: shared.appendingPathComponent("state.sqlite").path))
        // Below a folder of nobody's (nobody can rename root's folder away): refused too.
        try project.write("derive.yaml", "state: \(shared.path)/mine\n" + Project.manifest(outPath: "out", index: false))
        let below = try project.run(["build"])
        #expect(below.status != 0 && below.stderr.contains("belongs to nobody"), "\(text(below))")
    }

    /// S1b with the state itself replaced: nobody (who can read the state, and could write the
    /// folder) put in a copy of root's own state (its token with it) holding one forged row for
    /// root's `out/README.md`. Before the fix the next build deleted it.
    @Test(.enabled(if: Nobody.canActAs)) func aStateFileAnotherUserOwnsIsRefusedAndDeletesNothing() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let notes = try userReadme(project)
        let database = project.url(".derive/derive/state.sqlite").path
        let forged = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: forged) }
        try FileManager.default.copyItem(atPath: database, toPath: forged.appendingPathComponent("s.sqlite").path)
        try DatabaseQueue(path: forged.appendingPathComponent("s.sqlite").path, configuration: .patientTest).write { db in try Self.forgeReadmeRow(db, notes) }
        #expect(lchown(forged.appendingPathComponent("s.sqlite").path, Nobody.uid, Nobody.uid) == 0)
        #expect(rename(forged.appendingPathComponent("s.sqlite").path, database) == 0)
        try restyle(project, width: 40)
        let build = try project.run(["build"])
        #expect((try? Data(contentsOf: project.url("out/README.md"))) == notes, "root's out/README.md was deleted on nobody's state: \(text(build))")
        #expect(build.status != 0 && build.stderr.contains("state.sqlite belongs to nobody"), "\(text(build))")
    }

    /// The state folder Derive makes is 0700 and its database 0600: no one else reads the token.
    @Test func theStateFolderIsPrivate() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(mode(project.url(".derive").path) == 0o700)
        #expect(mode(project.url(".derive/derive").path) == 0o700)
        #expect(mode(project.url(".derive/derive/state.sqlite").path) == 0o600)
        // A group- or world-writable state folder is refused, naming the fix.
        #expect(chmod(project.url(".derive/derive").path, 0o777) == 0)
        try restyle(project, width: 40)
        let build = try project.run(["build"])
        #expect(build.status != 0 && build.stderr.contains("may be written by other users"), "\(text(build))")
        #expect(chmod(project.url(".derive/derive").path, 0o700) == 0)
        #expect(try project.run(["build", "-q"]).status == 0)
    }

    // MARK: S13: a planted hot journal

    /// A hot journal (`state.sqlite-journal`) whose page images carry the project's state with one
    /// forged row for `out/README.md`, made as attack 18's S13 did: the state copied, the row added,
    /// then a transaction deleting every output left open while its journal is copied.
    func hotJournal(_ project: Project, forging notes: Data) throws -> Data {
        let work = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: work) }
        let copy = work.appendingPathComponent("state.sqlite").path
        try FileManager.default.copyItem(atPath: project.url(".derive/derive/state.sqlite").path, toPath: copy)
        let queue = try DatabaseQueue(path: copy, configuration: .patientTest)
        try queue.write { db in try Self.forgeReadmeRow(db, notes) }
        var journal = Data()
        try queue.inDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "DELETE FROM outputs")
            try db.execute(sql: "REINDEX outputs")
            journal = try Data(contentsOf: URL(fileURLWithPath: copy + "-journal"))
            try db.execute(sql: "ROLLBACK")
        }
        return journal
    }

    /// Attack 18's S13 by another user: nobody planted the hot journal beside root's own state.
    /// Before the fix SQLite replayed it and the build deleted root's `out/README.md`.
    @Test(.enabled(if: Nobody.canActAs)) func aHotJournalAnotherUserPlantedIsNotReplayed() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        // A state home of its own: in the shared one, the registry names this project to every
        // other test's derive, and one reading registered states (a read-only open, which SQLite
        // lets roll a hot journal back where it can write the file, as root can) raced the
        // planting in loaded full runs (s56, twice).
        let home = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let environment = ["XDG_STATE_HOME": home.path]
        #expect(try CLI.run(["build", "-q"], in: project.root, environment: environment).status == 0)
        let notes = try userReadme(project)
        let journal = project.url(".derive/derive/state.sqlite-journal")
        try hotJournal(project, forging: notes).write(to: journal)
        #expect(lchown(journal.path, Nobody.uid, Nobody.uid) == 0)
        try restyle(project, width: 40)
        let build = try CLI.run(["build"], in: project.root, environment: environment)
        #expect((try? Data(contentsOf: project.url("out/README.md"))) == notes, "a planted journal was replayed: \(text(build))")
        #expect(build.status != 0 && build.stderr.contains("state.sqlite-journal belongs to nobody"), "\(text(build))")
    }

    /// S13 as the user's own file (a tarball or a sync tool carried the journal): the owner check
    /// cannot tell it from the user's; fix-build-18's seals (rows keyed by a secret only in the
    /// user's token file) make its forged row untrusted.
    @Test func aHotJournalThatCameWithTheProjectDeletesNothing() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let notes = try userReadme(project)
        try hotJournal(project, forging: notes).write(to: project.url(".derive/derive/state.sqlite-journal"))
        try restyle(project, width: 40)
        let build = try project.run(["build"])
        #expect((try? Data(contentsOf: project.url("out/README.md"))) == notes, "a planted journal was replayed: \(text(build))")
    }

    // MARK: S6: only states Derive moved aside are pruned

    /// Attack 18's S6: a user's text file named `state.sqlite.foreign-1-1` in the state folder;
    /// four builds that each move the state aside (no writable home: the token cannot be kept).
    /// Before the fix it was deleted by name with the older moved-aside states.
    @Test func aUsersFileNamedLikeAMovedAsideStateIsNotPruned() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let noHome = ["XDG_STATE_HOME": "/proc/derive-no-such-folder"]
        #expect(try CLI.run(["build", "-q"], in: project.root, environment: noHome).status == 0)
        let mine = Data("USER NOTES (not sqlite)\n".utf8)
        let named = project.url(".derive/derive/state.sqlite.foreign-1-1")
        try mine.write(to: named)
        var said = ""
        for width in 33...37 {
            // Committed: each build moves the state aside, so the restyle renders over the outputs on git's proof.
            try GitProofCLITests.commitAll(project.root)
            try restyle(project, width: width)
            let build = try CLI.run(["build"], in: project.root, environment: noHome)
            #expect(build.status == 0, "\(text(build))")
            said += text(build)
        }
        #expect((try? Data(contentsOf: named)) == mine, "the user's file was pruned by its name: \(said)")
        let aside = ((try? FileManager.default.contentsOfDirectory(atPath: project.url(".derive/derive").path)) ?? [])
            .filter { $0.hasPrefix("state.sqlite.foreign-") && !$0.contains("-journal") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
        #expect(aside.count == StateAside.keep + 1, "Derive's own moved-aside states are not pruned to the newest \(StateAside.keep): \(aside)")
        #expect(said.contains("an older build state Derive moved aside"), "the pruning is not said: \(said)")
    }
}
