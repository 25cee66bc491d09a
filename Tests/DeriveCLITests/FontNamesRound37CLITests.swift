import Foundation
import Testing
import TestSupport
import Imaging

/// Attack 36a M5 through the `derive` executable (r-font-family.sh): families `fc-list : family`
/// prints validate and draw.
@Suite(.ownThreads, .serialized) struct FontNamesRound37CLITests {
    /// Every name `fc-list : family` prints (a face's names are separated by commas).
    static let listedNames: Set<String> = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/fc-list")
        process.arguments = [":", "family"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [] }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Set(text.split(separator: "\n").flatMap { $0.split(separator: ",").map(String.init) })
    }()

    /// The three names attack 36a found refused, those installed here.
    static let attacked = ["DejaVu Sans Light", "DejaVu Sans Condensed", "文泉驿正黑"].filter { listedNames.contains($0) }

    static func manifest(_ watermarks: [(style: String, text: String, type: String)]) -> String {
        var styles = "  plain: image/resize,w_300/format,png\n"
        for mark in watermarks {
            styles += """
              \(mark.style):
                - resize: {w: 300}
                - watermark: {text: "\(mark.text)", type: "\(mark.type)", size: 32, color: FF0000, g: center}
                - format: png

            """
        }
        return """
        version: 1
        buckets:
          photos: {path: photos, acl: private}
          site: {path: site, acl: private}
        styles:
        \(styles)derivatives:
          - from: photos/*.jpg
            styles: [plain, \(watermarks.map(\.style).joined(separator: ", "))]
            to: site/{name}.{style}.png
        """
    }

    static func project(_ manifest: String) throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                         to: folder.appendingPathComponent("photos/landscape.jpg"))
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    /// Pixels red in `marked` that were not red in `plain`.
    static func reddened(_ marked: URL, from plain: URL) throws -> Int {
        let after = try Raster.decode(try Data(contentsOf: marked)), before = try Raster.decode(try Data(contentsOf: plain))
        guard after.width == before.width, after.height == before.height else { return -1 }
        var count = 0
        for y in 0..<after.height { for x in 0..<after.width {
            let a = after.pixel(x, y), b = before.pixel(x, y)
            if a[0] > 200 && a[1] < 60 && a[2] < 60 && !(b[0] > 200 && b[1] < 60) { count += 1 }
        } }
        return count
    }

    @Test(.enabled(if: !attacked.isEmpty, "none of DejaVu Sans Light, DejaVu Sans Condensed, 文泉驿正黑 is installed (fonts-dejavu-extra, fonts-wqy-zenhei)"))
    func familiesFcListPrintsValidateAndDraw() throws {
        let marks = Self.attacked.enumerated().map { (style: "f\($0.offset)", text: "Mark 水印", type: $0.element) }
        let folder = try Self.project(Self.manifest(marks))
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("derive.yaml").path
        let validate = try CLI.run(["validate", path])
        #expect(validate.status == 0, "\(validate.stderr)")
        let build = try CLI.run(["build", path, "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        for mark in marks {
            let drawn = try Self.reddened(folder.appendingPathComponent("site/landscape.\(mark.style).png"),
                                          from: folder.appendingPathComponent("site/landscape.plain.png"))
            #expect(drawn > 150, "\(mark.type): \(drawn) red pixels")
        }
    }
}
