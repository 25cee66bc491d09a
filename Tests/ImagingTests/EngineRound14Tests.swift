import Foundation
import ImagingCore
import ProcessLanguage
import Testing

/// Issue #10, attack 12's G2 (remainder): a source and its watermark images, each under a raised
/// byte limit but together over what one render sends its worker, were read whole before the
/// render refused them. Their sizes, from their files, are checked together before any is read.
@Suite struct EngineRound14Tests {
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
