import Foundation
import Manifest
import Testing
import TestSupport

/// Attack 42c's L-g: derive init excluded a file whose name is not UTF-8 (`caf` + byte E9 +
/// `.jpg`) as `"images/caf\\xE9.jpg"`, which also excluded a valid file literally named
/// `caf\xE9.jpg` (with a backslash) added later: it was silently never built. A pattern that
/// spells a byte outside UTF-8 as `\xHH` names only a file whose name is not UTF-8.
@Suite(.ownThreads) struct InitNotUTF8ExcludeRound43Tests {
    /// `photos/caf<E9>.jpg`, a Latin-1 name, holding the portrait.
    static func writeLatin1(in photos: URL) throws {
        let portrait = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        let latin1 = Array(photos.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".jpg".utf8) + [0]
        let fd = latin1.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o644) } }
        #expect(fd >= 0)
        _ = portrait.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func thumbs(_ folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path).filter { $0.contains(".thumb.") }.sorted()
    }

    @Test func aValidNameLikeTheEscapeAddedLaterIsBuilt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("ok.jpg"))
        try Self.writeLatin1(in: photos)
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        #expect(manifest.contains("\"images/caf\\\\xE9.jpg\""), "\(manifest)")
        // Later, a real file whose UTF-8 name holds the four characters `\xE9`.
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("caf\\xE9.jpg"))
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let thumbs = try Self.thumbs(folder)
        #expect(thumbs.count == 2 && thumbs.contains { $0.hasPrefix("caf\\xE9.thumb.") }, "\(thumbs)")
    }

    /// Both there when init runs: the valid one is counted and built, the other excluded alone.
    @Test func bothNamesAtInitAreToldApart() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("caf\\xE9.jpg"))
        try Self.writeLatin1(in: photos)
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(text(result.stdout).contains("for 1 image in photos"), "\(text(result.stdout))")
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        #expect(manifest.contains("\"images/caf\\\\xE9.jpg\""), "\(manifest)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let thumbs = try Self.thumbs(folder)
        #expect(thumbs.count == 1 && thumbs[0].hasPrefix("caf\\xE9.thumb."), "\(thumbs)")
    }

    /// The pattern itself: `\xE9` names the byte, `[\]xE9` the four characters.
    @Test func aPatternSpellingAByteMatchesOnlyANameThatIsNotUTF8() throws {
        let spelled = try Glob("images/caf\\xE9.jpg"), literal = try Glob("images/caf[\\]xE9.jpg"), any = try Glob("images/*.jpg")
        #expect(!spelled.matches("images/caf\\xE9.jpg") && spelled.matchesNotUTF8("images/caf\\xE9.jpg"))
        #expect(literal.matches("images/caf\\xE9.jpg"))
        #expect(any.matches("images/caf\\xE9.jpg") && any.matchesNotUTF8("images/caf\\xE9.jpg"))
        // Lower case, or a byte UTF-8 spells as itself, is plain text.
        #expect(try Glob("a\\xe9.jpg").matches("a\\xe9.jpg") && Glob("a\\x41.jpg").matches("a\\x41.jpg"))
    }
}
