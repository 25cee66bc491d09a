import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Testing
import TestSupport
import Builder
import Confinement
import Planner

/// Issue 15: what opening the build state and reading its stat cache cost a plan of one touched
/// or edited source, and that the cheaper ways answer exactly as the full ones.
@Suite(.ownThreads, .serialized) struct StateIntegrityTests {
    // MARK: The stat cache's seals, verified on first use

    /// A stat record of `name` below `root`, hashed 10 s after its stat (not racy).
    static func fileRecord(_ root: String, _ name: String, size: Int64 = 10) -> FileRecord {
        FileRecord(path: root + "/src/" + name, size: size, mtime: 1_000_000_000_000, inode: 7, digest: String(repeating: "a", count: 64),
                   format: "jpg", recorded: 1_010_000_000_000, ctime: 1_000_000_000_000, width: 640, height: 480)
    }

    static func stat(of record: FileRecord) -> FileStat {
        FileStat(size: record.size, mtime: record.mtime, inode: UInt64(bitPattern: record.inode), ctime: record.ctime)
    }

    /// The stat cache read whole with every seal verified (`allFiles`, what a plan did) and read
    /// with each seal verified on first use (`fileRows`) answer alike for every row: sealed as
    /// Derive wrote it, a value changed by another program, its seal removed, a row planted
    /// without one, a seal of the wrong length, another row's seal copied in, text in a number
    /// column (which must not stop the decoding either). Only the rows asked for are verified,
    /// each once, and a row whose stat does not match is never verified at all.
    @Test func statRowsVerifiedOnFirstUseAnswerAsRowsVerifiedWhenRead() throws {
        let (root, folder, owner) = try StateSealTests.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let names = (0..<8).map { "f\($0).jpg" }
        try StateStore(folder: folder, owner: owner).saveFiles(names.map { Self.fileRecord(root, $0) })
        let raw = try DatabaseQueue(path: folder + "/" + StateStore.fileName, configuration: .patientTest)
        try raw.write { db in
            func path(_ index: Int) -> String { root + "/src/f\(index).jpg" }
            try db.execute(sql: "UPDATE files SET digest = ? WHERE path = ?", arguments: [String(repeating: "b", count: 64), path(1)])
            try db.execute(sql: "UPDATE files SET seal = NULL WHERE path = ?", arguments: [path(2)])
            try db.execute(sql: "UPDATE files SET seal = X'00' WHERE path = ?", arguments: [path(3)])
            try db.execute(sql: "UPDATE files SET size = 'ten' WHERE path = ?", arguments: [path(4)])
            try db.execute(sql: "UPDATE files SET seal = (SELECT seal FROM files WHERE path = ?) WHERE path = ?", arguments: [path(0), path(5)])
            try Self.fileRecord(root, "planted.jpg").insert(db)
        }
        try raw.close()
        let store = try StateStore(folder: folder, owner: owner)
        let seals = try #require(store.seals)
        let disk = MemoryDisk()
        let eager = ContentDigests(disk: disk, cache: try store.allFiles())
        let before = seals.rowsVerified(in: "files")
        let (rows, check) = try store.fileRows()
        let lazy = ContentDigests(disk: disk, rows: rows, check: check)
        // Read: only the rows that cannot be decoded as a record first (no seal: f2 and the planted
        // row; text for a number: f4) are verified now; a seal of the wrong length (f3) verifies nothing.
        #expect(seals.rowsVerified(in: "files") - before == 3)
        let paths = (names + ["planted.jpg", "absent.jpg"]).map { root + "/src/" + $0 }
        let asked = seals.rowsVerified(in: "files")
        for path in paths {
            let wanted = Self.stat(of: Self.fileRecord(root, (path as NSString).lastPathComponent))
            #expect(lazy.cached(path, stat: wanted) == eager.cached(path, stat: wanted), "\(path)")
            #expect(lazy.record(for: path) == eager.record(for: path), "\(path)")
            #expect(lazy.stat(for: path) == eager.stat(for: path), "\(path)")
        }
        // Trusted: the rows Derive wrote and nobody changed since.
        let trusted = paths.filter { eager.record(for: $0) != nil }.map { ($0 as NSString).lastPathComponent }
        #expect(trusted == ["f0.jpg", "f6.jpg", "f7.jpg"])
        // Each row kept with its seal to verify (f0, f1, f5, f6, f7) verified once, however often asked.
        #expect(seals.rowsVerified(in: "files") - asked == 5)
        // A row whose stat does not match answers nothing and is not verified.
        let (fresh, freshCheck) = try store.fileRows()
        let other = ContentDigests(disk: disk, rows: fresh, check: freshCheck)
        let start = seals.rowsVerified(in: "files")
        var moved = Self.stat(of: Self.fileRecord(root, "f0.jpg"))
        moved.mtime += 1
        #expect(other.cached(root + "/src/f0.jpg", stat: moved) == nil)
        #expect(seals.rowsVerified(in: "files") == start)
    }

    /// Issue 15: a cache that took some stat rows up front (an edited source's plan: its inputs')
    /// and reads any other by key on its first use, or all the others at once (`readRest`, the
    /// full plan), answers as the cache of every row for every path, whatever the rows hold
    /// (forged, unsealed, a seal of the wrong length or another row's, text for a number,
    /// planted) and whichever comes first: a question, a file the build remembers, the rest read.
    @Test(arguments: ["asked first", "rest read first", "remembered first"])
    func statRowsReadInPartAnswerAsRowsReadWhole(order: String) throws {
        let (root, folder, owner) = try StateSealTests.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let names = (0..<8).map { "f\($0).jpg" }
        try StateStore(folder: folder, owner: owner).saveFiles(names.map { Self.fileRecord(root, $0) })
        let raw = try DatabaseQueue(path: folder + "/" + StateStore.fileName, configuration: .patientTest)
        try raw.write { db in
            func path(_ index: Int) -> String { root + "/src/f\(index).jpg" }
            try db.execute(sql: "UPDATE files SET digest = ? WHERE path = ?", arguments: [String(repeating: "b", count: 64), path(1)])
            try db.execute(sql: "UPDATE files SET seal = NULL WHERE path = ?", arguments: [path(2)])
            try db.execute(sql: "UPDATE files SET seal = X'00' WHERE path = ?", arguments: [path(3)])
            try db.execute(sql: "UPDATE files SET size = 'ten' WHERE path = ?", arguments: [path(4)])
            try db.execute(sql: "UPDATE files SET seal = (SELECT seal FROM files WHERE path = ?) WHERE path = ?", arguments: [path(0), path(5)])
            try Self.fileRecord(root, "planted.jpg").insert(db)
        }
        try raw.close()
        let store = try StateStore(folder: folder, owner: owner)
        let disk = MemoryDisk()
        let whole = try store.fileRows()
        let eager = ContentDigests(disk: disk, rows: whole.rows, check: whole.check)
        // Up front: f0 (sound), f1 (forged), f2 (unsealed); every other row later.
        let upFront = PathSet(["f0.jpg", "f1.jpg", "f2.jpg"].map { root + "/src/" + $0 })
        let part = try store.fileRows(including: { upFront.contains($0) })
        #expect(part.rows.count <= 3)
        let lazy = ContentDigests(disk: disk, rows: part.rows, check: part.check,
                                  rest: ContentDigests.RowSource(byKey: { try store.fileRow(at: $0) },
                                                                 rest: { including in try store.fileRows(including: including).rows }))
        let paths = (names + ["planted.jpg", "absent.jpg"]).map { root + "/src/" + $0 }
        // A file the build wrote (f6) and one no row names (absent) remembered in both.
        let written = FileStat(size: 99, mtime: 5, inode: 9, ctime: 5)
        let content = ContentDigests.Content(digest: String(repeating: "e", count: 64), format: "png", width: 3, height: 4)
        func remember() {
            for cache in [eager, lazy] { for path in [paths[6], paths[9]] { cache.remember(path, stat: written, content: content) } }
        }
        switch order {
        case "rest read first": try lazy.readRest()
        case "remembered first": remember()
        default: break
        }
        func compare(_ when: String) {
            for path in paths {
                for wanted in [Self.stat(of: Self.fileRecord(root, (path as NSString).lastPathComponent)), written] {
                    #expect(lazy.cached(path, stat: wanted) == eager.cached(path, stat: wanted), "\(order), \(when): \(path)")
                }
                #expect(lazy.record(for: path) == eager.record(for: path), "\(order), \(when): \(path)")
                #expect(lazy.stat(for: path) == eager.stat(for: path), "\(order), \(when): \(path)")
            }
        }
        compare("first")
        if order != "remembered first" { remember() }
        try lazy.readRest()
        compare("after the rest")
        #expect(Set(lazy.takePending().map(\.path)) == Set(eager.takePending().map(\.path)))
        // Every row taken once: the eight, the planted one.
        #expect(lazy.rowsTaken <= whole.rows.count && eager.rowsTaken == whole.rows.count)
        #expect(paths.filter { eager.record(for: $0) != nil }.map { ($0 as NSString).lastPathComponent } == ["f0.jpg", "f6.jpg", "f7.jpg", "absent.jpg"])
    }

    // MARK: The integrity check on opening

    typealias Tree = IncrementalPlanEquivalenceTests.Tree

    static func stateFile(_ tree: Tree) throws -> String {
        try tree.project.session().manifest.stateFolder + "/" + StateStore.fileName
    }

    /// A build of one touched or one edited source opens the state its witness vouches for
    /// without reading every page of it (`PRAGMA quick_check`); the same plan made in full, and
    /// a state changed since the witness (another program's write, a journal beside it), are
    /// checked. The plans agree.
    @Test func aStateTheWitnessVouchesForIsOpenedWithoutItsCheck() throws {
        let tree = try IncrementalPlanEquivalenceTests.builtTree { _ = utimes($0.project.path("photos/a.jpg"), nil) }
        // Touched: the answer "up to date", then the refresh under the lock writes the stat cache.
        let touched = try tree.project.session()
        #expect(touched.unchanged() == 6)
        touched.refreshWitness()
        #expect(try touched.store().integrityChecked == false)
        // Edited: the plan, read-only (`derive plan`) and for a build.
        tree.project.settle()
        try tree.project.write("photos/a.jpg", "edited")
        tree.project.settle()
        let planned = try tree.project.session()
        #expect(try planned.readOnlyPlan().work.count == 2)
        #expect(planned.lastPlanPath == .editedSources(1))
        #expect(try planned.store().integrityChecked == false)
        let built = try tree.project.session()
        let outcome = try built.build(options: BuildOptions(jobs: 1, quiet: true)) { tree.project.renderer }
        #expect(built.lastPlanPath == .editedSources(1))
        #expect(try built.store().integrityChecked == false)
        #expect(outcome.plan.work.count == 2)
        // Without the incremental paths the same edit plans in full, and checks.
        tree.project.settle()
        try tree.project.write("photos/a.jpg", "edited again")
        tree.project.settle()
        let off = try tree.project.session()
        off.incrementalPlans = false
        let full = try off.plan()
        #expect(off.lastPlanPath == .full)
        #expect(try off.store().integrityChecked == true)
        let on = try tree.project.session()
        #expect(IncrementalPlanEquivalenceTests.describe(try on.plan()) == IncrementalPlanEquivalenceTests.describe(full))
        #expect(try on.store().integrityChecked == false)
    }

    /// What lets a state skip its check is only the very file the witness vouches for: once
    /// another program wrote to it (its stat moved), or a journal lies beside it (a write SQLite
    /// did not finish), it is checked; a state truncated after the witness is found corrupt and
    /// moved aside as before, and the build rebuilds it from the lock and the outputs.
    @Test(arguments: ["write", "journal", "truncate"]) func aStateChangedSinceItsWitnessIsChecked(how: String) throws {
        let tree = try IncrementalPlanEquivalenceTests.builtTree { try $0.project.write("photos/a.jpg", "edited") }
        let state = try Self.stateFile(tree)
        switch how {
        case "write":
            let raw = try DatabaseQueue(path: state, configuration: .patientTest)
            // A row no plan reads (unsealed, so ignored): only the file moved.
            try raw.write { db in try db.execute(sql: "INSERT INTO sourceColours (digest, colour) VALUES ('planted', '#000000')") }
            try raw.close()
        case "journal":
            #expect(FileManager.default.createFile(atPath: state + "-journal", contents: Data()))
        default:
            // With the state lost, the edited source's outputs are known only from lock lines of
            // another recipe: replaced only when git proves them (GitProof), so commit the tree.
            let git = GitProofTests()
            #expect(try git.git(["init", "-q"], in: tree.project.root) == 0)
            #expect(try git.git(["add", "-A"], in: tree.project.root) == 0)
            #expect(try git.git(["commit", "-q", "-m", "built"], in: tree.project.root) == 0)
            let size = try #require(try FileManager.default.attributesOfItem(atPath: state)[.size] as? Int)
            #expect(truncate(state, off_t(size / 2)) == 0)
        }
        let session = try tree.project.session()
        _ = session.unchanged()
        let vouched = session.witnessCheck().vouchedDatabase
        #expect(vouched == nil || how == "journal", "\(how): the witness still vouches for the database")
        let outcome = try session.build(options: BuildOptions(jobs: 1, quiet: true)) { tree.project.renderer }
        let store = try session.store()
        #expect(store.integrityChecked, "\(how): opened unchecked")
        if how == "truncate" {
            #expect(store.movedAsideReason == "corrupt", "\(how): \(store.movedAsideReason ?? "not moved aside")")
        }
        #expect(outcome.plan.errors.isEmpty, "\(how): \(outcome.plan.errors)")
        tree.project.settle()
        try IncrementalPlanEquivalenceTests.compare(tree, step: 0, change: how + ", built")
    }

    /// The stat a witness vouches for must be the database's exactly: a nanosecond of mtime or
    /// ctime, a byte of size or another inode is another file.
    @Test func onlyTheExactStatVouches() throws {
        let (root, folder, _) = try StateSealTests.state(3)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = folder + "/" + StateStore.fileName
        let now = try #require(RealDisk(confiningTo: []).stat(path))
        #expect(StateStore.isUnchanged(path, since: now))
        for changed in [FileStat(size: now.size + 1, mtime: now.mtime, inode: now.inode, ctime: now.ctime),
                        FileStat(size: now.size, mtime: now.mtime + 1, inode: now.inode, ctime: now.ctime),
                        FileStat(size: now.size, mtime: now.mtime, inode: now.inode + 1, ctime: now.ctime),
                        FileStat(size: now.size, mtime: now.mtime, inode: now.inode, ctime: now.ctime + 1)] {
            #expect(!StateStore.isUnchanged(path, since: changed))
        }
    }

    /// Every outputs row's folder is judged by `absolutePathProblem` when the table is read whole
    /// (issue 15: now in one pass over the bytes): it answers as the split into components did,
    /// for every path of up to six pieces of slashes, dots, a letter, a two-byte letter and a
    /// combining accent (which `hasPrefix("/")` sees as part of the slash's character).
    @Test func aFoldersProblemIsJudgedAsBySplittingItsComponents() {
        let pieces = ["/", ".", "a", "é", "\u{301}"]
        var paths: [String] = [""]
        var checked = 0
        for _ in 1...6 {
            paths = paths.flatMap { path in pieces.map { path + $0 } }
            for path in paths {
                checked += 1
                let fast = StateStore.absolutePathProblem(path), slow = StateStore.absolutePathProblemSlowly(path)
                if fast != slow { Issue.record("\(path.debugDescription): \(fast ?? "nil") vs \(slow ?? "nil")"); return }
            }
        }
        #expect(checked == 19_530)
        for path in ["/", "/srv/out", "/srv//out", "/srv/./out", "/srv/../out", "/srv/out/", "/srv/...", "/.../a", "srv/out", "/srv/.out"] {
            #expect(StateStore.absolutePathProblem(path) == StateStore.absolutePathProblemSlowly(path), "\(path)")
        }
    }

    /// The claim lookup reads this manifest's record of an output's file by key (issue 15), not
    /// the whole `outputFiles` table with every seal: for each kind of row (sealed with its file's
    /// identity, sealed as not known, its seal removed, its device changed by hand, deleted) and a
    /// path with no row ever, what `ForeignClaimLookup.claimant` acts on (an identity that is not
    /// `unproven`) is what the whole table gave; and only the row asked is verified.
    @Test func anOutputsFileIdentityReadByKeyIsTheWholeTablesAnswer() throws {
        let (root, folder, owner) = try StateSealTests.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            let store = try StateStore(folder: folder, owner: owner)
            for index in 0..<5 {
                let record = StateSealTests.record(index, folder: root + "/out")
                try Data("bytes \(index)".utf8).write(to: URL(fileURLWithPath: record.file))
                try store.recordOutput(record, file: nil, identity: index == 1 ? nil : FileIdentity.ofRegularFile(record.file))
            }
        }
        let raw = try DatabaseQueue(path: folder + "/" + StateStore.fileName, configuration: .patientTest)
        try raw.write { db in
            try db.execute(sql: "UPDATE outputFiles SET seal = NULL WHERE path = 'out/s2.png'")
            try db.execute(sql: "UPDATE outputFiles SET device = device + 1 WHERE path = 'out/s3.png'")
            try db.execute(sql: "DELETE FROM outputFiles WHERE path = 'out/s4.png'")
        }
        try raw.close()
        let whole = try StateStore(folder: folder, owner: owner).outputIdentities()
        let store = try StateStore(folder: folder, owner: owner)
        var acted: [String] = []
        for index in 0..<6 {
            let path = "out/s\(index).png"
            var fromWhole: FileIdentity?
            if case .some(.some(let recorded)) = whole[path], recorded != .unproven { fromWhole = recorded }
            let byKey = try store.outputIdentity(path)
            let fromKey = byKey == .unproven ? nil : byKey
            #expect(fromWhole == fromKey, "\(path): \(String(describing: fromWhole)) vs \(String(describing: fromKey))")
            if fromKey != nil { acted.append(path) }
        }
        // The sealed identity of s0 is its file's; s1 recorded none; s2 to s5 vouch for nothing.
        #expect(acted == ["out/s0.png"])
        #expect(store.seals?.rowsVerified(in: "outputFiles") == 4, "one row read per path that has one")
    }
}
