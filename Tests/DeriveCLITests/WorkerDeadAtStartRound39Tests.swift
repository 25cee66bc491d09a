import Foundation
import Testing
import TestSupport

/// Attack 39b's M1: a render worker that exits at once (libvips missing: status 127) was only
/// noticed after the 30 s start deadline, because derive held the worker's end of the socket
/// open while it waited; `build` then said the same error three times, and `init` blamed every
/// good image instead of saying to install the worker.
@Suite(.ownThreads) struct WorkerDeadAtStartRound39Tests {
    /// A folder with `photos/ok.jpg` and a worker script that fails as a worker without libvips does.
    static func project() throws -> (folder: URL, worker: String) {
        let folder = try CLI.temporaryFolder()
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: photos.appendingPathComponent(name))
        }
        let worker = folder.appendingPathComponent("broken-worker")
        // Written by a shell, not here: a descriptor open for writing in this process would be
        // inherited by the other tests' children and make the worker "Text file busy".
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "printf '#!/bin/sh\\necho \"derive-render-worker: error while loading shared libraries: libvips.so.42\" >&2\\nexit 127\\n' > \"$1\" && chmod 755 \"$1\"",
                           "sh", worker.path]
        try shell.run()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        return (folder, worker.path)
    }

    @Test func versionAnswersAtOnceWithTheWorkersEnding() throws {
        let (folder, worker) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let started = Date()
        let result = try CLI.run(["--version"], in: folder, environment: ["DERIVE_RENDER_WORKER": worker])
        #expect(Date().timeIntervalSince(started) < 20)   // not a speed goal: the 30 s start deadline is what it tells apart
        #expect(text(result.stdout).contains("libvips unknown"), "\(result.stdout)")
        #expect(text(result.stdout).contains("exited with status 127"), "\(result.stdout)")
    }

    @Test func initSaysToInstallTheWorkerAtOnceAndBlamesNoImage() throws {
        let (folder, worker) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let started = Date()
        let result = try CLI.run(["init", "photos"], in: folder, environment: ["DERIVE_RENDER_WORKER": worker])
        #expect(Date().timeIntervalSince(started) < 20)   // not a speed goal: the 30 s start deadline is what it tells apart
        #expect(result.status != 0)
        #expect(result.stderr.contains("Install derive-render-worker"), "\(result.stderr)")
        #expect(result.stderr.contains("exited with status 127"), "\(result.stderr)")
        #expect(!result.stderr.contains("is not counted"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
    }

    @Test func buildSaysItOnceAndAtOnce() throws {
        let (folder, worker) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        let started = Date()
        let result = try CLI.run(["build"], in: folder, environment: ["DERIVE_RENDER_WORKER": worker])
        #expect(Date().timeIntervalSince(started) < 20)   // not a speed goal: the 30 s start deadline is what it tells apart
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n").filter { $0.contains("cannot learn the render engine's identity") }
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("exited with status 127"), "\(result.stderr)")
    }
}
