import Foundation
import Testing
import TestSupport

/// Attack 13b, findings 1 and 2: a path an option names (`--junit`, `--html`, `--renders`,
/// `-o`, init's DIR) that goes through a symbolic link and then `..` was checked where the
/// kernel resolves it (`d/..` is the link target's parent) and written where the text reads
/// (`d/..` dropped): the manifest was replaced, a report landed in a public bucket. Such a path
/// is now refused before anything is written, naming both readings; a `..` that means the same
/// either way is still taken.
@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct OptionPathDotDotTests {
    static func link(_ folder: URL, _ name: String, to destination: String) throws {
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent(name).path, withDestinationPath: destination)
    }

    static func exists(_ folder: URL, _ relative: String) -> Bool {
        var info = stat()
        return lstat(folder.appendingPathComponent(relative).path, &info) == 0
    }

    /// Finding 1: `--junit d/../derive.yaml` (and the lock, a user's file) replaced that file, exit 0.
    @Test func junitThroughALinkAndDotDotIsRefused() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.change(commit: false)
        try repository.write("notes.txt", "mine\n")
        try FileManager.default.createDirectory(at: repository.folder.appendingPathComponent("elsewhere/deep"), withIntermediateDirectories: true)
        try Self.link(repository.folder, "d", to: "elsewhere/deep")
        for victim in ["derive.yaml", "derive.lock", "notes.txt"] {
            let before = try Data(contentsOf: repository.folder.appendingPathComponent(victim))
            let result = try repository.run(["diff", "--junit", "d/../\(victim)"])
            #expect(result.status == 1, "\(victim): \(result.stderr)")
            #expect(try Data(contentsOf: repository.folder.appendingPathComponent(victim)) == before, "\(victim) was replaced")
            #expect(!Self.exists(repository.folder, "elsewhere/\(victim)"), "\(victim)")
            #expect(result.stderr.contains("--junit d/../\(victim)") && result.stderr.contains("'..'"), "\(result.stderr)")
            // Both readings are named, so the user can pick one.
            #expect(result.stderr.contains("/elsewhere/\(victim)"), "\(result.stderr)")
        }
        // A `..` that reads the same either way, and a link with no `..` after it, are taken.
        try FileManager.default.createDirectory(at: repository.folder.appendingPathComponent("real"), withIntermediateDirectories: true)
        let plain = try repository.run(["diff", "--junit", "real/../junit.xml"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(Self.exists(repository.folder, "junit.xml"))
        let throughLink = try repository.run(["diff", "--junit", "d/junit.xml"])
        #expect(throughLink.status == 0, "\(throughLink.stderr)")
        #expect(Self.exists(repository.folder, "elsewhere/deep/junit.xml"))
    }

    /// Finding 2: `catalog --html lnk/../report` with `lnk -> out/sub` wrote the renders into
    /// the public bucket `out`, where serve published them.
    @Test func catalogReportThroughALinkAndDotDotIsRefused() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.folder.appendingPathComponent("out/sub"), withIntermediateDirectories: true)
        try Self.link(project.folder, "lnk", to: "out/sub")
        let result = try project.run(["catalog", "--html", "lnk/../report"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!Self.exists(project.folder, "out/report"), "the report went into the bucket")
        #expect(!Self.exists(project.folder, "report"))
        #expect(result.stderr.contains("--html lnk/../report") && result.stderr.contains("/out/report"), "\(result.stderr)")
    }

    /// Finding 2 for diff: `--html` and `--renders lnk/../DIR` put the old and new renders in `out/`.
    @Test func diffReportThroughALinkAndDotDotIsRefused() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.change(commit: false)
        try FileManager.default.createDirectory(at: repository.folder.appendingPathComponent("out/sub"), withIntermediateDirectories: true)
        try Self.link(repository.folder, "lnk", to: "out/sub")
        for option in ["--html", "--renders"] {
            let result = try repository.run(["diff", option, "lnk/../rep"])
            #expect(result.status == 1, "\(option): \(result.stderr)")
            #expect(!Self.exists(repository.folder, "out/rep"), "\(option): the renders went into the bucket")
            #expect(!Self.exists(repository.folder, "rep"), "\(option)")
            #expect(result.stderr.contains("\(option) lnk/../rep"), "\(result.stderr)")
        }
        // Through the link and then a folder, no `..`: the report would be in the bucket, refused as before.
        let inside = try repository.run(["diff", "--html", "lnk/rep"])
        #expect(inside.status == 1 && inside.stderr.contains("is inside bucket 'site'"), "\(inside.stderr)")
    }

    /// `process -o d/../x`: the check (not a link, FIFO or folder) looked at elsewhere/x, the write
    /// replaced ./x, here a symbolic link.
    @Test func processOutputThroughALinkAndDotDotIsRefused() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("a.jpg"))
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("elsewhere/deep"), withIntermediateDirectories: true)
        try Self.link(folder, "d", to: "elsewhere/deep")
        try Data("mine\n".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        try Self.link(folder, "out.jpg", to: "notes.txt")
        let result = try CLI.run(["process", "a.jpg", "image/resize,w_20", "-o", "d/../out.jpg"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: folder.appendingPathComponent("out.jpg").path)) == "notes.txt",
                "the link was replaced")
        #expect(!Self.exists(folder, "elsewhere/out.jpg"))
        #expect(result.stderr.contains("d/../out.jpg") && result.stderr.contains("'..'"), "\(result.stderr)")
    }

    /// `init lnk/../images`: init scanned the images where the kernel resolves it, and wrote the
    /// path into the manifest, whose loader reads `..` as text: another folder became the bucket.
    @Test func initFolderThroughALinkAndDotDotIsRefused() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("elsewhere/deep"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("elsewhere/images"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("elsewhere/images/a.jpg"))
        try Self.link(folder, "lnk", to: "elsewhere/deep")
        let result = try CLI.run(["init", "lnk/../images"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!Self.exists(folder, "derive.yaml"))
        #expect(result.stderr.contains("lnk/../images") && result.stderr.contains("'..'"), "\(result.stderr)")
    }
}
