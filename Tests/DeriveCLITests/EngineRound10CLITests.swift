import Foundation
import Testing
import TestSupport

/// Issue #10, round 10, through the command line: a JSON answer written to a file is described
/// as one (it printed "f.json: 0x0 json"), and a build meets the WebP frame cap.
@Suite(.ownThreads) struct EngineRound10CLITests {
    @Test(arguments: [("image/info", "info"), ("image/average-hue", "average-hue")])
    func aJSONAnswerWrittenToAFileIsDescribedAsOne(process: String, action: String) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("f.json").path
        let result = try CLI.run(["process", CLI.samples.appendingPathComponent("landscape.jpg").path, process, "-o", target])
        #expect(result.status == 0, "\(result.stderr)")
        let written = try Data(contentsOf: URL(fileURLWithPath: target))
        #expect((try? JSONSerialization.jsonObject(with: written)) != nil)
        #expect(result.stderr == "\(target): \(action) answer (JSON) \(written.count) bytes\n", "\(result.stderr)")
        #expect(!result.stderr.contains("0x0"))
    }

    /// A build whose source is a 100 000-frame WebP fails that source naming the cap, before
    /// its deadline, and writes nothing for it.
    @Test func aBuildRefusesAWebPWithTooManyFrames() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["photos", "site"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try WebPFramesCLITests.animatedWebP(frames: 100_000).write(to: folder.appendingPathComponent("photos/anim.webp"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                         to: folder.appendingPathComponent("photos/plain.jpg"))
        try Data("""
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        limits: {render_seconds: 60}
        derivatives:
          - from: photos/*
            process: image/resize,w_10
            to: site/{name}.{ext}
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let started = Date()
        let result = try CLI.run(["build", "--quiet"], in: folder)
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("photos/anim.webp") && result.stderr.contains("100000 frames; the limit is 4096"), "\(result.stderr)")
        #expect(!result.stderr.contains("deadline"), "\(result.stderr)")
        // Well inside the 60 s deadline: refused from the chunk walk, not by the deadline.
        #expect(elapsed < 30, "took \(elapsed) s")
        let built = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("site").path)
        #expect(built == ["plain.jpg"], "\(built)")
    }
}
