import Foundation
import Testing
import TestSupport

/// Attack 27w's finding 4: with `state: .` the state folder is the project folder, and
/// `derive catalog --html` and `derive diff --html/--junit` refused every report path in the
/// project, saying it "is inside the state folder". Only Derive's own names there are the
/// state's: a report at or under one is refused, any other path is accepted.
@Suite(.ownThreads) struct ReportInStateDotShared28Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nstyles:\n  small: image/resize,w_50/format,webp\n"
        + "derivatives:\n  - name: r\n    from: src/*.jpg\n    styles: [small]\n    to: out/{name}.{style}.{ext}\n"

    static func project(state: String?) throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data((manifest + (state.map { "state: \($0)\n" } ?? "")).utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    @Test(arguments: ["catalog", "docs/review"])
    func catalogWithStateDotAcceptsAFolderOfTheProject(_ report: String) throws {
        let folder = try Self.project(state: ".")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let result = try CLI.run(["catalog", "--html", report], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("inside the state folder"), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(report + "/index.html").path))
    }

    /// Derive's own names in the state folder stay refused, and so does any path inside a state
    /// folder that does not hold the manifest.
    @Test(arguments: ["build-renders/report", "serve-cache", "state.sqlite-journal", "serve-uploads/x"])
    func catalogWithStateDotRefusesDerivesOwnNames(_ report: String) throws {
        let folder = try Self.project(state: ".")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["catalog", "--html", report], in: folder)
        #expect(result.status == 1, "\(report)")
        #expect(result.stderr.contains("state folder"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(report + "/index.html").path))
    }

    @Test func aReportInsideAStateFolderOfItsOwnIsStillRefused() throws {
        let folder = try Self.project(state: "mystate")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let result = try CLI.run(["catalog", "--html", "mystate/report"], in: folder)
        #expect(result.status == 1)
        #expect(result.stderr.contains("inside the state folder"), "\(result.stderr)")
    }

    /// The README's CI command: `diff --html report --junit report/junit.xml`, with `state: .`.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git")))
    func diffWithStateDotWritesItsReports() throws {
        let folder = try Self.project(state: ".")
        defer { try? FileManager.default.removeItem(at: folder) }
        func git(_ arguments: String...) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            process.arguments = ["-c", "user.name=test", "-c", "user.email=test@example.com"] + arguments
            process.currentDirectoryURL = folder
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        try git("init", "-q", ".")
        try git("add", "-A")
        try git("commit", "-qm", "one")
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let path = folder.appendingPathComponent("derive.yaml")
        try Data(try String(contentsOf: path, encoding: .utf8).replacingOccurrences(of: "w_50", with: "w_60").utf8).write(to: path)
        let result = try CLI.run(["diff", "HEAD", "derive.yaml", "--html", "report", "--junit", "report/junit.xml"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report/index.html").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report/junit.xml").path))
        let inside = try CLI.run(["diff", "HEAD", "derive.yaml", "--junit", "serve-cache/junit.xml"], in: folder)
        #expect(inside.status == 1)
        #expect(inside.stderr.contains("state folder"), "\(inside.stderr)")
    }
}
