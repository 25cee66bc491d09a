import Foundation
import Imaging
import Testing
import TestSupport

/// Attack 36a's M6: the index's `color` is OSS's `average-hue` answer (the mean of the minority
/// hues), so a picture that is 98 % blue with a small red square got red. Issue #13 asks for the
/// dominant colour: `dominant` is the most populated cell of a coarse colour histogram of the
/// picture drawn within 100x100 (the placeholder's thumbnail), answered as the mean of that cell's
/// pixels; `color` stays what README documents (OSS's answer).
@Suite(.ownThreads) struct DominantColourRound37Tests {
    static let blue: [UInt8] = [0x20, 0x50, 0xC0, 255]
    static let red: [UInt8] = [0xE0, 0x20, 0x20, 255]

    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: out/index.json
        derivatives:
          - from: src/*.png
            process: image/resize,w_16
            to: out/{name}.{ext}

        """

    /// A project whose sources are the given pictures (PNG, at most 100 px a side: the thumbnail
    /// is the picture itself, so the expectations are exact), built once.
    func built(_ pictures: [String: Raster]) throws -> (root: URL, index: [String: [String: Any]]) {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        for (name, raster) in pictures { try raster.encoded(as: .png).write(to: root.appendingPathComponent("src/\(name).png")) }
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status == 0, "\(build.stderr)")
        return (root, try Self.sources(root))
    }

    static func sources(_ root: URL) throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: root.appendingPathComponent("out/index.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(object["sources"] as? [String: [String: Any]])
    }

    @Test func aMostlyBluePictureWithARedSquareIsBlue() throws {
        // 80x60 blue, a 10x10 red square in the middle (2 % of the pixels).
        let picture = Raster(width: 80, height: 60, bands: 4) { x, y in (35..<45).contains(x) && (25..<35).contains(y) ? Self.red : Self.blue }
        let (root, sources) = try built(["sky": picture])
        defer { try? FileManager.default.removeItem(at: root) }
        let sky = try #require(sources["src/sky.png"])
        #expect(sky["dominant"] as? String == "#2050c0", "\(sky)")
        // `color` stays OSS's average-hue answer, as README documents it.
        #expect(sky["color"] as? String != nil, "\(sky)")
    }

    /// Half blue, half red: the tie goes to the colour met first reading the thumbnail row by
    /// row from the top left, so the mirrored picture answers the other colour.
    @Test func aHalfAndHalfTieGoesToTheColourMetFirst() throws {
        let blueFirst = Raster(width: 60, height: 40, bands: 4) { x, _ in x < 30 ? Self.blue : Self.red }
        let redFirst = Raster(width: 60, height: 40, bands: 4) { x, _ in x < 30 ? Self.red : Self.blue }
        let (root, sources) = try built(["blue-first": blueFirst, "red-first": redFirst])
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(sources["src/blue-first.png"]?["dominant"] as? String == "#2050c0", "\(sources)")
        #expect(sources["src/red-first.png"]?["dominant"] as? String == "#e02020", "\(sources)")
    }

    /// Transparent pixels (alpha under 128) are not part of the picture's colour: a red
    /// transparent majority loses to the opaque green minority, and a wholly transparent picture
    /// has no dominant colour (the field is left out).
    @Test func transparentPixelsDoNotCount() throws {
        let green: [UInt8] = [0x30, 0xA0, 0x40, 255]
        let mostlyClear = Raster(width: 40, height: 40, bands: 4) { x, _ in x < 30 ? [0xE0, 0x20, 0x20, 0] : green }
        let clear = Raster(width: 20, height: 20, bands: 4) { _, _ in [0, 0, 0, 0] }
        let (root, sources) = try built(["mostly-clear": mostlyClear, "clear": clear])
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(sources["src/mostly-clear.png"]?["dominant"] as? String == "#30a040", "\(sources)")
        let entry = try #require(sources["src/clear.png"])
        #expect(entry["dominant"] == nil, "\(entry)")
    }

    /// The build's own second run is a no-op: the dominant colour is kept in the state by the
    /// source's digest, and the index is not rewritten.
    @Test func aSecondBuildKeepsTheIndexAsItIs() throws {
        let picture = Raster(width: 30, height: 30, bands: 4) { _, _ in Self.blue }
        let (root, _) = try built(["flat": picture])
        defer { try? FileManager.default.removeItem(at: root) }
        let before = try Data(contentsOf: root.appendingPathComponent("out/index.json"))
        let again = try CLI.run(["build"], in: root)
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(text(again.stdout)) \(again.stderr)")
        #expect(try Data(contentsOf: root.appendingPathComponent("out/index.json")) == before)
        #expect(try Self.sources(root)["src/flat.png"]?["dominant"] as? String == "#2050c0")
    }
}
