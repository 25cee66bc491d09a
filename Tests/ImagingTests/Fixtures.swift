import Foundation
import Imaging
import ProcessLanguage

/// Sources built in memory, the project's Samples/, and the shared corpus when it is present.
enum Fixtures {
    static let red: [UInt8] = [255, 0, 0], green: [UInt8] = [0, 255, 0]
    static let blue: [UInt8] = [0, 0, 255], yellow: [UInt8] = [255, 255, 0]

    /// A `w`×`h` image whose quadrants are red (top-left), green (top-right), blue (bottom-left)
    /// and yellow (bottom-right).
    static func quadrants(_ w: Int = 200, _ h: Int = 100, as format: Format.Kind = .png) throws -> Data {
        try Raster(width: w, height: h, bands: 3) { x, y in
            switch (x < w / 2, y < h / 2) {
            case (true, true): return red
            case (false, true): return green
            case (true, false): return blue
            case (false, false): return yellow
            }
        }.encoded(as: format, quality: 95)
    }

    static func solid(_ w: Int, _ h: Int, _ color: [UInt8], as format: Format.Kind = .png) throws -> Data {
        try Raster(width: w, height: h, bands: color.count) { _, _ in color }.encoded(as: format, quality: 95)
    }

    static let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func sample(_ name: String) throws -> Data {
        try Data(contentsOf: projectRoot.appendingPathComponent("Samples").appendingPathComponent(name))
    }

    static let corpus = projectRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus")
    static let corpusAvailable = FileManager.default.fileExists(atPath: corpus.path)

    static func corpusFile(_ path: String) throws -> Data {
        try Data(contentsOf: corpus.appendingPathComponent(path))
    }

    static func render(_ source: Data, _ process: String, limits: Limits = .oss) throws -> (RenderOutput, Raster) {
        let output = try Engine(limits: limits).render(source, try Pipeline.parse(process))
        if output.kind == .json { return (output, Raster(width: 0, height: 0, bands: 0, pixels: [])) }
        return (output, try Raster.decode(output.bytes, allFrames: output.frames > 1))
    }

    /// True when every channel is within `tolerance` of `expected`.
    static func near(_ actual: [UInt8], _ expected: [UInt8], tolerance: Int = 12) -> Bool {
        actual.count >= expected.count && zip(actual, expected).allSatisfy { abs(Int($0) - Int($1)) <= tolerance }
    }

    static func magic(_ data: Data) -> String {
        let bytes = [UInt8](data.prefix(16))
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "jpg" }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "png" }
        if bytes.starts(with: Array("GIF8".utf8)) { return "gif" }
        if bytes.starts(with: Array("RIFF".utf8)), bytes.count >= 12, Array(bytes[8..<12]) == Array("WEBP".utf8) { return "webp" }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return "tiff" }
        if bytes.starts(with: Array("BM".utf8)) { return "bmp" }
        if bytes.count >= 12, Array(bytes[4..<8]) == Array("ftyp".utf8) {
            let brand = String(decoding: bytes[8..<12], as: UTF8.self)
            return brand == "avif" ? "avif" : "heic"
        }
        return "unknown"
    }
}
