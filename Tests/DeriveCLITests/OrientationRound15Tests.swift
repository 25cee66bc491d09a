import Foundation
import GRDB
import Testing
import TestSupport
import Imaging

/// Attack 15 M8, end to end: a PNG (eXIf chunk) and a WebP (EXIF chunk) stored 300×200 with
/// EXIF Orientation 6 are drawn rotated by the engine (200×300), but the planner's header
/// reader ignored their orientation: the index said 300 x 200 and width dedup worked from 300,
/// so `w: [150, 250, 320]` built `-250` and `-300`, byte-identical 200 px files, the second
/// named for a width it does not have.
@Suite(.ownThreads, .serialized) struct OrientationRound15Tests {
    static func tool(_ name: String) -> String? {
        ["/usr/bin", "/usr/local/bin", "/bin"].map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var toolsPresent: Bool { tool("convert") != nil && tool("exiftool") != nil }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool) \(arguments)")
    }

    /// A 300×200 picture (ImageMagick) at `path`, tagged Orientation `orientation` (exiftool
    /// writes a PNG eXIf chunk, a WebP EXIF chunk).
    static func oriented(_ path: String, orientation: Int) throws {
        try run(tool("convert")!, [CLI.samples.appendingPathComponent("landscape.jpg").path, "-resize", "300x200!", path])
        try run(tool("exiftool")!, ["-q", "-overwrite_original", "-Orientation#=\(orientation)", path])
    }

    /// The project of the finding: rot.png and rotw.webp (300×200, Orientation 6), a width matrix, an index.
    static func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try Self.oriented(folder.appendingPathComponent("src/rot.png").path, orientation: 6)
        try Self.oriented(folder.appendingPathComponent("src/rotw.webp").path, orientation: 6)
        try """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: p
            from: src/*.{png,webp}
            process: image/resize,w_{w}/format,webp
            matrix: {w: [150, 250, 320]}
            to: out/{name}-{w}.webp
        index: out/i.json
        """.write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        return folder
    }

    @Test(.enabled(if: toolsPresent, "needs ImageMagick and exiftool"))
    func theIndexAndWidthDedupUseTheDisplayedSize() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        try Self.expectDisplayedSize(in: folder)
    }

    /// A state written before the fix holds these sources at their stored size (300×200): it
    /// is read again once (state migration v6), not trusted, so the next build plans from the
    /// displayed size too.
    @Test(.enabled(if: toolsPresent, "needs ImageMagick and exiftool"))
    func sizesCachedBeforeTheFixAreReadAgain() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Past the stat cache's racy margin (1 s), so the state's sizes are trusted unless migrated.
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let states = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix("/state.sqlite") } ?? []
        let state = try #require(states.first, "no state.sqlite below \(folder.path)")
        // What the state said before the fix: the stored size, and no migration v6 yet.
        // (Through GRDB, in the process: CI installs no sqlite3 command, and the test must run there.)
        try DatabaseQueue(path: folder.appendingPathComponent(state).path, configuration: .patientTest).write { db in
            try db.execute(sql: "UPDATE files SET width = 300, height = 200 WHERE format IN ('png', 'webp'); DELETE FROM grdb_migrations WHERE identifier = 'v6';")
        }
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        try Self.expectDisplayedSize(in: folder)
    }

    static func expectDisplayedSize(in folder: URL) throws {
        let out = folder.appendingPathComponent("out")
        let built = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".webp") }.sorted()
        // 150 is below the displayed width; 250 and 320 are not: one output at 200 px, named 200.
        #expect(built == ["rot-150.webp", "rot-200.webp", "rotw-150.webp", "rotw-200.webp"], "\(built)")
        for name in built {
            let raster = try Raster.decode(try Data(contentsOf: out.appendingPathComponent(name)))
            let expected = name.hasSuffix("-150.webp") ? (150, 225) : (200, 300)
            #expect((raster.width, raster.height) == expected, "\(name): \(raster.width)x\(raster.height)")
        }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("i.json"))) as? [String: Any]
        for source in ["src/rot.png", "src/rotw.webp"] {
            let entry = (index?["sources"] as? [String: Any])?[source] as? [String: Any]
            #expect(entry?["width"] as? Int == 200 && entry?["height"] as? Int == 300, "\(source): \(String(describing: entry))")
            let formats = ((entry?["pictures"] as? [String: Any])?["p"] as? [String: Any])?["formats"] as? [[String: Any]]
            let stem = source == "src/rot.png" ? "rot" : "rotw"
            #expect(formats?.first?["srcset"] as? String == "/\(stem)-150.webp 150w, /\(stem)-200.webp 200w", "\(String(describing: formats))")
        }
    }
}
