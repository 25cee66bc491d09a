import Foundation
import Testing
import TestSupport

/// `derive serve` never starts on a manifest with validation errors: a bucket beside the
/// manifest (anyone could PUT over derive.yaml) or a leaking rule stops it (issue #11.4).
@Suite(.ownThreads) struct ServeRefusalTests {
    /// Runs `derive serve` and waits at most `seconds`; a server that starts is stopped and
    /// reported as such.
    /// Runs `derive serve` in `folder` until it exits, `seconds` pass, or (with `until`) its
    /// standard output holds that text: a serve expected to start is stopped once it says so,
    /// not after a fixed wait a loaded machine may outlast.
    static func serve(in folder: URL, seconds: Double = 20, until started: String? = nil) throws -> (status: Int32?, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["serve", "--port", "0"]
        process.currentDirectoryURL = folder
        let outFile = folder.appendingPathComponent("serve.out"), errFile = folder.appendingPathComponent("serve.err")
        _ = FileManager.default.createFile(atPath: outFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outFile)
        process.standardError = try FileHandle(forWritingTo: errFile)
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline {
            if let started, ((try? String(contentsOf: outFile, encoding: .utf8)) ?? "").contains(started) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        var status: Int32?
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        } else {
            status = process.terminationStatus
        }
        return (status, (try? String(contentsOf: outFile, encoding: .utf8)) ?? "", (try? String(contentsOf: errFile, encoding: .utf8)) ?? "")
    }

    @Test func refusesABucketBesideTheManifest() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("version: 1\nbuckets:\n  site:\n    path: .\n    acl: public-read-write\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let result = try Self.serve(in: folder)
        #expect(result.status == 1, "serve started: \(result.stdout)")
        #expect(result.stderr.contains("bucket 'site' (.) holds the manifest derive.yaml"), "\(result.stderr)")
        #expect(!result.stdout.contains("Serving"))
    }

    @Test func refusesALeakingRule() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("site"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                         to: folder.appendingPathComponent("photos/a.jpg"))
        try Data("""
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site, acl: public-read}
        derivatives:
          - from: photos/*.jpg
            process: image/resize,w_10
            to: site/{name}.{ext}
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = try Self.serve(in: folder)
        #expect(result.status == 1, "serve started: \(result.stdout)")
        #expect(result.stderr.contains("writes derivatives of private objects"), "\(result.stderr)")
    }
}
