import Foundation
import Testing
import TestSupport

/// Attack round 28, finding 5: a report folder (`diff --html DIR`, `catalog --html DIR`) whose
/// `images/` is a bucket's folder was made, with that bucket folder, before it was refused, and the
/// refusal called `DIR/images` the report folder; a file or a dangling link where the report
/// folder goes gave Foundation's error dump instead of a sentence. Option paths in these messages
/// are escaped as source names are.
@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct ReportFolderRound28Tests {
    /// The diff repository with a bucket at `rep/images` (not made yet), committed.
    static func repository() throws -> DiffRepository {
        let repository = try DiffRepository()
        try repository.write("derive.yaml", DiffRepository.manifestOne.replacingOccurrences(
            of: "  site: {path: out, acl: public-read}\n", with: "  site: {path: out, acl: public-read}\n  drop: {path: rep/images, acl: private}\n"))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "drop")
        return repository
    }

    /// The folder's real path (the temporary folder may be reached through a link).
    static func real(_ url: URL) -> String { url.resolvingSymlinksInPath().path }

    @Test(arguments: [["diff", "HEAD", "--html", "rep"], ["catalog", "--html", "rep"]])
    func aReportFolderWhoseImagesAreABucketIsRefusedBeforeAnythingIsMade(_ arguments: [String]) throws {
        let repository = try Self.repository()
        defer { repository.remove() }
        let result = try repository.run(arguments)
        #expect(result.status == 1, "\(result.stderr)")
        let rep = repository.folder.appendingPathComponent("rep")
        #expect(!FileManager.default.fileExists(atPath: rep.path), "\(arguments) made rep/: \(result.stderr)")
        // The report folder is the one given; its images/ is what lies in the bucket.
        let given = Self.real(repository.folder) + "/rep"
        #expect(result.stderr.contains("the report folder \(given) would keep its images in \(given)/images, which is inside bucket 'drop'"), "\(result.stderr)")
        #expect(!result.stderr.contains("the report folder \(given)/images"), "\(result.stderr)")
    }

    /// A file, a dangling link, or a file on the way where the report folder goes: a sentence
    /// that names it and the fix, never Foundation's error; the file and the link are kept.
    @Test(arguments: [["diff", "HEAD", "--html"], ["catalog", "--html"]])
    func aFileOrADanglingLinkWhereTheReportFolderGoesIsNamedInWords(_ command: [String]) throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let here = Self.real(repository.folder)
        try repository.write("afile", "a user's file\n")
        try FileManager.default.createSymbolicLink(atPath: repository.folder.appendingPathComponent("dangling").path, withDestinationPath: "nowhere")
        for (given, said) in [("afile", "\(here)/afile is a file, not a folder"), ("afile/rep", "\(here)/afile is a file, not a folder"),
                              ("dangling", "\(here)/dangling is a symbolic link (to nowhere), not a folder")] {
            let result = try repository.run(command + [given])
            #expect(result.status == 1, "\(given): \(result.stderr)")
            #expect(result.stderr.contains(said), "\(given): \(result.stderr)")
            #expect(!result.stderr.contains("NSCocoaErrorDomain") && !result.stderr.contains("Error Domain"), "\(given): \(result.stderr)")
        }
        #expect(try String(contentsOf: repository.folder.appendingPathComponent("afile"), encoding: .utf8) == "a user's file\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: repository.folder.appendingPathComponent("dangling").path) == "nowhere")
        #expect(!FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("nowhere").path))
    }

    /// `process -o FILE/x` says the file is no folder; the option path's ESC and U+202E are
    /// escaped in every such message (`--junit`, `--html`, `-o`).
    @Test func optionPathsAreNamedInWordsAndEscaped() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let here = Self.real(repository.folder)
        try repository.write("afile", "a user's file\n")
        let process = try repository.run(["process", "src/landscape.jpg", "image/resize,w_10", "-o", "afile/x.jpg"])
        #expect(process.status == 1)
        #expect(process.stderr.contains("\(here)/afile is a file, not a folder"), "\(process.stderr)")
        #expect(!process.stderr.contains("Error Domain"), "\(process.stderr)")
        let odd = "x\u{1B}[31mRED\u{1B}[0m\u{202E}.xml"
        try repository.write(odd, "hi\n")
        for arguments in [["diff", "HEAD", "--junit", odd], ["diff", "HEAD", "--html", odd], ["catalog", "--html", odd],
                          ["process", "src/landscape.jpg", "image/resize,w_10", "-o", odd + "/x.jpg"]] {
            let result = try repository.run(arguments)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("\u{1B}") && !result.stderr.contains("\u{202E}"), "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("x\\u{1B}[31mRED\\u{1B}[0m\\u{202E}.xml"), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("Error Domain"), "\(arguments): \(result.stderr)")
        }
        #expect(try String(contentsOf: repository.folder.appendingPathComponent(odd), encoding: .utf8) == "hi\n")
    }
}
