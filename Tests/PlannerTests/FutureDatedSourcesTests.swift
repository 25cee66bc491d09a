import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import Builder
import Manifest
import Planner
import Confinement

/// A `Disk` over the real one that lists what it was asked to read (`read`, `digestAndHead`):
/// what a no-op or a plan reads, counted without strace.
final class ReadCountingDisk: Disk, @unchecked Sendable {
    let base: RealDisk
    private let lock = NSLock()
    private var readPaths: [String] = []

    init(_ base: RealDisk) { self.base = base }

    /// The paths read so far, in order (a path read twice is listed twice).
    var reads: [String] { lock.withLock { readPaths } }
    private func note(_ path: String) { lock.withLock { readPaths.append(path) } }

    func stat(_ path: String) -> FileStat? { base.stat(path) }
    func stats(_ paths: [String]) -> [FileStat?] { base.stats(paths) }
    func exists(_ path: String) -> Bool { base.exists(path) }
    func read(_ path: String) throws -> Data { note(path); return try base.read(path) }
    func read(_ path: String, maxBytes: Int) throws -> Data { note(path); return try base.read(path, maxBytes: maxBytes) }
    func digestAndHead(_ path: String, headBytes: Int) throws -> (digest: String, head: Data) {
        note(path); return try base.digestAndHead(path, headBytes: headBytes)
    }
    func writeAtomically(_ data: Data, to path: String, replacing: Bool) throws -> [String] {
        try base.writeAtomically(data, to: path, replacing: replacing)
    }
    func writeAtomically(_ data: Data, to path: String, replacingOnly digest: String) throws -> [String] {
        try base.writeAtomically(data, to: path, replacingOnly: digest)
    }
    func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?) throws
        -> (created: [String], stat: FileStat?, identity: FileIdentity?) {
        try base.writeOutput(data, to: path, replacing: replacing, replacingOnly: digest)
    }
    func remove(_ path: String, ifDigest digest: String) throws -> Bool { try base.remove(path, ifDigest: digest) }
    func remove(_ path: String, ifDigest digest: String, identity: FileIdentity?) throws -> Bool {
        try base.remove(path, ifDigest: digest, identity: identity)
    }
    func remove(_ path: String) throws { try base.remove(path) }
    func removeEmptyFolder(_ path: String) -> Bool { base.removeEmptyFolder(path) }
    func removeStaleTemporaries(in folder: String, named names: PathSet, listOnly: Bool, digests: (String) -> Set<String>) -> [String] {
        base.removeStaleTemporaries(in: folder, named: names, listOnly: listOnly, digests: digests)
    }
    func now() -> Int64 { base.now() }
    func keys(inFolder folder: String, skipping: [String]) -> [String]? { base.keys(inFolder: folder, skipping: skipping) }
    func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        base.entries(inFolder: folder, skipping: skipping)
    }
}

/// Attack 20's M1: a source dated ahead of the clock (an archive made on a machine whose clock
/// ran ahead, a zip's local times read as UTC, `touch -d`, a camera's card) was "racy" until the
/// clock passed its mtime, so every no-op read it three times and every plan hashed it again:
/// work without bound, on every command, for as long as the date is ahead. Such a file is
/// trusted by its stat once its digest is recorded and its ctime (which a user cannot set) is a
/// margin older than that record; every edit still moves the stat (ctime), so the fast paths
/// answer exactly as a plan that reads every source again.
@Suite(.ownThreads) struct FutureDatedSourcesTests {
    static let files = ["photos/a.jpg": "A", "photos/b.jpg": "BB", "photos/trip/c.jpg": "CCC"]
    /// The sources dated ahead.
    static let ahead = ["photos/a.jpg", "photos/trip/c.jpg"]

    /// Sets the file's mtime `seconds` ahead of now (its ctime moves to now, as `touch -d` does).
    static func dateAhead(_ path: String, by seconds: Int) throws {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var times = [timespec(tv_sec: now.tv_sec + seconds, tv_nsec: 0), timespec(tv_sec: now.tv_sec + seconds, tv_nsec: 0)]
        guard utimensat(AT_FDCWD, path, &times, 0) == 0 else { throw POSIXError(.EIO) }
    }

    /// A session on `disk` (the CLI's own: the plan reads through it too).
    static func session(_ project: Project, disk: any Disk, incremental: Bool = true) throws -> BuildSession {
        let result = ManifestLoader().load(project.manifestPath)
        let manifest = try #require(result.manifest)
        let session = BuildSession(manifestPath: project.manifestPath, manifest: manifest, manifestFiles: result.files,
                                   identity: project.identity, disk: disk)
        session.incrementalPlans = incremental
        return session
    }

    static func countingDisk(_ project: Project) throws -> ReadCountingDisk {
        let manifest = try #require(ManifestLoader().load(project.manifestPath).manifest)
        return ReadCountingDisk(RealDisk(confiningTo: manifest.buckets.map(\.path), project: project.root.path))
    }

    /// What the CLI's no-op does: the witness check, then its refresh; the sources it read.
    static func noOp(_ project: Project) throws -> (unchanged: Int?, sourceReads: [String]) {
        let disk = try countingDisk(project)
        let session = try session(project, disk: disk)
        let unchanged = session.unchanged()
        if unchanged != nil { session.refreshWitness() }
        return (unchanged, disk.reads.filter { $0.contains("/photos/") })
    }

    /// A project whose sources `ahead` are dated `seconds` ahead, built twice (the first build
    /// of a project leaves no witness: its state folder did not exist when it took its
    /// snapshot), settled, with one no-op run since (it may read what was hashed within the racy
    /// margin, once).
    static func builtAhead(by seconds: Int) throws -> Project {
        let project = try Project(siteManifest, files: files)
        for file in ahead { try dateAhead(project.path(file), by: seconds) }
        project.settle()
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        _ = try noOp(project)
        project.settle()
        return project
    }

    /// The plan of a session that trusts no stat and reads every source again (`build --verify`'s).
    static func rereadingPlan(_ project: Project) throws -> Plan {
        let session = try project.session()
        session.rereading = true
        try session.planner().digests.rereading = true
        return try session.plan()
    }

    @Test(arguments: [3_600, 180 * 86_400])
    func aNoOpReadsNoSourceDatedAhead(seconds: Int) throws {
        let project = try Self.builtAhead(by: seconds)
        for run in 1...3 {
            let (unchanged, reads) = try Self.noOp(project)
            #expect(unchanged == 3, "no-op \(run): \(String(describing: unchanged))")
            #expect(reads.isEmpty, "no-op \(run) read \(reads.count) sources: \(reads.map { URL(fileURLWithPath: $0).lastPathComponent })")
        }
    }

    /// Once the clock passes a trusted file's date, its stat is racy against the record again:
    /// it is read once (the touched-only path) and recorded anew, then only stat'ed (the
    /// touched-only path answered without saving anything, so every no-op read it again).
    /// The lead is short so the test waits little for the clock; when the set-up outlasts it (a
    /// loaded machine: the trust was checked with the clock already past the date, and the read
    /// it then made is right), the set-up runs again with a longer lead.
    @Test func aSourceWhoseDateTheClockPassesIsReadOnceMore() throws {
        var settledProject: Project?
        var passesAt = Date()
        for lead in [7, 30, 120] {
            let tried = try Project(siteManifest, files: Self.files)
            let start = Date()
            try Self.dateAhead(tried.path("photos/a.jpg"), by: lead)
            tried.settle()
            try tried.build()
            tried.settle()
            try tried.build()
            tried.settle()
            _ = try Self.noOp(tried)
            let trusted = try Self.noOp(tried).sourceReads.isEmpty
            // Within the margin (1 s) of its date the file is racy again: the check counts only if it ended before that.
            let checkedAhead = Date().timeIntervalSince(start) < Double(lead) - 1.5
            if checkedAhead {
                #expect(trusted, "trusted while dated ahead")
                settledProject = tried
                passesAt = start.addingTimeInterval(Double(lead) + 2.5)
                break
            }
            print("FutureDatedSourcesTests: the set-up took \(Date().timeIntervalSince(start)) s, past a lead of \(lead) s; again with a longer lead")
        }
        let project = try #require(settledProject, "the set-up outlasted every lead")
        Thread.sleep(forTimeInterval: max(0, passesAt.timeIntervalSinceNow))   // the clock passes its date by a margin
        var reads: [[String]] = []
        for _ in 0..<3 {
            let (unchanged, read) = try Self.noOp(project)
            #expect(unchanged == 3)
            reads.append(read.map { URL(fileURLWithPath: $0).lastPathComponent })
            project.settle()
        }
        #expect(reads.flatMap { $0 }.count <= 2 && reads.last?.isEmpty == true, "\(reads)")
        #expect(!(try Self.rereadingPlan(project).hasChanges))
    }

    /// The full plan (no witness) trusts the stat cache for them too, and plans as a plan that
    /// reads every source again.
    @Test func aFullPlanReadsNoSourceDatedAhead() throws {
        let project = try Self.builtAhead(by: 86_400)
        let disk = try Self.countingDisk(project)
        let session = try Self.session(project, disk: disk, incremental: false)
        let plan = try session.plan()
        let reads = disk.reads.filter { $0.contains("/photos/") }
        #expect(reads.isEmpty, "the plan read \(reads.map { URL(fileURLWithPath: $0).lastPathComponent })")
        #expect(!plan.hasChanges)
        #expect(IncrementalPlanEquivalenceTests.describe(plan) == IncrementalPlanEquivalenceTests.describe(try Self.rereadingPlan(project)))
    }

    /// A manifest dated ahead still leaves a witness (it left none until the clock passed it:
    /// every run planned in full).
    @Test func aManifestDatedAheadStillLeavesAWitness() throws {
        let project = try Project(siteManifest, files: Self.files)
        try Self.dateAhead(project.manifestPath, by: 86_400)
        project.settle()
        try project.build()
        project.settle()
        _ = try Self.noOp(project)
        try project.build()
        #expect(try Self.noOp(project).unchanged == 3)
    }

    /// What is done to a source dated ahead, once its stat is trusted.
    static let changes = ["nothing", "edit in place, mtime put back", "rewrite, same size, dated ahead again",
                          "replace by a copy with the same size and times", "date further ahead", "date back to now",
                          "edit", "remove", "rename over it a file dated the same"]

    static func apply(_ change: String, to project: Project) throws {
        let path = project.path("photos/a.jpg")
        var info = stat()
        guard stat(path, &info) == 0 else { throw POSIXError(.ENOENT) }
        var times = [info.st_atim, info.st_mtim]
        switch change {
        case "nothing": break
        case "edit in place, mtime put back": try WitnessEquivalenceTests.rewriteInPlace(path)
        case "rewrite, same size, dated ahead again":
            try project.write("photos/a.jpg", "Z")
            guard utimensat(AT_FDCWD, path, &times, 0) == 0 else { throw POSIXError(.EIO) }
        case "replace by a copy with the same size and times", "rename over it a file dated the same":
            try project.write("photos/a.jpg.new", change.hasPrefix("replace") ? "Y" : "A")
            guard utimensat(AT_FDCWD, path + ".new", &times, 0) == 0, rename(path + ".new", path) == 0 else { throw POSIXError(.EIO) }
        case "date further ahead": try dateAhead(path, by: 2 * 86_400)
        case "date back to now": _ = utimes(path, nil)
        case "edit": try project.write("photos/a.jpg", "edited")
        case "remove": try project.remove("photos/a.jpg")
        default: Issue.record("unknown change \(change)")
        }
    }

    /// The fast paths (the witness, the touched-only and edited-source paths, the stat cache)
    /// against the slow one (every source read again), on the same tree, after each change made
    /// to a source dated ahead whose stat is trusted: at once (within the racy margin) and settled.
    @Test(arguments: changes, [false, true])
    func theFastPathsAnswerAsReadingEverySourceAgain(change: String, settled: Bool) throws {
        let project = try Self.builtAhead(by: 86_400)
        #expect(try Self.noOp(project).sourceReads.isEmpty)
        try Self.apply(change, to: project)
        if settled { project.settle() }
        let unchanged = try project.session().unchanged()
        let fast = try project.plan()
        let slow = try Self.rereadingPlan(project)
        let sameBytes = ["nothing", "date further ahead", "date back to now", "rename over it a file dated the same"].contains(change)
        #expect(slow.hasChanges == !sameBytes, "\(change): the slow plan \(slow.summary)")
        if unchanged != nil { #expect(!slow.hasChanges, "\(change): the witness holds, the slow plan is \(slow.summary)") }
        #expect(IncrementalPlanEquivalenceTests.describe(fast) == IncrementalPlanEquivalenceTests.describe(slow), "\(change)")
        // Built, the tree is the slow path's, and the next no-op holds.
        try project.build()
        #expect(!(try Self.rereadingPlan(project).hasChanges), "\(change): stale after a build")
    }
}
