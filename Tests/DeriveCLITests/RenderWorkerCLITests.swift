import Foundation
import Testing
import TestSupport

/// `derive process` and `derive build` render in derive-render-worker; without it they fail
/// with a clear error instead of rendering inside derive.
@Suite(.ownThreads) struct RenderWorkerCLITests {
    let landscape = CLI.samples.appendingPathComponent("landscape.jpg").path

    @Test func processWithoutTheWorkerIsAClearError() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("out.jpg").path
        let missing = try CLI.run(["process", landscape, "resize,w_50", "-o", target],
                                  environment: ["DERIVE_RENDER_WORKER": folder.appendingPathComponent("nothing-here").path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("DERIVE_RENDER_WORKER"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func processRenderStopsAtItsDeadline() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A blurred AVIF of 4800 px (about 8 s here): far longer than a 1 s deadline (limits are whole
        // seconds, as in the manifest) (the worker is killed if libvips cannot stop it). The plain
        // AVIF of 4800 px now encodes in about 1 s (aom speed 9, a quality that follows the source's).
        let target = folder.appendingPathComponent("out.avif").path
        let started = Date()
        let result = try CLI.run(["process", landscape, "resize,w_4800,limit_0/blur,r_50,s_50/quality,Q_90/format,avif", "--render-seconds", "1", "--max-work", "100000000000", "--max-memory", "4000000000", "-o", target])
        #expect(result.status == 1)
        #expect(result.stderr.contains("RequestTimeout"), "\(result.stderr)")
        // Loose for a loaded 2-core machine (4.5 s seen at load 16); the full encode takes minutes.
        #expect(Date().timeIntervalSince(started) < 8)
    }

    /// The test hook `DERIVE_TEST_RENDER_SECONDS` stands in for the default deadline (every test's
    /// derive runs with 600 s, so that six builds at once on two loaded cores fail no ordinary
    /// render): set to 1, the same render stops at 1 s with no `--render-seconds`.
    @Test func theTestHookSetsTheDefaultDeadline() throws {
        let result = try CLI.run(["process", landscape, "resize,w_4800,limit_0/blur,r_50,s_50/quality,Q_90/format,avif", "--max-work", "100000000000", "--max-memory", "4000000000", "-o", "-"],
                                 environment: ["DERIVE_TEST_RENDER_SECONDS": "1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("RequestTimeout") && result.stderr.contains("deadline of 1 s"), "\(result.stderr)")
    }
}
