import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 39c's N3: a build recovering a lost state (a corrupt one moved aside, or a fresh clone
/// with none) and killed after it wrote the lock but before the index: the lock already named the
/// new index's digest while `out/index.json` still held the index Derive wrote before, recorded
/// nowhere; every later plan, build and check refused it as "not written by Derive as the index"
/// for good. The build now notes the index bytes it is about to replace (judged Derive's) in the
/// new state before it writes the lock, so the next build recognises them. Killed with strace's
/// fault injection at each `fsync` between the lock's exchange and the index's (numbered in a
/// traced twin run; skipped where strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct RecoveryIndexKillRound39Tests {
    typealias Site = SiteRound11Tests.Site

    /// The project of `KilledStateWriteRound39Tests` (one rule, an index in the output bucket).
    static func manifest(_ width: Int) -> String { KilledStateWriteRound39Tests.manifest(width) }

    /// The state database files in the project's state folder (`.derive`).
    func stateFiles(_ site: Site) -> [String] {
        let root = site.url(".derive").path
        guard let walk = FileManager.default.enumerator(atPath: root) else { return [] }
        return walk.compactMap { $0 as? String }.filter { $0.hasSuffix("/state.sqlite") || $0 == "state.sqlite" }.map { root + "/" + $0 }
    }

    /// Built, then the state lost (`corrupt`: garbled, so the build moves it aside; otherwise
    /// deleted, as a fresh clone has none), then restyled: the next build rewrites lock and index.
    func recovering(corrupt: Bool) throws -> (site: Site, index: Data) {
        let site = try Site(["src/landscape.jpg": "landscape.jpg", "src/portrait.jpg": "portrait.jpg"], manifest: Self.manifest(32))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        if corrupt {
            let states = stateFiles(site)
            try #require(!states.isEmpty, "no state.sqlite found under \(site.url(".derive").path)")
            for state in states {
                var bytes = Data(try Data(contentsOf: URL(fileURLWithPath: state)).prefix(100))
                bytes.append(Data((0..<131_072).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) }))
                try bytes.write(to: URL(fileURLWithPath: state))
            }
        } else {
            try site.freshClone()
        }
        try site.write(Self.manifest(30))
        return (site, try Data(contentsOf: site.url("out/index.json")))
    }

    /// The numbers (as strace's `when=` counts them, per thread) of the `fsync` calls made after
    /// the lock's exchange and up to the index's, in a twin recovering build.
    func fsyncsBetweenLockAndIndex(corrupt: Bool) throws -> [Int] {
        let twin = try recovering(corrupt: corrupt).site
        defer { twin.remove() }
        let trace = twin.url("trace.txt").path
        let result = try CLI.run(["-f", "-y", "-o", trace, "-e", "trace=fsync,renameat2", CLI.executable.path, "build", "-q"],
                                 in: twin.root, executable: SystemCallTrace.strace)
        #expect(result.status == 0, "\(said(result))")
        var counts: [Substring: Int] = [:]
        var lockThread: Substring?
        var found: [Int] = []
        for line in try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n") {
            let thread = line.prefix(while: { $0 != " " })
            if line.contains("renameat2("), line.contains(", \"derive.lock\", RENAME_EXCHANGE") { lockThread = thread; found = [] }
            if line.contains("renameat2("), line.contains(", \"index.json\", RENAME_EXCHANGE"), thread == lockThread { return found }
            guard line.contains(" fsync(") else { continue }
            counts[thread, default: 0] += 1
            if thread == lockThread { found.append(counts[thread]!) }
        }
        return []
    }

    @Test(arguments: [true, false]) func aRecoveringBuildKilledBetweenTheLockAndTheIndexLeavesAnIndexTheNextBuildRewrites(corrupt: Bool) throws {
        let points = try fsyncsBetweenLockAndIndex(corrupt: corrupt)
        try #require(!points.isEmpty, "no fsync found between the lock's exchange and the index's")
        for point in points {
            let (site, before) = try recovering(corrupt: corrupt)
            defer { site.remove() }
            let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:signal=KILL:when=\(point)",
                                      CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
            #expect(killed.status != 0, "fsync #\(point): \(said(killed))")
            let after = try Data(contentsOf: site.url("out/index.json"))
            #expect(after == before, "fsync #\(point): the kill did not land between the lock and the index (the test no longer kills where it means to)")
            let plan = try site.run(["plan"])
            #expect(plan.status == 0, "fsync #\(point), corrupt \(corrupt): \(said(plan))")
            let next = try site.run(["build"])
            #expect(next.status == 0, "fsync #\(point), corrupt \(corrupt): \(said(next))")
            #expect(try Data(contentsOf: site.url("out/index.json")) != before, "fsync #\(point): the index was not rewritten")
            let check = try site.run(["check"])
            #expect(check.status == 0, "fsync #\(point), corrupt \(corrupt): \(said(check))")
        }
    }

    /// `clean` right after such a kill removes that index too (it left it, "does not hold what
    /// Derive writes", while removing the lock and the state that could have proved it).
    @Test(arguments: [true, false]) func cleanAfterTheKillRemovesTheIndex(corrupt: Bool) throws {
        let points = try fsyncsBetweenLockAndIndex(corrupt: corrupt)
        try #require(!points.isEmpty)
        let (site, before) = try recovering(corrupt: corrupt)
        defer { site.remove() }
        _ = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:signal=KILL:when=\(points[0])",
                         CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(try Data(contentsOf: site.url("out/index.json")) == before, "the kill did not land between the lock and the index")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(!site.exists("out/index.json"), "\(said(clean))")
    }

    /// Only bytes Derive noted: a user's file put at the index path after such a kill is still refused.
    @Test func aUsersFileAtTheIndexAfterTheKillIsStillRefused() throws {
        let points = try fsyncsBetweenLockAndIndex(corrupt: false)
        try #require(!points.isEmpty)
        let (site, _) = try recovering(corrupt: false)
        defer { site.remove() }
        _ = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:signal=KILL:when=\(points[0])",
                         CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        try Data("{\"mine\": true}\n".utf8).write(to: site.url("out/index.json"))
        let next = try site.run(["build"])
        #expect(next.status != 0 && said(next).contains("not written by Derive as the index"), "\(said(next))")
        #expect(try String(contentsOf: site.url("out/index.json"), encoding: .utf8) == "{\"mine\": true}\n")
    }
}
