import Foundation
import Planner
import Testing
import TestSupport

/// Attack round 25 on build safety: a report folder's `.derive-report` Derive can prove it wrote
/// (a forged or copied one proves nothing), and `clean` after a refused build in a fresh clone.
@Suite(.ownThreads, .serialized) struct ReportsAndCleanRound25Tests {
    // MARK: F4: a forged `.derive-report`

    /// A `.derive-report` written by hand whose digest matches the user's page: the folder is the
    /// user's, refused and left as it was, with a message naming it and how to go on.
    @Test func aForgedReportRecordNeverReplacesAUsersPage() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let docs = project.folder.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        let page = Data("<h1>my hand-written homepage</h1>\n".utf8)
        try page.write(to: docs.appendingPathComponent("index.html"))
        let forged = "derive-report/1\n\(ContentDigests.digest(page)) index.html\n"
        try Data(forged.utf8).write(to: docs.appendingPathComponent(".derive-report"))
        let result = try project.run(["catalog", "--html", "docs"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(try Data(contentsOf: docs.appendingPathComponent("index.html")) == page, "the user's page was replaced")
        #expect(try String(contentsOf: docs.appendingPathComponent(".derive-report"), encoding: .utf8) == forged)
        #expect(try FileManager.default.contentsOfDirectory(atPath: docs.path).sorted() == [".derive-report", "index.html"])
        #expect(result.stderr.contains("docs") && result.stderr.contains("cannot prove it wrote"), "\(result.stderr)")
        #expect(result.stderr.contains("choose another report folder"), "\(result.stderr)")
    }

    /// The same forgery in the newer form: a seal line of the right shape, made without the
    /// user's secret, verifies nothing.
    @Test func aForgedSealProvesNothing() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let docs = project.folder.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        let page = Data("my page".utf8)
        try page.write(to: docs.appendingPathComponent("index.html"))
        let forged = "derive-report/2\n\(ContentDigests.digest(page)) index.html\nseal \(String(repeating: "ab", count: 32))\n"
        try Data(forged.utf8).write(to: docs.appendingPathComponent(".derive-report"))
        let result = try project.run(["catalog", "--html", "docs"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(try Data(contentsOf: docs.appendingPathComponent("index.html")) == page)
        #expect(result.stderr.contains("cannot prove it wrote"), "\(result.stderr)")
    }

    /// A report folder Derive made, copied elsewhere (its record with it): the copy is not the
    /// folder Derive wrote, so it proves nothing there; the original is still rewritten.
    @Test func aCopiedReportRecordProvesNothingWhileTheOriginalStaysDerives() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let sheet = project.folder.appendingPathComponent("sheet")
        let first = try project.run(["catalog", "--html", "sheet"])
        #expect(first.status == 0, "\(first.stderr)")
        let record = try String(contentsOf: sheet.appendingPathComponent(".derive-report"), encoding: .utf8)
        #expect(record.hasPrefix("derive-report/2\n") && record.contains("\nseal "), "\(record)")
        #expect(try project.run(["catalog", "--html", "sheet"]).status == 0, "a report folder Derive made is Derive's to rewrite")

        let copy = project.folder.appendingPathComponent("docs")
        try FileManager.default.copyItem(at: sheet, to: copy)
        let page = try Data(contentsOf: copy.appendingPathComponent("index.html"))
        let copied = try project.run(["catalog", "--html", "docs"])
        #expect(copied.status == 1, "\(copied.stderr)")
        #expect(copied.stderr.contains("cannot prove it wrote"), "\(copied.stderr)")
        #expect(try Data(contentsOf: copy.appendingPathComponent("index.html")) == page)
    }

    /// A record from an older Derive (unsealed, `derive-report/1`) cannot be told from one written
    /// by hand: the folder is refused, and the message says to delete it or choose another.
    @Test func anUnsealedRecordOfAnOlderDeriveIsRefusedWithAWayOn() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let sheet = project.folder.appendingPathComponent("sheet")
        #expect(try project.run(["catalog", "--html", "sheet"]).status == 0)
        let index = try Data(contentsOf: sheet.appendingPathComponent("index.html"))
        let images = try FileManager.default.contentsOfDirectory(atPath: sheet.appendingPathComponent("images").path).sorted()
        var old = "derive-report/1\n"
        for name in images {
            old += "\(ContentDigests.digest(try Data(contentsOf: sheet.appendingPathComponent("images/" + name)))) images/\(name)\n"
        }
        old += "\(ContentDigests.digest(index)) index.html\n"
        try Data(old.utf8).write(to: sheet.appendingPathComponent(".derive-report"))
        let result = try project.run(["catalog", "--html", "sheet"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("older Derive") && result.stderr.contains("delete the folder"), "\(result.stderr)")
        #expect(try Data(contentsOf: sheet.appendingPathComponent("index.html")) == index)
        // Deleted, it is a new folder again.
        try FileManager.default.removeItem(at: sheet)
        #expect(try project.run(["catalog", "--html", "sheet"]).status == 0)
    }

    /// The attack's own path: `derive diff --html` into the user's `docs/` holding a forged record.
    @Test func diffHtmlNeverReplacesAUsersPageUnderAForgedRecord() throws {
        guard DiffRepository.gitFound else { return }
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        let docs = repository.folder.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        let page = Data("<h1>my hand-written homepage</h1>\n".utf8)
        try page.write(to: docs.appendingPathComponent("index.html"))
        try Data("derive-report/1\n\(ContentDigests.digest(page)) index.html\n".utf8).write(to: docs.appendingPathComponent(".derive-report"))
        let result = try repository.run(["diff", "--html", "docs"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(try Data(contentsOf: docs.appendingPathComponent("index.html")) == page, "the user's page was replaced")
        #expect(result.stderr.contains("cannot prove it wrote"), "\(result.stderr)")
        // A report folder of its own is still written, and rewritten.
        #expect(try repository.run(["diff", "--html", "rep"]).status == 0)
        #expect(try repository.run(["diff", "--html", "rep"]).status == 0)
    }

    // MARK: F5: clean after a refused build in a fresh clone

    typealias Project = BuildSafetyAttackTests.Project

    /// A fresh clone (sources, committed outputs, lock; no state) whose first build is refused.
    static func refusedClone() throws -> Project {
        let original = try Project(index: false)
        defer { original.remove() }
        #expect(try original.run(["build", "-q"]).status == 0)
        let clone = try Project(index: false)
        for name in ["out", "derive.lock"] {
            try FileManager.default.copyItem(at: original.url(name), to: clone.url(name))
        }
        return clone
    }

    /// `clean` after a build refused by its plan: the empty state it left is no record, so the
    /// lock is the record as in a fresh clone; outputs matching their lines are removed, the
    /// user's file is kept, and nothing is left on disk without a record.
    @Test func cleanAfterARefusedBuildInAFreshCloneStrandsNothing() throws {
        let clone = try Self.refusedClone()
        defer { clone.remove() }
        try Data("user's own file".utf8).write(to: clone.url("out/landscape.jpg"))
        let build = try clone.run(["build", "-q"])
        #expect(build.status != 0, "the user's file at an output path refuses the build")
        let clean = try clone.run(["clean"])
        let out = text(clean.stdout)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(out.contains("Removed 4 outputs"), "\(out)\n\(clean.stderr)")
        #expect(try String(contentsOf: clone.url("out/landscape.jpg"), encoding: .utf8) == "user's own file")
        for name in Project.outputs where name != "landscape.jpg" {
            #expect(!clone.exists("out/\(name)"), "\(name) was left on disk without a record")
        }
        // The user's file moved away, the next build builds everything.
        try FileManager.default.removeItem(at: clone.url("out/landscape.jpg"))
        let again = try clone.run(["build", "-q"])
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// The same clone with a symbolic link at an output path: `clean` never follows it, exits 1,
    /// names it, and keeps the lock as the record of what it left.
    @Test func cleanAfterARefusedBuildKeepsTheLockForALinkAtAnOutputPath() throws {
        let clone = try Self.refusedClone()
        defer { clone.remove() }
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        let target = elsewhere.appendingPathComponent("mine.jpg")
        try FileManager.default.moveItem(at: clone.url("out/landscape.jpg"), to: target)
        try FileManager.default.createSymbolicLink(atPath: clone.url("out/landscape.jpg").path, withDestinationPath: target.path)
        let build = try clone.run(["build", "-q"])
        #expect(build.status != 0, "a link at an output path refuses the build")
        let clean = try clone.run(["clean"])
        #expect(clean.status == 1, "\(text(clean.stdout))\n\(clean.stderr)")
        #expect(clean.stderr.contains("landscape.jpg") && clean.stderr.contains("symbolic link"), "\(clean.stderr)")
        #expect(clone.exists("derive.lock"), "the lock is the record of what clean left")
        #expect(FileManager.default.fileExists(atPath: target.path), "the link's target was removed")
        #expect(text(clean.stdout).contains("derive.lock kept"), "\(text(clean.stdout))")
    }
}
