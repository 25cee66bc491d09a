import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 36a's M1 on `derive init`: it counted files the first build refuses from their bytes
/// and headers (a truncated JPEG, a file over the `bytes` limit, a PNG over `side`), and a file
/// whose name is not UTF-8 was excluded by a pattern that matched nothing, for the wrong reason.
/// README: the count init prints is what the first build builds, and that build exits 0.
@Suite(.ownThreads) struct InitBuildChecksRound37Tests {
    /// A PNG whose header says `width`×`height` (its pixel data is never reached).
    static func pngHeader(width: UInt32, height: UInt32) -> Data {
        func be32(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }
        func chunk(_ tag: String, _ payload: [UInt8]) -> [UInt8] {
            let body = Array(tag.utf8) + payload
            return be32(UInt32(payload.count)) + body + be32(crc32(body))
        }
        let ihdr = be32(width) + be32(height) + [8, 0, 0, 0, 0]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
                    + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", []))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    @Test func filesTheBuildRefusesFromTheirBytesAreExcludedSayingWhyAndTheBuildExitsZero() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("ok.jpg"))
        let portrait = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        // A copy cut short (an interrupted transfer).
        try portrait.prefix(10_000).write(to: photos.appendingPathComponent("cut.jpg"))
        // Over the 20 MiB default `bytes` limit (a JPEG with a long trailer).
        try (portrait + Data(count: 21 << 20)).write(to: photos.appendingPathComponent("huge.jpg"))
        // Over the 30 000 px default `side` limit, from its header.
        try Self.pngHeader(width: 40_000, height: 1).write(to: photos.appendingPathComponent("wide.png"))
        // A Latin-1 name (unzipped from an old archive): "caf\xE9.jpg".
        let latin1 = Array(photos.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".jpg".utf8) + [0]
        let fd = latin1.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o644) } }
        #expect(fd >= 0)
        _ = portrait.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)

        let result = try CLI.run(["init", "photos"], in: folder)
        let said = text(result.stdout)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(said.contains("for 1 image in photos"), "\(said)")
        for (name, why) in [("cut.jpg", "cut short"), ("huge.jpg", "the limit is 20971520 bytes"),
                            ("wide.png", "each side may be at most 30000 px"), ("caf\\xE9.jpg", "not valid UTF-8")] {
            let line = result.stderr.split(separator: "\n").first { $0.contains("photos/\(name) is not counted") }
            #expect(line?.contains(why) == true, "\(name): \(result.stderr)")
        }
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        #expect(manifest.contains("\"images/caf\\\\xE9.jpg\""), "\(manifest)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let site = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path)
        #expect(site.filter { $0.contains(".thumb.") }.count == 1, "\(site.sorted())")
        // The sources are untouched.
        #expect(try Data(contentsOf: photos.appendingPathComponent("cut.jpg")) == portrait.prefix(10_000))
    }
}
