import Foundation
@testable import Planner
import Testing
import TestSupport

/// s54 (issue #15): `MovedStateFolder` searched the folders below a gone registered state's old
/// path once per state and rescan (a 910-line registry made serve's anonymous listing take
/// 107–203 s). `MovedStateIndex` keeps each folder's listing by its stamp and one walk per start
/// folder for every state searched from there. Its answers must be the fresh search's, whatever
/// moved since, and a walk that runs out of its budget must say so, never "not there".
@Suite("MovedStateIndexRound54", .ownThreads) struct MovedStateIndexRound54Tests {
    /// A build state folder (its database a plain file, as `isFolder` asks) at `base/rel`.
    private func makeState(_ base: String, _ rel: String) throws -> StateFolderMade.Made {
        let folder = base + "/" + rel
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("db".utf8).write(to: URL(fileURLWithPath: folder + "/state.sqlite"))
        return try #require(StateFolderMade.Made.of(folder))
    }

    private func move(_ base: String, _ from: String, _ to: String) throws {
        try FileManager.default.createDirectory(atPath: ((base + "/" + to) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: base + "/" + from, toPath: base + "/" + to)
    }

    /// The kept index's answer and the fresh search's, for the state registered at `old`.
    private func answers(_ index: MovedStateIndex, _ made: StateFolderMade.Made, old: String) -> (kept: String?, fresh: String?, complete: Bool) {
        let start = MovedStateFolder.searchStart(old) ?? "/"
        // A walk is kept 20 times as long as it took (its cost share): wait that out, so the
        // kept listings, not a kept walk, answer.
        let last = index.walk(from: start, device: made.identity.device)
        let wait = MovedStateIndex.costShare * last.seconds - (ProcessInfo.processInfo.systemUptime - last.at)
        if wait > 0 { Thread.sleep(forTimeInterval: wait + 0.01) }
        let kept = index.find(made, from: start, isFolder: { MovedStateFolder.isFolder($0, made) })
        let fresh = MovedStateFolder.search(for: made, from: old)
        switch kept {
        case .found(let path): return (path, fresh, true)
        case .notFound: return (nil, fresh, true)
        case .unsearched: return (nil, fresh, false)
        }
    }

    @Test("the kept walks answer as a fresh search over a state moved back, moved to a new folder, and a line added")
    func keptAnswersEqualFreshOnes() throws {
        let base = try ScratchFolder.path("derive-moved-index")
        defer { try? FileManager.default.removeItem(atPath: base) }
        var registered: [(old: String, made: StateFolderMade.Made)] = []
        for name in ["p1", "p2"] { registered.append((base + "/x/\(name)/.derive/n", try makeState(base, "x/\(name)/.derive/n"))) }
        try FileManager.default.createDirectory(atPath: base + "/x/q/deep/er", withIntermediateDirectories: true)
        try move(base, "x/p2", "x/q/p2")
        // Every walk walked again (nothing kept by time), over the listings kept by stamp.
        let index = MovedStateIndex(keptSeconds: 0)
        func check(_ step: String, expect: [String?]) {
            for (i, state) in registered.enumerated() {
                let (kept, fresh, complete) = answers(index, state.made, old: state.old)
                #expect(complete, "\(step): \(state.old) not searched to the end")
                #expect(kept == fresh, "\(step): \(state.old): kept \(kept ?? "nil"), fresh \(fresh ?? "nil")")
                if i < expect.count { #expect(fresh == expect[i], "\(step): \(state.old) is at \(fresh ?? "nil"), expected \(expect[i] ?? "nil")") }
            }
        }
        check("first", expect: [base + "/x/p1/.derive/n", base + "/x/q/p2/.derive/n"])
        // Listings read in the second their folder changed are not kept: wait until they may be.
        Thread.sleep(forTimeInterval: 2.1)
        check("warm", expect: [base + "/x/p1/.derive/n", base + "/x/q/p2/.derive/n"])
        let reads = index.folderReads
        check("unchanged", expect: [base + "/x/p1/.derive/n", base + "/x/q/p2/.derive/n"])
        #expect(index.folderReads == reads, "an unchanged tree was listed again (\(index.folderReads - reads) folders)")
        // A gone state moved back.
        try move(base, "x/q/p2", "x/p2")
        check("moved back", expect: [base + "/x/p1/.derive/n", base + "/x/p2/.derive/n"])
        // A state moved to a new folder, deep in a folder whose parents did not change.
        try move(base, "x/p1", "x/q/deep/er/p1")
        check("moved to a new folder", expect: [base + "/x/q/deep/er/p1/.derive/n", base + "/x/p2/.derive/n"])
        // A registry line added: a new project, then moved below a folder read before.
        registered.append((base + "/x/p3/.derive/n", try makeState(base, "x/p3/.derive/n")))
        try move(base, "x/p3", "x/q/deep/p3")
        check("a line added", expect: [base + "/x/q/deep/er/p1/.derive/n", base + "/x/p2/.derive/n", base + "/x/q/deep/p3/.derive/n"])
        // Gone for good: both say not found.
        try FileManager.default.removeItem(atPath: base + "/x/q/deep/p3")
        check("removed", expect: [base + "/x/q/deep/er/p1/.derive/n", base + "/x/p2/.derive/n", nil])
    }

    @Test("a walk that runs out of its budget says the rest was not searched, never that it is not there")
    func anExhaustedBudgetIsDoubt() throws {
        let base = try ScratchFolder.path("derive-moved-budget")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let made = try makeState(base, "x/p1/.derive/n")
        try FileManager.default.createDirectory(atPath: base + "/x/a/b/c", withIntermediateDirectories: true)
        try move(base, "x/p1", "x/a/b/c/p1")
        let old = base + "/x/p1/.derive/n"
        let start = try #require(MovedStateFolder.searchStart(old))
        let small = MovedStateIndex(keptSeconds: 0, listBudget: 2)
        #expect(small.find(made, from: start, isFolder: { MovedStateFolder.isFolder($0, made) }) == .unsearched)
        // Gone for good, the same budget still says so: not searched, not "not there".
        try FileManager.default.removeItem(atPath: base + "/x/a/b/c/p1")
        let gone = MovedStateIndex(keptSeconds: 0, listBudget: 2)
        #expect(gone.find(made, from: start, isFolder: { MovedStateFolder.isFolder($0, made) }) == .unsearched)
        // With the default budget: not there.
        #expect(MovedStateIndex(keptSeconds: 0).find(made, from: start, isFolder: { MovedStateFolder.isFolder($0, made) }) == .notFound)
    }
}
