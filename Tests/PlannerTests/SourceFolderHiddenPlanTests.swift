import Foundation
import Testing
import TestSupport
import Manifest
import Planner
#if canImport(Glibc)
import Glibc
#endif

/// Attack 17's N3 in the planner: a folder of a source bucket that the listing cannot see into
/// (a symbolic link to a folder, a link to nothing, a folder it cannot read) while a rule's
/// pattern would descend into it. Before the fix, its sources vanished from the listing and
/// their outputs were planned as "no longer produced", with no failure.
@Suite(.ownThreads) struct SourceFolderHiddenPlanTests {
    static let kinds = [DiskObjectLister.linkToFolder, DiskObjectLister.linkToNothing, DiskObjectLister.unreadable(EACCES)]

    @Test(arguments: kinds)
    func theOutputsOfSourcesBelowAFolderThatCannotBeListedAreKeptAndTheFolderFails(_ kind: String) throws {
        let fixture = try Fixture(photosAndSite, sources: ["album/a.jpg": "A", "b.jpg": "B"])
        try fixture.build()
        fixture.disk.hide(fixture.path("photos/album"), as: kind)
        let plan = try fixture.plan()
        #expect(fixture.items(plan, .delete).isEmpty, "\(plan.items.map { "\($0.kind) \($0.output) \($0.reasons)" })")
        let failure = plan.failures.first { $0.subject == "photos/album" }
        #expect(failure != nil, "\(plan.failures)")
        #expect(failure?.message.contains("its files are not sources") == true, "\(plan.failures)")
        #expect(failure?.message.contains("album/**") == true, "\(plan.failures)")
        #expect(plan.heldBySource.values.contains("photos/album/a.jpg"), "\(plan.heldBySource)")
        // The sources beside it are planned as usual.
        #expect(fixture.items(plan, .upToDate).count == 2, "\(plan.items.map { "\($0.kind) \($0.output)" })")
    }

    /// Round 22 (build M2's trivia): a folder whose path is longer than the system allows was
    /// named with the unreadable folder's advice ("make it readable"), which no chmod fixes. Its
    /// advice is to shorten the path (shorter folder names, or the folder moved nearer the
    /// bucket's), or to exclude it.
    @Test func aFolderPastPathMaxIsToldToBeShortenedNotMadeReadable() throws {
        let fixture = try Fixture(photosAndSite, sources: ["album/a.jpg": "A", "b.jpg": "B"])
        try fixture.build()
        fixture.disk.hide(fixture.path("photos/album"), as: DiskObjectLister.pathTooLong)
        let plan = try fixture.plan()
        #expect(fixture.items(plan, .delete).isEmpty, "\(plan.items.map { "\($0.kind) \($0.output)" })")
        let message = try #require(plan.failures.first { $0.subject == "photos/album" }?.message, "\(plan.failures)")
        #expect(message.contains("is a path longer than the system allows") && message.contains("its files are not sources"), "\(message)")
        #expect(!message.contains("readable"), "\(message)")
        #expect(message.contains("shorten the path (shorter folder names, or move the folder nearer the bucket's folder)"), "\(message)")
        #expect(message.contains("or exclude it in 'exclude:' (album/**)"), "\(message)")
    }

    /// The same for a source file the pattern names whose path is too long: not "not a regular
    /// file" (it may well be one), but what it is and how to fix it.
    @Test func aSourceFilePastPathMaxIsToldToBeShortened() throws {
        let fixture = try Fixture(photosAndSite, sources: ["b.jpg": "B"])
        try fixture.build()
        fixture.disk.hide(fixture.path("photos/long.jpg"), as: DiskObjectLister.pathTooLong)
        let plan = try fixture.plan()
        let message = try #require(plan.failures.first { $0.subject == "photos/long.jpg" }?.message, "\(plan.failures)")
        #expect(!message.contains("not a regular file") && !message.contains("readable"), "\(message)")
        #expect(message.hasPrefix("cannot read the source: its path is longer than the system allows"), "\(message)")
        #expect(message.contains("shorten the path (shorter folder names, or move the folder nearer the bucket's folder), or exclude it in 'exclude:'"), "\(message)")
    }

    /// A folder an `exclude:` takes away whole is no source folder: no failure, and its old
    /// outputs go as any excluded source's do.
    @Test func aFolderExcludedWholeIsNotNamed() throws {
        let manifest = photosAndSite.replacingOccurrences(of: "    from: photos/**/*.jpg\n", with: "    from: photos/**/*.jpg\n    exclude: [album/**]\n")
        let fixture = try Fixture(manifest, sources: ["b.jpg": "B"])
        try fixture.build()
        fixture.disk.hide(fixture.path("photos/album"), as: DiskObjectLister.linkToFolder)
        let plan = try fixture.plan()
        #expect(plan.failures.isEmpty, "\(plan.failures)")
    }

    /// A rule whose pattern stays in the top folder does not descend: a link beside its
    /// sources is none of its business.
    @Test func aLinkThePatternWouldNotDescendIntoIsNotNamed() throws {
        let manifest = photosAndSite.replacingOccurrences(of: "from: photos/**/*.jpg", with: "from: photos/*.jpg")
        let fixture = try Fixture(manifest, sources: ["b.jpg": "B"])
        try fixture.build()
        fixture.disk.hide(fixture.path("photos/album"), as: DiskObjectLister.linkToFolder)
        let plan = try fixture.plan()
        #expect(plan.failures.isEmpty, "\(plan.failures)")
        #expect(fixture.items(plan, .upToDate).count == 2)
    }
}
