import Foundation
@testable import Imaging
import ImagingCore
import ProcessLanguage
import Testing
import TestSupport

/// Issue #10, attack 12's G2 (remainder): a source and its watermark images, each under a raised
/// byte limit but together over what one render sends its worker, were read whole before the
/// render refused them. Their sizes, from their files, are checked together before any is read.
@Suite(.ownThreads) struct EngineRound14Tests {
    /// Objects known by size only: reading one is a test failure (the check must not need the bytes).
    struct SizedObjects: ObjectResolver {
        let sizes: [String: Int]
        func object(_ key: String) throws -> Data {
            Issue.record("the object '\(key)' was read")
            return Data()
        }
        func objectSize(_ key: String) -> Int? { sizes[key] }
    }

    static func marks(_ keys: [String]) throws -> Pipeline {
        try Pipeline.parse("image/" + keys.map { "watermark,image_\(Base64URL.encode($0))" }.joined(separator: "/"))
    }

    static let raised = Limits(maxBytes: 1_000_000_000)

    @Test func aSourceThatDoesNotFitBesideItsMarksIsRefusedNamingThemAll() throws {
        let inputs = try RenderInputs(try Self.marks(["w500.png", "w1.png"]),
                                      resolver: SizedObjects(sizes: ["w500.png": 524_288_000, "w1.png": 1000]), limits: Self.raised)
        #expect(inputs.marksBytes == 524_289_000)
        #expect(inputs.maxSourceBytes == Limits.renderBytes - 524_289_000)
        // Exactly what one render takes: it fits.
        try inputs.checkSource("p.png", bytes: Limits.renderBytes - 524_289_000)
        let error = try #require(throws: ProcessError.self) { try inputs.checkSource("p.png", bytes: Limits.renderBytes - 524_289_000 + 1) }
        #expect(error.code == .imageTooLarge && error.ec == "0040-00000012", "\(error)")
        #expect(error.message.contains("the source 'p.png' (548404249 bytes) and its watermark images 'w500.png' (524288000 bytes), 'w1.png' (1000 bytes) are 1072693249 bytes together"), "\(error)")
        #expect(error.message.contains("one render takes at most 1072693248 bytes of source and watermark images, whatever --max-bytes says"), "\(error)")
        #expect(error.message.contains("use smaller files or fewer watermark images"), "\(error)")
        // The refusal of a read that found the file over the bound says the same.
        #expect("\(inputs.sourceRefusal("p.png", bytes: 600_000_000))".contains("are 1124289000 bytes together"))
    }

    @Test func aSourceOverTheByteLimitAloneKeepsItsOwnMessage() throws {
        let inputs = try RenderInputs(try Self.marks(["w.png"]), resolver: SizedObjects(sizes: ["w.png": 100]), limits: .oss)
        let error = try #require(throws: ProcessError.self) { try inputs.checkSource("big.png", bytes: 20_971_521) }
        #expect(error.message == "the source is 20971521 bytes; the limit is 20971520 bytes (raise it with --max-bytes)", "\(error)")
        #expect(inputs.maxSourceBytes == 20_971_520)
    }

    @Test func aMarkOverTheByteLimitIsRefusedFromItsSizeAndAMissingOneIsLeftToTheRender() throws {
        let error = try #require(throws: ProcessError.self) {
            _ = try RenderInputs(try Self.marks(["w25.png"]), resolver: SizedObjects(sizes: ["w25.png": 26_214_400]), limits: .oss)
        }
        #expect(error.ec == "0040-00000012" && error.message.contains("watermark: the image 'w25.png' is 26214400 bytes"), "\(error)")
        let missing = try RenderInputs(try Self.marks(["gone.png"]), resolver: SizedObjects(sizes: [:]), limits: Self.raised)
        #expect(missing.marks.isEmpty && missing.maxSourceBytes == 1_000_000_000)
    }

    /// `--bucket-root`'s resolver sizes a mark from the file (a sparse 700 MB file costs nothing)
    /// and, like its reads, never through a symbolic link.
    @Test func theFolderResolverSizesObjectsWithoutReadingOrFollowingLinks() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("derive-sizes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let big = folder.appendingPathComponent("sub/big.png")
        _ = FileManager.default.createFile(atPath: big.path, contents: nil)
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 700_000_000)
        try handle.close()
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("link.png").path, withDestinationPath: big.path)
        let resolver = FolderResolver(root: folder.path, limits: Self.raised)
        #expect(resolver.objectSize("sub/big.png") == 700_000_000)
        #expect(resolver.objectSize("link.png") == nil)
        #expect(resolver.objectSize("none.png") == nil)
        #expect(resolver.objectSize("../x.png") == nil)
    }
}

/// Issue #10, attack 14's E1 and E2: costs the estimate did not see.
@Suite(.ownThreads) struct EngineRound14CostTests {
    /// `png` with an eXIf chunk (a big-endian TIFF header, then `bytes` zeros) after its IHDR.
    static func withExif(_ png: Data, bytes: Int) -> Data {
        var body = Data([0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8])
        body.append(Data(count: bytes))
        var chunk = Data()
        let length = UInt32(body.count)
        chunk.append(contentsOf: [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)])
        var typed = Data("eXIf".utf8)
        typed.append(body)
        chunk.append(typed)
        let crc = crc32(typed)
        chunk.append(contentsOf: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        return png.prefix(33) + chunk + png.dropFirst(33)
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { raw in
            crcTable.withUnsafeBufferPointer { table in
                var c: UInt32 = 0xFFFF_FFFF
                for byte in raw { c = table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
                return c ^ 0xFFFF_FFFF
            }
        }
    }

    /// E1: libpng reads eXIf a byte at a time (a 100×100 PNG with 15 MiB of it: 2.4 s of CPU, 9 to
    /// 22 s of a loaded machine, estimated as a 100×100 image). An eXIf over 64 KiB is left out
    /// of what libvips reads: 40 MiB of it renders well within a 2 s deadline (it cost about 6 s
    /// of CPU), the same pixels as without it; `info` still gives the object's size.
    @Test func aPNGWithAnOversizedExifChunkRendersAsIfItHadNone() throws {
        let plain = try Fixtures.solid(100, 100, Fixtures.red, as: .png)
        let exif = Self.withExif(plain, bytes: 40 << 20)
        let limits = Limits(maxBytes: 64 << 20, renderSeconds: 2)
        let pipeline = try Pipeline.parse("image/resize,w_50/format,png")
        let rendered = try Engine(limits: limits).render(exif, pipeline)
        #expect(rendered.bytes == (try Engine(limits: limits).render(plain, pipeline)).bytes)
        let info = String(decoding: try Engine(limits: limits).info(exif).bytes, as: UTF8.self)
        #expect(info.contains("\"FileSize\": {\"value\": \"\(exif.count)\"}"), "\(info)")
        // EXIF of an ordinary size is read as before.
        #expect(PNGExif.withoutOversized(Self.withExif(plain, bytes: 1000)) == nil)
        #expect(PNGExif.withoutOversized(exif)?.count == plain.count)
    }

    /// E2: libheif decodes a HEIC or AVIF whole, whatever the chain streams: a valid 9000² AVIF
    /// (2 061 bytes, black) rendering `resize,w_10` was estimated at 3 KiB, ran out of the
    /// worker's cap and was called corrupt (EC 0040-00000005). Its decode is counted: refused
    /// by the memory limit, naming it.
    @Test func aLargeAVIFsWholeDecodeIsCountedInTheMemoryEstimate() throws {
        let avif = try #require(Data(base64Encoded: Self.blackAVIF9000.joined()))
        let limits = Limits(maxWork: 100_000_000_000)
        let error = try #require(throws: ProcessError.self) { _ = try Engine(limits: limits).render(avif, try Pipeline.parse("image/resize,w_10")) }
        #expect(error.code == .imageTooLarge && error.ec == "0040-00000009", "\(error)")
        #expect(error.message.contains("the chain would hold about") && error.message.contains("--max-memory"), "\(error)")
        #expect(LoaderFootprint.heifMemory(.avif, width: 9000, height: 9000, bands: 3) >= 597e6)
        #expect(LoaderFootprint.heifMemory(.png, width: 9000, height: 9000, bands: 3) == 0)
    }

    /// E4a: a progressive JPEG's "Insufficient memory (case 4)" came with only the engine's lead
    /// before it, which the ImageTooLarge message then quoted: "(the source image is corrupt or truncated: ...)".
    @Test func runningOutOfMemoryNeverQuotesCorrupt() throws {
        let memory = ProcessError(.badRequest, ec: "0040-00000005", "the source image is corrupt or truncated: Insufficient memory (case 4)")
        let mapped = try #require(ResourceExhaustion.error(for: memory, limits: .oss))
        #expect(mapped.message.hasPrefix("the render ran out of memory inside libvips (Insufficient memory (case 4)); the memory limit is 384 MiB"), "\(mapped)")
        #expect(!mapped.message.contains("corrupt"), "\(mapped)")
    }

    /// `vips black m.avif[compression=av1,effort=0] 9000 9000 --bands 3` (attack 14's m.avif).
    static let blackAVIF9000 = [
        "AAAAHGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZgAAASttZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA",
        "AA5waXRtAAAAAAABAAAANGlsb2MAAAAAREAAAgABAAAAAAFPAAEAAAAAAAAGAAACAAAAAAdPAAEAAAAAAAAAvgAAADhpaW5mAAAA",
        "AAACAAAAFWluZmUCAAAAAAEAAGF2MDEAAAAAFWluZmUCAAABAAIAAEV4aWYAAAAAamlwcnAAAABLaXBjbwAAABNjb2xybmNseAAC",
        "AAIABoAAAAAMYXYxQ4EfDAAAAAAUaXNwZQAAAAAAACMoAAAjKAAAABBwaXhpAAAAAAMICAgAAAAXaXBtYQAAAAAAAAABAAEEgYID",
        "hAAAABppcmVmAAAAAAAAAA5jZHNjAAIAAQABAAAGxm1kYXQSAAoLH/djJ4yfggQEDQgy7gsTyAAKKKKFAABP9lheMd44FVjq6mwn",
        "+Me5wXXPiBn2jDxAJWKwF2KwQ/uRHFcGZGfhoXOns+jsKijbNCR7P97aWA9uFwZHuQvvy355ciOPgCFj+rba7nuYEfBP9lheMd44",
        "FVjq6mwn+Me5wXXPiBn2jDxAJWKwF2KwQ/uRHFcGZGfhoXOns+jsKijbNCR7P97aWA9uFwZHuQvvy355ciOPgCFj+rba7nuYEfBP",
        "9lheMd44FVjq6mwn+Me5wXXPiBn2jDxAJWKwF2KwQ/uRHFcGZGfhoXOns+jsKijbNCR7P97aWA9uFwZHuQvvy355ciOPgCFj+rba",
        "7nuYEfBs9lheMd44FVjq6mwn+Me5wXXPiBn2jDxAJWKwF2KwQ/uRHFcGZGfhoXOns+jsKij1TMJ+sLRS0l1BIf8SXm56m1wX3EU6",
        "hj1IWrub9VcI7TUHV3/pFdKb4EyRSGrl3szeGa8tQ6gP08+/H2W3Mk/2WF4x3jgVWOrqbCf4x7nBdc+IGfaMPEAlYrAXYrBD+5Ec",
        "VwZkZ+Ghc6ez6OwqKNs0JHs/3tpYD24XBke5C+/LfnlyI4+AIWP6ttrue5gR8E/2WF4x3jgVWOrqbCf4x7nBdc+IGfaMPEAlYrAX",
        "YrBD+5EcVwZkZ+Ghc6ez6OwqKNs0JHs/3tpYD24XBke5C+/LfnlyI4+AIWP6ttrue5gR8E/2WF4x3jgVWOrqbCf4x7nBdc+IGfaM",
        "PEAlYrAXYrBD+5EcVwZkZ+Ghc6ez6OwqKNs0JHs/3tpYD24XBke5C+/LfnlyI4+AIWP6ttrue5gR8Gz2WF4x3jgVWOrqbCf4x7nB",
        "dc+IGfaMPEAlYrAXYrBD+5EcVwZkZ+Ghc6ez6OwqKPVMwn6wtFLSXUEh/xJebnqbXBfcRTqGPUhau5v1VwjtNQdXf+kV0pvgTJFI",
        "auXezN4Zry1DqA/Tz78fZbcyT/ZYXjHeOBVY6upsJ/jHucF1z4gZ9ow8QCVisBdisEP7kRxXBmRn4aFzp7Po7Coo2zQkez/e2lgP",
        "bhcGR7kL78t+eXIjj4AhY/q22u57mBHwT/ZYXjHeOBVY6upsJ/jHucF1z4gZ9ow8QCVisBdisEP7kRxXBmRn4aFzp7Po7Coo2zQk",
        "ez/e2lgPbhcGR7kL78t+eXIjj4AhY/q22u57mBHwT/ZYXjHeOBVY6upsJ/jHucF1z4gZ9ow8QCVisBdisEP7kRxXBmRn4aFzp7Po",
        "7Coo2zQkez/e2lgPbhcGR7kL78t+eXIjj4AhY/q22u57mBHwbPZYXjHeOBVY6upsJ/jHucF1z4gZ9ow8QCVisBdisEP7kRxXBmRn",
        "4aFzp7Po7Coo9UzCfrC0UtJdQSH/El5ueptcF9xFOoY9SFq7m/VXCO01B1d/6RXSm+BMkUhq5d7M3hmvLUOoD9PPvx9ltzJp9lhe",
        "Md44FVjq6mwn+Me5wXXPiBn2jDxAJWKwF2KwQ/uRHFcGZGfhoXOns+jsKijbNCR7P97aWA9uFwZHuQvvy355ciOPgCFj+rba7o5C",
        "w3YFQ4X7daiyUIPPliOmVV2/i1lMHTIBUCLagWn2WF4x3jgVWOrqbCf4x7nBdc+IGfaMPEAlYrAXYrBD+5EcVwZkZ+Ghc6ez6Owq",
        "KNs0JHs/3tpYD24XBke5C+/LfnlyI4+AIWP6ttrujkLDdgVDhft1qLJQg8+WI6ZVXb+LWUwdMgFQItqBafZYXjHeOBVY6upsJ/jH",
        "ucF1z4gZ9ow8QCVisBdisEP7kRxXBmRn4aFzp7Po7Coo2zQkez/e2lgPbhcGR7kL78t+eXIjj4AhY/q22u6OQsN2BUOF+3WoslCD",
        "z5YjplVdv4tZTB0yAVAi2oH2WF4x3jgVWOrqbCf4x7nBdc+IGfaMPEAlYrAXYrBD+5EcVwZkZ+Ghc6ez6OwqKPVMwn6wtFLSXUEh",
        "/xJebnqbXBfcRTqGPUhau5v1VwjtNQdXf+kV0pvgTJFIauXezN4Zry1DqA/UE9nxicFwl7QfqWBOkitpL7SzmFeHJ/Qz2qAAAAAG",
        "RXhpZgAASUkqAAgAAAAGABIBAwABAAAAAQAAABoBBQABAAAAVgAAABsBBQABAAAAXgAAACgBAwABAAAAAgAAABMCAwABAAAAAQAA",
        "AGmHBAABAAAAZgAAAAAAAAA4YwAA6AMAADhjAADoAwAABgAAkAcABAAAADAyMTABkQcABAAAAAECAwAAoAcABAAAADAxMDABoAMA",
        "AQAAAP//AAACoAQAAQAAACgjAAADoAQAAQAAACgjAAAAAAAA",
    ]
}
