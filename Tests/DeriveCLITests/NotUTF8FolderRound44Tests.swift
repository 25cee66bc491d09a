import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 43c's M-b: a folder whose name is not UTF-8 (`Caf` + byte E9, from an old zip) was
/// passed over in silence with its photos: init did not name it, build and check exited 0, and a
/// folder renamed so after a build had its outputs deleted ("built 0, deleted 2"). Such a folder
/// is named as a file with such a name is (init excludes it saying why; a rule that would walk
/// into it fails, exit 1), and it is never taken for an empty one: the outputs of sources gone
/// from its bucket are kept while it is there.
@Suite(.ownThreads) struct NotUTF8FolderRound44Tests {
    /// `parent/Caf<E9>` (a Latin-1 name), as the bytes of its path with a NUL.
    static func latin1(_ parent: URL) -> [CChar] {
        (Array(parent.path.utf8) + Array("/Caf".utf8) + [0xE9, 0]).map { CChar(bitPattern: $0) }
    }

    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos}
          out: {path: out}
        derivatives:
          - name: small
            from: photos/**/*.jpg
            to: out/{dir}/{name}.jpg
            process: image/resize,w_40
        """

    static func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        let cafe = folder.appendingPathComponent("photos/Cafe")
        try FileManager.default.createDirectory(at: cafe, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/home.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: cafe.appendingPathComponent("terrace.jpg"))
        try Self.manifest.write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        return folder
    }

    @Test func aFolderRenamedToANameThatIsNotUTF8KeepsItsOutputsAndFailsTheBuild() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try CLI.run(["build"], in: folder)
        #expect(first.status == 0, "\(first.stderr)")
        let kept = folder.appendingPathComponent("out/Cafe/terrace.jpg")
        let bytes = try Data(contentsOf: kept)

        let photos = folder.appendingPathComponent("photos")
        #expect(rename(photos.appendingPathComponent("Cafe").path, Self.latin1(photos)) == 0)
        let build = try CLI.run(["build"], in: folder)
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 1, "\(said)")
        #expect(said.contains("photos/Caf\\xE9") && said.contains("not valid UTF-8"), "\(said)")
        #expect(!said.contains("deleted"), "\(said)")
        #expect(try Data(contentsOf: kept) == bytes)
        let check = try CLI.run(["check"], in: folder)
        #expect(check.status != 0, "\(text(check.stdout))")
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.stderr.contains("photos/Caf\\xE9") && text(plan.stdout).contains("1 kept as built"), "\(text(plan.stdout)) \(plan.stderr)")

        // Renamed back: up to date again, the same bytes.
        #expect(rename(Self.latin1(photos), photos.appendingPathComponent("Cafe").path) == 0)
        let again = try CLI.run(["build"], in: folder)
        #expect(again.status == 0, "\(text(again.stdout)) \(again.stderr)")
        #expect(try Data(contentsOf: kept) == bytes)
        #expect(try CLI.run(["check"], in: folder).status == 0)
    }

    /// An `exclude:` spelling the folder's bytes (`Caf\xE9/**`) takes it away; a UTF-8 folder
    /// literally named `Caf\xE9` (with a backslash) is not excluded by it.
    @Test func anExcludeSpellingItsBytesTakesItAwayAndOnlyIt() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        #expect(rename(photos.appendingPathComponent("Cafe").path, Self.latin1(photos)) == 0)
        let literal = photos.appendingPathComponent("Caf\\xE9")
        try FileManager.default.createDirectory(at: literal, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: literal.appendingPathComponent("bar.jpg"))
        let excluded = Self.manifest + "\n    exclude: [\"photos/Caf\\\\xE9/**\"]\n"
        try excluded.write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/Caf\\xE9/bar.jpg").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/home.jpg").path))
    }

    @Test func initNamesTheFolderAndExcludesIt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("home.jpg"))
        #expect(mkdir(Self.latin1(photos), 0o755) == 0)
        let path = Array(Self.latin1(photos).dropLast()) + Array("/terrace.jpg".utf8CString)
        let fd = path.withUnsafeBufferPointer { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o644) }
        #expect(fd >= 0)
        let portrait = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        _ = portrait.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let result = try CLI.run(["init", "photos"], in: folder)
        let said = text(result.stdout) + result.stderr
        #expect(result.status == 0, "\(said)")
        #expect(said.contains("photos/Caf\\xE9") && said.contains("not valid UTF-8"), "\(said)")
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        #expect(manifest.contains("\"images/Caf\\\\xE9/**\""), "\(manifest)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
    }

    /// Attack 44a's H1: a pattern that names the folder (`Café/*.jpg`, `Caf?/*.jpg`) or the file
    /// (`caf?.jpg`) never matches its spelling once renamed to Latin-1 (`Caf\xE9`): the outputs
    /// were deleted without a word and check passed. Each `\xHH` run stands for the characters it
    /// may have been: the rule fails and the outputs stay.
    @Test(arguments: ["photos/Café/*.jpg", "photos/Caf?/*.jpg", "photos/caf?.jpg"])
    func aPatternThatNamedTheRenamedEntryStillSeesIt(_ from: String) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        let file = from.hasSuffix("caf?.jpg")
        let named = file ? photos.appendingPathComponent("café.jpg") : photos.appendingPathComponent("Café/t1.jpg")
        try FileManager.default.createDirectory(at: named.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: named)
        try Self.manifest.replacingOccurrences(of: "photos/**/*.jpg", with: from).replacingOccurrences(of: "out/{dir}/{name}.jpg", with: "out/{name}.jpg")
            .write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let first = try CLI.run(["build"], in: folder)
        #expect(first.status == 0, "\(first.stderr)")
        let output = folder.appendingPathComponent(file ? "out/café.jpg" : "out/t1.jpg")
        let bytes = try Data(contentsOf: output)
        // `Café` → `Caf<E9>`, `café.jpg` → `caf<E9>.jpg`.
        let latin1 = file ? (Array(photos.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".jpg".utf8) + [0]).map { CChar(bitPattern: $0) } : Self.latin1(photos)
        #expect(rename(named.deletingLastPathComponent().path == photos.path ? named.path : named.deletingLastPathComponent().path, latin1) == 0)
        let build = try CLI.run(["build"], in: folder)
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 1 && said.contains("not valid UTF-8") && !said.contains("deleted"), "\(from): \(said)")
        #expect(try Data(contentsOf: output) == bytes)
        #expect(try CLI.run(["check"], in: folder).status != 0)
    }
}
