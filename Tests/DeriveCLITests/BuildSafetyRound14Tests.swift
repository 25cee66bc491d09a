import Builder
import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The fourteenth round on build safety (issue 9, attack 14's R1, B1', IX, HS and DF), end to end
/// through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound14Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// Swaps two names with `renameat2(RENAME_EXCHANGE)` in a loop on its own thread until stopped:
    /// a sync tool or editor renaming a file into place, as fast as it can. It never destroys a file.
    final class Swapper: @unchecked Sendable {
        private let lock = NSLock()
        private var running = true
        private var swaps = 0
        private let done = DispatchSemaphore(value: 0)
        typealias Rename2 = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32

        init(_ a: String, _ b: String) {
            let thread = Thread { [self] in
                let function = unsafeBitCast(dlsym(nil, "renameat2")!, to: Rename2.self)
                while lock.withLock({ running }) {
                    if function(AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */) == 0 { lock.withLock { swaps += 1 } }
                }
                done.signal()
            }
            thread.start()
        }

        /// Stops the loop; returns how many swaps it made.
        func stop() -> Int {
            lock.withLock { running = false }
            done.wait()
            return lock.withLock { swaps }
        }
    }

    // MARK: R1: a rebuild's rename never replaces a file swapped in after the check

    /// Each round changes the style (every output is rebuilt) and builds while a user's file is
    /// swapped with an output over and over. Before the fix the rename replaced the user's file in
    /// about one round of three (attack 14); now the move is the check: the user's bytes are
    /// always somewhere, whatever the build says.
    @Test func aFileSwappedInDuringARebuildIsNeverLost() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        var lost: [Int] = [], refused = 0, swaps = 0
        for round in 1...12 {
            let user = Data("USER PRECIOUS \(round)\n".utf8)
            try user.write(to: project.url("user.jpg"))
            try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 30 + round))
            let swapper = Swapper(project.url("out/landscape.jpg").path, project.url("user.jpg").path)
            let build = try project.run(["build", "-q"])
            swaps += swapper.stop()
            if build.status != 0 { refused += 1 }
            if files(holding: user, below: project.root).isEmpty { lost.append(round) }
            // Back to a clean start: the user's file goes; an output left where it was swapped goes too.
            for path in ["user.jpg"] + files(holding: user, below: project.url("out")).map({ "out/" + $0 }) {
                try? FileManager.default.removeItem(at: project.url(path))
            }
            if let head = try? Data(contentsOf: project.url("out/landscape.jpg")).prefix(2), head != Data([0xFF, 0xD8]) {
                try? FileManager.default.removeItem(at: project.url("out/landscape.jpg"))
            }
        }
        #expect(lost.isEmpty, "the user's bytes were lost in rounds \(lost) (\(refused) builds refused, \(swaps) swaps)")
        #expect(swaps > 0)
    }

    // MARK: B1': lock lines no longer raise the read cap of a file named as the index

    /// Appends `count` lock lines for files that do not exist (each rejected or vouching for
    /// nothing), kept sorted as Derive writes them.
    func padLock(_ project: Project, count: Int, path: (Int) -> String) throws {
        let lines = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).split(separator: "\n").map(String.init)
        var entries = Array(lines.dropFirst())
        for i in 0..<count {
            entries.append(#"{"path":"\#(path(i))","actionKey":"\#(String(repeating: "0", count: 64))","digest":"\#(String(format: "%064lx", i))","width":10,"height":10,"bytes":100,"format":"jpg"}"#)
        }
        try ([lines[0]] + entries.sorted()).joined(separator: "\n").appending("\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
    }

    static let hugeFile: UInt64 = 600 << 20

    /// Attack 14's B1': 12 000 padding lines raised the cap to about 750 MB, and plan read the
    /// 600 MB file the header names (971 MB peak). Now a file over 1 MiB is read only when its
    /// streamed digest is the one the header (or the state) records.
    @Test func aPaddedLockDoesNotLetAHugeFileNamedAsTheOldIndexBeRead() throws {
        let round13 = BuildSafetyRound13Tests()
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try round13.sparseFile(project, "out/big.json", bytes: Self.hugeFile)
        try pointLockHeader(project, at: "out/big.json", digest: String(repeating: "0", count: 64))
        try padLock(project, count: 12_000) { String(format: "src/z%05ld.txt", $0) }
        let (result, peak) = try round13.runMeasured(project, ["plan"])
        #expect(peak > 0)
        #expect(peak < BuildSafetyRound13Tests.peakLimitKiB, "plan: \(peak) KiB: the file the padded lock names was read whole")
        #expect((text(result.stdout) + result.stderr).contains("out/big.json"), "\(text(result.stdout)) \(result.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: project.url("out/big.json").path)[.size] as? UInt64 == Self.hugeFile)
    }

    /// The same padding with shape-valid lines for outputs that do not exist, a state, and the
    /// huge file at the manifest's own index path (attack 14's BX and BZ): plan, check and clean
    /// stay small and keep the file.
    @Test func aPaddedLockDoesNotLetAHugeFileAtTheIndexPathBeRead() throws {
        let round13 = BuildSafetyRound13Tests()
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try padLock(project, count: 12_000) { String(format: "out/x%05ld.jpg", $0) }
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        try round13.sparseFile(project, "out/index.json", bytes: Self.hugeFile)
        for command in [["plan"], ["check"], ["clean"]] {
            let (result, peak) = try round13.runMeasured(project, command)
            #expect(peak > 0)
            #expect(peak < BuildSafetyRound13Tests.peakLimitKiB, "\(command): \(peak) KiB: the file at the index path was read whole")
            #expect((text(result.stdout) + result.stderr).contains("out/index.json"), "\(command): \(text(result.stdout)) \(result.stderr)")
            #expect(try FileManager.default.attributesOfItem(atPath: project.url("out/index.json").path)[.size] as? UInt64 == Self.hugeFile)
        }
    }

    // MARK: IX: an index differing in any field Derive writes is not adopted as is

    /// Replaces the first `"key": value` of the index on disk (a hand edit or a bad merge).
    func editIndex(_ project: Project, _ pattern: String, _ replacement: String) throws {
        let text = try String(contentsOf: project.url("out/index.json"), encoding: .utf8)
        guard let range = text.range(of: pattern, options: .regularExpression) else { Issue.record("no \(pattern) in the index"); return }
        try text.replacingCharacters(in: range, with: replacement).write(to: project.url("out/index.json"), atomically: true, encoding: .utf8)
    }

    func firstColour(_ project: Project) throws -> String? {
        let text = try String(contentsOf: project.url("out/index.json"), encoding: .utf8)
        return text.range(of: #""color": "[^"]*""#, options: .regularExpression).map { String(text[$0]) }
    }

    /// Attack 14's IX-a: a fresh clone adopted an index whose `color` was edited, and `check`
    /// called it up to date for good. Now the colours are adopted only from the index the lock
    /// records writing: an edited one gets its colours rendered again and is rewritten.
    @Test func aFreshCloneRewritesAnIndexWithAnEditedColour() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let original = try #require(try firstColour(project))
        #expect(original != ##""color": "#ffffff""##)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try editIndex(project, ##""color": "#[0-9a-f]*""##, ##""color": "#ffffff""##)
        let check = try project.run(["check"])
        #expect(check.status != 0, "an index with a wrong colour is not up to date: \(text(check.stdout))")
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(try firstColour(project) == original)
        let after = try project.run(["check"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
    }

    /// Attack 14's IX-b: with a state, a hand edit of a colour, a source's width or an ACL was
    /// called "Derive's index" and silently rewritten. README: an index edited by hand is left in
    /// place and reported until it is moved (or `--overwrite`).
    @Test(arguments: [(##""color": "#[0-9a-f]*""##, ##""color": "#ffffff""##), (#""width": [0-9]+"#, #""width": 7"#),
                      (#""acl": "[a-z-]*""#, #""acl": "public-read-write""#)])
    func withAStateAHandEditedIndexIsLeftAndReported(edit: (pattern: String, replacement: String)) throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try editIndex(project, edit.pattern, edit.replacement)
        let edited = try Data(contentsOf: project.url("out/index.json"))
        let plan = try project.run(["plan"])
        let said = text(plan.stdout) + plan.stderr
        #expect(plan.status != 0)
        #expect(said.contains("out/index.json") && said.contains("not written by Derive"), "\(said)")
        let build = try project.run(["build", "-q"])
        #expect(build.status != 0)
        #expect(build.stderr.contains("out/index.json"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/index.json")) == edited, "the hand edit was overwritten")
        #expect(try project.run(["check"]).status != 0)
        // --overwrite takes it over.
        #expect(try project.run(["build", "-q", "--overwrite"]).status == 0)
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: HS: state records are confined like lock lines

    /// Attack 14's HS: a state row whose path is `out/../../victim/v.jpg` (with the victim's digest)
    /// made plan list it and build delete a file outside the bucket. Now such a row is ignored and
    /// named; nothing outside is touched.
    @Test(arguments: ["out/../../victim/v.jpg", "out/../notes.txt"])
    func aStateRecordLeavingItsBucketIsIgnoredAndNamed(path: String) throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let victim = path.hasSuffix("v.jpg") ? project.root.deletingLastPathComponent().appendingPathComponent("victim/v.jpg")
            : project.url("notes.txt")
        try FileManager.default.createDirectory(at: victim.deletingLastPathComponent(), withIntermediateDirectories: true)
        defer { if path.hasSuffix("v.jpg") { try? FileManager.default.removeItem(at: victim.deletingLastPathComponent()) } }
        let bytes = Data("victim's bytes\n".utf8)
        try bytes.write(to: victim)
        let state = try #require(FileManager.default.enumerator(atPath: project.url(".derive").path)?.allObjects
            .compactMap { $0 as? String }.first { $0.hasSuffix("state.sqlite") })
        let database = try DatabaseQueue(path: project.url(".derive/" + state).path, configuration: .patientTest)
        try database.write { db in
            try db.execute(sql: """
                INSERT INTO outputs (path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                                     actionKey, acl, outputDigest, size, width, height, format, builtAt, folder)
                SELECT ?, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                       actionKey, acl, ?, ?, width, height, format, builtAt, folder FROM outputs LIMIT 1
                """, arguments: [path, ContentDigests.digest(bytes), bytes.count])
        }
        // Sealed with the user's secret: the row's place, not its seal, is what is refused here.
        try BuildSafetyRound18Tests.sealAsTheUser(project)
        let plan = try project.run(["plan"])
        let said = text(plan.stdout) + plan.stderr
        #expect(said.contains(path) && said.contains("ignored"), "\(said)")
        #expect(said.contains("0 to delete") && !said.contains("delete:"), "\(said)")
        let build = try project.run(["build"])
        #expect((text(build.stdout) + build.stderr).contains(path), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: victim) == bytes, "a file outside the bucket was deleted")
        // The build dropped the row: the next one is clean.
        let again = try project.run(["build", "-q"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Data(contentsOf: victim) == bytes)
        _ = outer
    }
}
