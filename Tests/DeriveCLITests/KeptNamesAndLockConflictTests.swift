import Foundation
import Testing
import TestSupport

/// Round 27's findings 7 and 9. An adopted-unverified file a build keeps in place because nothing
/// proves it Derive's is named, and counted as kept, whether it was a `{hash}` name no longer
/// produced or the old copy of a bucket that moved. A fresh clone whose committed lock holds a
/// merge-conflict marker: the refusals name derive.lock, the line and the fix.
@Suite(.ownThreads, .serialized) struct KeptNamesAndLockConflictTests {
    typealias Project = BuildSafetyAttackTests.Project
    let clone = FreshCloneVerifyTests()
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// A plain build of the clone adopts both outputs unverified; the source is then edited, so
    /// what they were built from cannot be rendered again (and no git holds them).
    func adoptThenEditSource(hashed: Bool) throws -> Project {
        let project = try clone.freshClone(hashed: hashed)
        let adopt = try project.run(["build"])
        #expect(adopt.status == 0 && text(adopt.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(text(adopt.stdout)) \(adopt.stderr)")
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("src/landscape.jpg"))
        return project
    }

    @Test func unprovenHashedFilesKeptInPlaceAreNamed() throws {
        let project = try adoptThenEditSource(hashed: true)
        defer { project.remove() }
        let old = try [100, 200].map { try clone.outputFile(project, width: $0) }
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("left 2 in place (not proven Derive's"), "\(text(build.stdout))")
        for name in old {
            #expect(project.exists("out/" + name))
            #expect(build.stderr.contains("out/\(name) is left in place: it was adopted from derive.lock unverified, and cannot be proven Derive's"), "\(name): \(build.stderr)")
        }
    }

    @Test func unprovenOldCopiesOfAMovedBucketAreNamedAndCounted() throws {
        let project = try adoptThenEditSource(hashed: false)
        defer { project.remove() }
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: false).replacingOccurrences(of: "out: {path: out}", with: "out: {path: out2}"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("left 2 in place (not proven Derive's"), "\(text(build.stdout))")
        for width in [100, 200] {
            #expect(project.exists("out/landscape-\(width).webp") && project.exists("out2/landscape-\(width).webp"))
            #expect(build.stderr.contains("out/landscape-\(width).webp is left in place: it was adopted from derive.lock unverified"), "\(build.stderr)")
        }
    }

    static let conflict = "derive.lock is not a valid lock: line 2 is a merge-conflict marker (<<<<<<<): resolve the conflict in derive.lock"

    @Test func aConflictMarkerInAFreshClonesLockIsNamed() throws {
        let project = try clone.freshClone(hashed: false, index: true)
        defer { project.remove() }
        var lines = try clone.lockLines(project)
        lines.insert("<<<<<<< HEAD", at: 1)
        try clone.writeLock(project, lines)
        for arguments in [["build"], ["build", "--verify"], ["plan"]] {
            let run = try project.run(arguments)
            let all = text(run.stdout) + run.stderr
            #expect(run.status == 1, "\(arguments): \(all)")
            // `--verify` renders the outputs again and takes them (they hold what their rules render); not the index.
            if arguments != ["build", "--verify"] {
                #expect(all.contains("out/landscape-100.webp exists and was not written by Derive (derive.lock could have vouched for it, but \(Self.conflict)"), "\(arguments): \(all)")
            }
            #expect(all.contains("out/index.json exists and was not written by Derive as the index (derive.lock could have vouched for it, but \(Self.conflict)"), "\(arguments): \(all)")
        }
        // The fix it names: the lock restored builds as a fresh clone does.
        lines.remove(at: 1)
        try clone.writeLock(project, lines)
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
    }
}
