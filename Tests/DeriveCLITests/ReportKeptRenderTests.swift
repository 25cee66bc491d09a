import Foundation
import Planner
import Testing
import TestSupport

/// Issues #9 and #13: a user's file at an image name inside Derive's own (sealed) report folder.
/// It is kept, as before, but the page never shows it as Derive's render: the render goes under
/// another free name, the kept file is named on standard error with the fix, and the exit status
/// is what it would be without it (0 here).
@Suite(.ownThreads, .serialized) struct ReportKeptRenderTests {
    /// Every `images/…` the page shows, each with the digest `.derive-report` records for it.
    static func shownImages(_ report: URL) throws -> [(name: String, recorded: String?)] {
        let page = try String(contentsOf: report.appendingPathComponent("index.html"), encoding: .utf8)
        let record = try String(contentsOf: report.appendingPathComponent(".derive-report"), encoding: .utf8)
        var recorded: [String: String] = [:]
        for line in record.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].count == 64 { recorded[String(parts[1])] = String(parts[0]) }
        }
        let regex = try NSRegularExpression(pattern: "images/[^\"' <>)]+")
        let names = Set(regex.matches(in: page, range: NSRange(page.startIndex..., in: page)).map { String(page[Range($0.range, in: page)!]) })
        return names.sorted().map { ($0, recorded[$0]) }
    }

    /// Replaces every render of the report with a user's file of its own bytes; returns them.
    static func plantUsersFiles(_ report: URL) throws -> [String: Data] {
        var planted: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: report.appendingPathComponent("images").path) {
            let data = Data("the user's own file \(name)\n".utf8)
            try data.write(to: report.appendingPathComponent("images/" + name))
            planted["images/" + name] = data
        }
        return planted
    }

    static func expectKeptAndNamed(_ report: URL, _ planted: [String: Data], _ result: CLI.Result) throws {
        #expect(result.status == 0, "\(result.stderr)")
        for (name, data) in planted {
            #expect(try Data(contentsOf: report.appendingPathComponent(name)) == data, "\(name) was replaced")
            #expect(result.stderr.contains(name) && result.stderr.contains("kept"), "\(name) not named: \(result.stderr)")
        }
        #expect(result.stderr.contains("move it away"), "\(result.stderr)")
        let shown = try shownImages(report)
        #expect(!shown.isEmpty)
        for (name, recorded) in shown {
            #expect(planted[name] == nil, "the page shows the user's \(name) as Derive's render")
            let bytes = try Data(contentsOf: report.appendingPathComponent(name))
            #expect(recorded == ContentDigests.digest(bytes), "\(name) shown but not a render this report recorded")
        }
    }

    @Test func catalogNeverShowsAUsersFileAsItsRender() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        #expect(try project.run(["catalog", "--html", "sheet"]).status == 0)
        let report = project.folder.appendingPathComponent("sheet")
        let planted = try Self.plantUsersFiles(report)
        #expect(!planted.isEmpty)
        try Self.expectKeptAndNamed(report, planted, try project.run(["catalog", "--html", "sheet"]))
        // Run again: the renders under their other names are Derive's, rewritten; the user's files stay.
        try Self.expectKeptAndNamed(report, planted, try project.run(["catalog", "--html", "sheet"]))
    }

    @Test func diffNeverShowsAUsersFileAsItsRender() throws {
        guard DiffRepository.gitFound else { return }
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        #expect(try repository.run(["diff", "--html", "rep"]).status == 0)
        let report = repository.folder.appendingPathComponent("rep")
        let planted = try Self.plantUsersFiles(report)
        #expect(!planted.isEmpty)
        try Self.expectKeptAndNamed(report, planted, try repository.run(["diff", "--html", "rep"]))
    }
}
