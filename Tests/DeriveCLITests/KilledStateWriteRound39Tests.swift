import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 39a's findings 3 and 4: a restyle build killed (`kill -9`) while it wrote the build
/// state. A kill inside a transaction leaves a hot `state.sqlite-journal`: `plan` and `check`
/// opened the state read-only, which cannot roll it back, called the state gone and said the
/// build would refuse, while the build (rolling the journal back) built both outputs and exited
/// 0. A kill after a new output was moved into place and before it was recorded left the file
/// with only a pending note: `clean` called it "not the file Derive wrote", left it, and deleted
/// the state and the lock, so the next build refused it as not Derive's. Killed with `strace`'s
/// fault injection at each `fsync`/`fdatasync` around the installing of an output (skipped where
/// strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct KilledStateWriteRound39Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(_ width: Int) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: out/t/{name}.jpg
        index: out/index.json

        """
    }

    /// Built, then restyled: the next build replaces both outputs.
    func restyled() throws -> Site {
        let site = try Site(["src/a.jpg": "landscape.jpg", "src/b.jpg": "portrait.jpg"], manifest: Self.manifest(32))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try site.write(Self.manifest(30))
        return site
    }

    /// The numbers (as strace's `when=` counts them, per thread) of the `fsync`/`fdatasync` calls
    /// of the thread that installs `out/t/a.jpg` in a restyle build of a twin project, and the
    /// number of the last one before the exchange that installs it.
    func syncs() throws -> (count: Int, beforeExchange: Int) {
        let twin = try restyled()
        defer { twin.remove() }
        let trace = twin.url("trace.txt").path
        let result = try CLI.run(["-f", "-o", trace, "-e", "trace=fsync,fdatasync,renameat2", CLI.executable.path, "build", "-q"],
                                 in: twin.root, executable: SystemCallTrace.strace)
        #expect(result.status == 0, "\(said(result))")
        var counts: [Substring: Int] = [:]
        var installer: Substring?, before = 0
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        for line in lines where !line.contains("resumed>") {
            let thread = line.prefix(while: { $0 != " " })
            if line.contains(" fsync(") || line.contains(" fdatasync(") { counts[thread, default: 0] += 1 }
            if line.contains(", \"a.jpg\", RENAME_EXCHANGE") { installer = thread; before = counts[thread, default: 0] }
        }
        guard let installer else { return (0, 0) }
        return (counts[installer] ?? 0, before)
    }

    /// Whether the state's journal is one SQLite rolls back (it starts with its magic).
    func hotJournal(_ site: Site) -> Bool {
        guard let data = FileManager.default.contents(atPath: site.url(".derive/derive/state.sqlite-journal").path) else { return false }
        return data.prefix(8) == Data([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7])
    }

    func killedRestyle(at point: Int) throws -> Site {
        let site = try restyled()
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:signal=KILL:when=\(point)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "sync #\(point): \(said(killed))")
        return site
    }

    @Test func planAndCheckAfterAKillInAStateWriteSayWhatTheNextBuildDoes() throws {
        let (count, before) = try syncs()
        try #require(before > 0 && count > before + 2, "syncs \(count), exchange after #\(before)")
        var hot = 0
        // Just after the exchange: the directory's sync, then the record's transaction (its
        // journal, the folder, the journal again, the database).
        for point in (before + 1)...min(count, before + 5) {
            let site = try killedRestyle(at: point)
            defer { site.remove() }
            let isHot = hotJournal(site)
            if isHot { hot += 1 }
            let plan = try site.run(["plan", "--detailed-exitcode"])
            let check = try site.run(["check"])
            let build = try site.run(["build"])
            #expect(build.status == 0, "sync #\(point): \(said(build))")
            // The build replaced both outputs: plan says changes (2), not errors (1); check is not green.
            #expect(plan.status == 2, "sync #\(point) (hot journal: \(isHot)): \(said(plan))")
            #expect(!said(plan).contains("refuses") && !said(plan).contains("state is gone"), "sync #\(point): \(said(plan))")
            #expect(check.status == 1 && !said(check).contains("state is gone"), "sync #\(point): \(said(check))")
            if isHot {
                #expect(plan.stderr.contains("killed while it wrote the state") && plan.stderr.contains("rolls it back"), "sync #\(point): \(said(plan))")
            }
            let after = try site.run(["check"])
            #expect(after.status == 0, "sync #\(point): \(said(after))")
        }
        #expect(hot > 0, "no kill left a hot journal (the test no longer kills where it means to)")
    }

    @Test func planAndCheckLeaveAHotJournalAsTheyFoundIt() throws {
        let (count, before) = try syncs()
        try #require(before > 0 && count > before + 2, "syncs \(count), exchange after #\(before)")
        for point in (before + 1)...min(count, before + 5) {
            let site = try killedRestyle(at: point)
            defer { site.remove() }
            guard hotJournal(site) else { continue }
            let folder = site.url(".derive/derive").path
            func files() -> [String: Data] {
                var found: [String: Data] = [:]
                for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasPrefix("state.sqlite") {
                    found[name] = FileManager.default.contents(atPath: folder + "/" + name)
                }
                return found
            }
            let found = files()
            _ = try site.run(["plan"])
            _ = try site.run(["check"])
            #expect(files() == found, "sync #\(point): plan or check changed the state's files")
            #expect(hotJournal(site), "sync #\(point)")
            return
        }
        Issue.record("no kill left a hot journal (the test no longer kills where it means to)")
    }

    @Test func cleanAfterAKilledRestyleRemovesTheFilesTheBuildInstalled() throws {
        let (count, before) = try syncs()
        try #require(before > 0 && count > before + 2, "syncs \(count), exchange after #\(before)")
        // Before the exchange (the note's transaction, the new file's sync) and after it.
        for point in 1...min(count, before + 5) {
            let site = try killedRestyle(at: point)
            defer { site.remove() }
            let clean = try site.run(["clean"])
            let left = site.files("out/t")
            // Derive's files are removed; were one left, the lock would have to stay as its record.
            #expect(left.isEmpty || (clean.status == 1 && site.exists("derive.lock")), "sync #\(point): left \(left): \(said(clean))")
            #expect(!said(clean).contains("is not the file Derive wrote there"), "sync #\(point): \(said(clean))")
            // The original recipe back: nothing in the way of a build.
            try site.write(Self.manifest(32))
            let build = try site.run(["build"])
            #expect(build.status == 0, "sync #\(point): \(said(build))")
        }
    }
}

/// Attack 39a's finding 10: an output hard-linked to a source is refused, and the refusal names
/// the source and the link to break (it said only "a source or a control file … change 'to:'").
@Suite(.ownThreads) struct OutputLinkedToSourceRound39Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func anOutputHardLinkedToASourceNamesTheSourceAndTheFix() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg", "src/b.jpg": "portrait.jpg"], manifest: KilledStateWriteRound39Tests.manifest(32))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try #require(link(site.url("out/t/a.jpg").path, site.url("src/c.jpg").path) == 0)
        let source = try Data(contentsOf: site.url("src/c.jpg"))
        let plan = try site.run(["plan"])
        #expect(plan.status == 1)
        #expect(plan.stderr.contains("out/t/a.jpg is the same file as src/c.jpg"), "\(plan.stderr)")
        #expect(plan.stderr.contains("hard link") && plan.stderr.contains("rm out/t/a.jpg"), "\(plan.stderr)")
        let build = try site.run(["build"])
        #expect(build.status == 1 && build.stderr.contains("src/c.jpg"), "\(build.stderr)")
        #expect(try Data(contentsOf: site.url("src/c.jpg")) == source)
        // The fix it gives works, and leaves the source as it was.
        try FileManager.default.removeItem(at: site.url("out/t/a.jpg"))
        let fixed = try site.run(["build"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(try Data(contentsOf: site.url("src/c.jpg")) == source)
    }
}
