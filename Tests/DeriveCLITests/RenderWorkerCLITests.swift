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

    /// The test hook `DERIVE_TEST_JOBS` stands in for the default jobs (every test's derive runs
    /// with 1, as six tests run at once): a build of four renders (two sources, two rules) starts
    /// one worker with it set to 1 and two with it set to 2 (each worker says so on its start).
    @Test func theTestHookSetsTheDefaultJobs() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func workersStarted(jobs: String) throws -> Int {
            let root = folder.appendingPathComponent("jobs-" + jobs)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
            for (index, sample) in ["landscape.jpg", "orientation-6.jpg"].enumerated() {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: root.appendingPathComponent("src/\(index).jpg"))
            }
            try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - from: src/*.jpg\n    process: image/resize,w_600/blur,r_3,s_2\n    to: out/{name}.jpg\n  - from: src/*.jpg\n    process: image/resize,w_500/blur,r_3,s_2/format,webp\n    to: out/w/{name}.webp\n".utf8)
                .write(to: root.appendingPathComponent("derive.yaml"))
            let built = try CLI.run(["build", "-q"], in: root, environment: ["DERIVE_TRACE_VIPS": "1", "DERIVE_TEST_JOBS": jobs])
            #expect(built.status == 0, "\(said(built))")
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("out/w/1.webp").path))
            return built.stderr.components(separatedBy: "derive-render-worker: libvips started\n").count - 1
        }
        let one = try workersStarted(jobs: "1"), two = try workersStarted(jobs: "2")
        #expect(one == 1 && two == 2, "DERIVE_TEST_JOBS=1 started \(one) workers, =2 started \(two)")
    }
}
