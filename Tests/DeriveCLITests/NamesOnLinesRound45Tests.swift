import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import derive

/// Attack 44a's L1, L4 and L6: what the success lines and the watch say about names.
/// - L4: `process -o` (and its default `NAME.derived.EXT` line), `catalog --html DIR` and `validate`
///   printed the names they were given raw (ESC recoloured the terminal, a line feed split the
///   line); `sign --endpoint` took any text (`not a url`, `ftp://x`, `http://h/p?q=1#f`) and printed
///   a URL that led nowhere.
/// - L1: under `build --watch`, a folder renamed to a name that is not UTF-8 kept its old path:
///   files put in it were reported as `photos/Cafe/new.jpg`.
/// - L6: init over photos that all sit in such a folder said "found no images … add some".
@Suite(.ownThreads) struct NamesOnLinesRound45Tests {
    static let hostile = "o\u{1B}[31m\nNEW"

    @Test func processNamesItsOutputEscaped() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let landscape = CLI.samples.appendingPathComponent("landscape.jpg").path
        let named = try CLI.run(["process", landscape, "image/resize,w_10", "-o", Self.hostile + ".jpg"], in: folder)
        #expect(named.status == 0, "\(said(named))")
        TerminalEscapesRound44Tests.expectEscaped(said(named))
        #expect(named.stderr.contains("o\\u{1B}[31m\\u{A}NEW.jpg: 10x7 jpg"), "\(named.stderr.debugDescription)")
        // The default name comes from the source's.
        let source = folder.appendingPathComponent(Self.hostile + ".jpg")
        #expect(FileManager.default.fileExists(atPath: source.path))
        let derived = try CLI.run(["process", source.path, "image/resize,w_8"], in: folder)
        #expect(derived.status == 0, "\(said(derived))")
        TerminalEscapesRound44Tests.expectEscaped(said(derived))
        #expect(derived.stderr.contains("o\\u{1B}[31m\\u{A}NEW.derived.jpg: 8x"), "\(derived.stderr.debugDescription)")
    }

    @Test func catalogAndValidateNameTheirFilesEscaped() throws {
        let project = try CatalogProject(CatalogProject.manifest)
        defer { project.remove() }
        let html = Self.hostile
        let catalog = try project.run(["catalog", "--html", html])
        #expect(catalog.status == 0, "\(said(catalog))")
        TerminalEscapesRound44Tests.expectEscaped(said(catalog))
        #expect(said(catalog).contains("Catalogue: o\\u{1B}[31m\\u{A}NEW/index.html"), "\(said(catalog).debugDescription)")

        let manifest = project.folder.appendingPathComponent(Self.hostile + ".yaml")
        try FileManager.default.copyItem(at: project.folder.appendingPathComponent("derive.yaml"), to: manifest)
        let valid = try project.run(["validate", "./" + Self.hostile + ".yaml"])
        #expect(valid.status == 0, "\(said(valid))")
        TerminalEscapesRound44Tests.expectEscaped(said(valid))
        #expect(said(valid).contains("o\\u{1B}[31m\\u{A}NEW.yaml: valid"), "\(said(valid).debugDescription)")
        try Data("version: 1\nbuckets: [oops\n".utf8).write(to: manifest)
        let invalid = try project.run(["validate", "./" + Self.hostile + ".yaml"])
        #expect(invalid.status == 1, "\(said(invalid))")
        TerminalEscapesRound44Tests.expectEscaped(said(invalid))
    }

    static func signing() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try Data("version: 1\naccess_keys:\n  - id: AKIDTEST\n    secret_env: DERIVE_TEST_SIGN_SECRET\nbuckets:\n  photos: {path: photos}\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    @Test(arguments: ["not a url", "", "ftp://x", "http://[::1", "http://h/p?q=1", "http://h/p#f", "http://u:p@h", "http://h:0",
                      "http://h:70000", "http://", "h:8080", "http://h/\u{1B}[31m", "https://h\nx"])
    func signRefusesAnEndpointThatIsNotAServersAddress(endpoint: String) throws {
        let folder = try Self.signing()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["sign", "photos/a.jpg", "--endpoint", endpoint], in: folder, environment: ["DERIVE_TEST_SIGN_SECRET": "s"])
        #expect(result.status == 64, "\(endpoint.debugDescription): \(result.status) \(said(result))")
        #expect(result.stdout.isEmpty, "\(said(result))")
        #expect(result.stderr.contains("--endpoint"), "\(result.stderr)")
        TerminalEscapesRound44Tests.expectEscaped(said(result))
    }

    @Test(arguments: ["http://127.0.0.1:8080", "https://oss.example.com", "HTTP://H:9000/", "https://cdn.example.com/oss", "http://[::1]:8080"])
    func signTakesAServersAddress(endpoint: String) throws {
        let folder = try Self.signing()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["sign", "photos/a.jpg", "--endpoint", endpoint], in: folder, environment: ["DERIVE_TEST_SIGN_SECRET": "s"])
        #expect(result.status == 0, "\(endpoint): \(said(result))")
        let url = text(result.stdout).trimmingCharacters(in: .newlines)
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        #expect(url.hasPrefix(base + "/photos/a.jpg?"), "\(url)")
    }

    /// `parent/Caf<E9>` as the bytes of its path with a NUL.
    static func latin1(_ parent: URL) -> [CChar] { NotUTF8FolderRound44Tests.latin1(parent) }

    @Test func initOverPhotosOnlyInAFolderThatIsNotUTF8NamesIt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos.appendingPathComponent("Cafe"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: photos.appendingPathComponent("Cafe/terrace.jpg"))
        #expect(rename(photos.appendingPathComponent("Cafe").path, Self.latin1(photos)) == 0)
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 1, "\(said(result))")
        #expect(result.stderr.contains("photos/Caf\\xE9") && result.stderr.contains("not valid UTF-8") && result.stderr.contains("convmv"), "\(result.stderr)")
        #expect(!result.stderr.contains("add some") && !result.stderr.contains("exclude:"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
    }

    /// The watcher itself: the renamed folder is named by its bytes, and no later change in it is
    /// reported under its old path (the build never walks into it; renamed back, it is watched again).
    @Test func aFolderRenamedToANameThatIsNotUTF8IsNamedByItsBytesAndNotByItsOldPath() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos.appendingPathComponent("Cafe"), withIntermediateDirectories: true)
        let watcher = try FolderWatcher(skipping: [])
        try watcher.watch(photos.path, recursive: true)
        #expect(watcher.count == 2)
        #expect(rename(photos.appendingPathComponent("Cafe").path, Self.latin1(photos)) == 0)
        let renamed = try watcher.read().map(\.path)
        #expect(renamed.contains(photos.path + "/Caf\\xE9"), "\(renamed)")
        #expect(!renamed.contains { $0.contains("\u{FFFD}") }, "\(renamed)")
        #expect(watcher.count == 1, "the old path's watch is dropped")
        // A file written in it now: nothing is reported under photos/Cafe.
        let path = Array(Self.latin1(photos).dropLast()) + Array("/new.jpg".utf8CString)
        let fd = path.withUnsafeBufferPointer { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o644) }
        #expect(fd >= 0)
        close(fd)
        let later = try watcher.read().map(\.path)
        #expect(!later.contains { $0.contains("/Cafe") }, "\(later)")
        // Renamed back: watched again under its name, and its files are reported there.
        #expect(rename(Self.latin1(photos), photos.appendingPathComponent("Cafe").path) == 0)
        let back = try watcher.read().map(\.path)
        #expect(back.contains(photos.path + "/Cafe/new.jpg"), "\(back)")
        #expect(watcher.count == 2)
    }
}
