import Foundation
import ProcessLanguage
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `derive serve` looked the render engine up once at start and kept its render workers (found
/// while fixing round 22's V2 in the watch): a fontconfig configuration written while it served
/// changed neither the key of its on-the-fly render cache (`font:…` with how the font is drawn)
/// nor its workers' drawing, so cached renders and new ones kept the old text rendering until a
/// restart, and differed from what a fresh serve (or `derive build`) draws. Serve now looks the
/// engine up again (a stat of each file it depends on, at most every 2 s, at a render request),
/// retires the workers started before a change and keys its cache by the engine in force.
@Suite(.ownThreads, .serialized) struct ServeEngineRound23Tests {
    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos, acl: public-read}
        """

    /// A text watermark drawn to PNG (the bytes show the drawing), and a second one with
    /// another size that is asked only after the configuration changed (a new render).
    static let stamped = "image/resize,w_400/watermark,text_\(Base64URL.encode("Lake Studio 2026")),size_40,color_FFFFFF,g_sw/format,png"
    static let stampedLater = "image/resize,w_400/watermark,text_\(Base64URL.encode("Lake Studio 2026")),size_36,color_FFFFFF,g_sw/format,png"

    static func target(_ process: String) -> String { "/photos/a.jpg?x-oss-process=" + process }

    /// A project with one photo in a public bucket.
    static func project(_ folder: URL) throws -> URL {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    /// What a serve started now draws for `processes`, in a project of its own (one serve per state folder).
    static func fresh(_ folder: URL, _ processes: [String], environment: [String: String]) throws -> [[UInt8]] {
        let serve = try ServeSession(in: try project(folder), environment: environment)
        defer { serve.stop() }
        return try processes.map { process in
            let answer = try serve.get(target(process))
            #expect(answer.status == 200, "fresh serve: \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
            return answer.body
        }
    }

    /// Polls `target` until its bytes are `expected` (the check period is 2 s; generous for a shared machine).
    static func eventually(_ serve: ServeSession, _ target: String, _ expected: [UInt8], seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let answer = try? serve.get(target), answer.status == 200, answer.body == expected { return true }
            usleep(250_000)
        } while Date() < deadline
        return false
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/etc/fonts/conf.d/50-user.conf"), "needs fontconfig's user configuration (50-user.conf)"))
    func aFontConfigurationWrittenWhileServingChangesItsRendersAndItsCache() throws {
        let scratch = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let home = scratch.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let environment = WatchRound22Tests.environment(home)
        let serve = try ServeSession(in: try Self.project(scratch.appendingPathComponent("served")), environment: environment)
        defer { serve.stop() }
        let first = try serve.get(Self.target(Self.stamped))
        #expect(first.status == 200, "\(first.status) \(String(decoding: first.body, as: UTF8.self))")
        let before = first.body
        // A worker is idle now, started with the configuration of the start.

        // Antialiasing off for every font: the same font file, other pixels.
        let config = home.appendingPathComponent(".config/fontconfig")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try Data(FontConfigurationTests.antialiasOff.utf8).write(to: config.appendingPathComponent("fonts.conf"))
        let truth = try Self.fresh(scratch.appendingPathComponent("fresh"), [Self.stamped, Self.stampedLater], environment: environment)
        let differs = truth[0] != before
        #expect(differs, "the configuration does not change the bytes: the test proves nothing")

        // The render cached before the change is not the answer under the new configuration.
        let redrawn = Self.eventually(serve, Self.target(Self.stamped), truth[0])
        #expect(redrawn,
                "serve still answers the text as drawn before the configuration changed (its cached render, or its old worker)")
        // A render never asked before runs on a worker with the new configuration.
        let later = try serve.get(Self.target(Self.stampedLater))
        let newRender = later.status == 200 && later.body == truth[1]
        #expect(newRender, "a new render was drawn with the old configuration (an old worker): \(later.status)")
        // And the new answers are what is cached now.
        let cachedNew = try serve.get(Self.target(Self.stamped)).body == truth[0]
        #expect(cachedNew)

        // The configuration removed: drawn as at the start again (not the render cached meanwhile).
        try FileManager.default.removeItem(at: config.appendingPathComponent("fonts.conf"))
        let restored = Self.eventually(serve, Self.target(Self.stamped), before)
        #expect(restored, "the configuration removed, serve kept drawing without antialiasing")
        let cachedRestored = try serve.get(Self.target(Self.stamped)).body == before
        #expect(cachedRestored)
    }
}
