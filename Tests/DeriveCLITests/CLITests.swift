import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage
import Access

/// Runs the built `derive` executable as a user would.
struct CLI {
    static let executable: URL = {
        _ = userStateHome   // every derive run, however spawned, keeps its tokens there
        // Another build of derive (an older release, to see a new test fail on it).
        if let other = ProcessInfo.processInfo.environment["DERIVE_TEST_BINARY"], !other.isEmpty { return URL(fileURLWithPath: other) }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0])
        var folder = testBinary.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive").path), folder.path != "/" {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("derive")
    }()

    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Samples")

    struct Result { var status: Int32; var stdout: Data; var stderr: String }

    /// `executable`: another program than derive (python3 for the schema checks).
    /// `unset`: variables taken away after `environment` is added (a test of the default state home).
    static func run(_ arguments: [String], in folder: URL? = nil, environment: [String: String] = [:], unset: [String] = [],
                    executable: String? = nil) throws -> Result {
        let process = Process()
        // Build states' tokens go to a folder of this test run, never the user's own (CI runs as root).
        var whole = ProcessInfo.processInfo.environment.merging(["XDG_STATE_HOME": userStateHome.path,
                                                                 "DERIVE_TEST_RENDER_SECONDS": Self.renderSeconds,
                                                                 "DERIVE_TEST_JOBS": Self.jobs]) { $1 }
            .merging(environment) { $1 }
        for name in unset { whole.removeValue(forKey: name) }
        process.environment = whole
        process.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? Self.executable
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = folder }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Both streams at once: read one after the other, a child that fills the other pipe (64 KiB:
        // FC_DEBUG=1 makes fontconfig print its whole configuration) waits for ever on its write
        // while this waits for the first stream's end (TextEnvironmentRound54Tests hung a full run).
        let stderr = ReadToEnd(err.fileHandleForReading)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: stderr.data(), as: UTF8.self))
    }

    /// Runs derive with one of its test pauses (`DERIVE_TEST_BEFORE_INSTALL`, `DERIVE_TEST_BEFORE_ANSWER`,
    /// set in `environment`), which makes it write `marker` and wait while it exists. Once derive waits
    /// there (or has ended, or 120 s passed), `meanwhile` runs with whether it paused; then the marker
    /// is removed and the run finishes. Both streams are read at once, as in `run`.
    static func runPaused(_ arguments: [String], in folder: URL, environment: [String: String], marker: URL,
                          meanwhile: (_ paused: Bool) throws -> Void) throws -> (paused: Bool, result: Result) {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        let stderr = ReadToEnd(err.fileHandleForReading), stdout = ReadToEnd(out.fileHandleForReading)
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: marker.path), process.isRunning, Date() < deadline { usleep(20_000) }
        let paused = FileManager.default.fileExists(atPath: marker.path)
        try meanwhile(paused)
        try? FileManager.default.removeItem(at: marker)
        let said = (stdout.data(), String(decoding: stderr.data(), as: UTF8.self))
        process.waitUntilExit()
        return (paused, Result(status: process.terminationStatus, stdout: said.0, stderr: said.1))
    }

    /// A stream read to its end on a thread of its own.
    final class ReadToEnd: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var read = Data()

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                read = handle.readDataToEndOfFile()
                done.signal()
            }
        }

        /// What was read, once the stream ended.
        func data() -> Data {
            done.wait()
            return read
        }
    }

    /// `XDG_STATE_HOME` for every derive this test process runs: where it keeps its build states' tokens.
    static let userStateHome: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("derive-test-state-home-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        setenv("XDG_STATE_HOME", url.path, 1)   // inherited by derive runs not made by `run`
        setenv("DERIVE_TEST_RENDER_SECONDS", renderSeconds, 0)
        setenv("DERIVE_TEST_JOBS", jobs, 0)
        return url
    }()

    /// The default render deadline of every derive this test process runs (`Limits`' test hook):
    /// 20 s of wall clock failed ordinary renders while six tests built at once on a loaded
    /// machine. Tests of the deadline set theirs in the manifest or with `--render-seconds`.
    static let renderSeconds = "600"

    /// The default jobs of every derive this test process runs (`BuildOptions`' test hook): the
    /// suite runs six tests at once, so a second render worker per build only added its start-up,
    /// most of a small build's process time. Tests of parallel builds pass `--jobs`.
    static let jobs = "1"

    static func temporaryFolder() throws -> URL {
        let url = (try ScratchFolder.make("derive-cli"))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// What a run said: its standard error, then its standard output (for messages in failed expectations
/// and for text either stream may carry).
func said(_ result: CLI.Result) -> String { result.stderr + String(decoding: result.stdout, as: UTF8.self) }

@Suite(.ownThreads) struct CLITests {
    let landscape = CLI.samples.appendingPathComponent("landscape.jpg").path

    @Test func processWritesThePipelinesFormat() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("thumb.png").path
        let result = try CLI.run(["process", landscape, "image/resize,w_120/format,webp", "-o", target])
        #expect(result.status == 0, "\(result.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: target))
        #expect(bytes.prefix(4) == Data("RIFF".utf8))   // the extension does not override the format
        let raster = try Raster.decode(bytes)
        #expect(raster.width == 120 && raster.height == 80)
        // Only the output is left behind: no temporary files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["thumb.png"])
    }

    @Test func processToStandardOutput() throws {
        let result = try CLI.run(["process", landscape, "resize,w_64", "-o", "-"])
        #expect(result.status == 0)
        #expect(result.stdout.prefix(3) == Data([0xFF, 0xD8, 0xFF]))
        #expect(try Raster.decode(result.stdout).width == 64)
    }

    @Test func errorsPrintCodeAndECAndWriteNothing() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("out.jpg").path
        let result = try CLI.run(["process", landscape, "image/resize,w_0", "-o", target])
        #expect(result.status != 0)
        #expect(result.stderr.contains("InvalidArgument"))
        #expect(result.stderr.contains("0040-00000312"))
        #expect(result.stderr.contains("resize"))
        #expect(!FileManager.default.fileExists(atPath: target))

        let corrupt = folder.appendingPathComponent("broken.jpg")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: landscape))
        try bytes.prefix(bytes.count / 3).write(to: corrupt)
        let broken = try CLI.run(["process", corrupt.path, "image/rotate,90", "-o", target])
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("BadRequest"))
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["broken.jpg"])
    }

    @Test func infoCommand() throws {
        let result = try CLI.run(["info", CLI.samples.appendingPathComponent("orientation-6.jpg").path])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: [String: String]]
        #expect(object?["Orientation"]?["value"] == "6")
        #expect(object?["ImageWidth"]?["value"] == "200")
    }

    @Test func limitFlags() throws {
        let result = try CLI.run(["process", landscape, "image/resize,w_100", "-o", "-", "--max-side", "1000"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("ImageTooLarge"))
    }

    @Test func warningsForUnknownKeys() throws {
        let result = try CLI.run(["process", landscape, "image/crop,w_10,h_10,r_1", "-o", "-"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("unknown parameter 'r'"))
    }
}

@Suite(.ownThreads) struct ManifestCLITests {
    static let manifests = CLI.samples.deletingLastPathComponent().appendingPathComponent("Manifests")

    @Test func validateTheDemo() throws {
        let result = try CLI.run(["validate", Self.manifests.appendingPathComponent("site.yaml").path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("valid: 3 buckets, 6 styles, 4 rules"))
    }

    @Test func validateReportsEveryErrorAndExitsOne() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("version: 1\nstyles:\n  thumb: image/rezise,w_100\n  big: image/resize,w_0\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let result = try CLI.run(["validate"], in: folder)
        #expect(result.status == 1)
        #expect(result.stderr.contains("derive.yaml:3:16: error: unknown action 'rezise' in style 'thumb'"))
        #expect(result.stderr.contains("(did you mean 'resize'?)"))
        #expect(result.stderr.contains("derive.yaml:4:14: error: resize: parameter 'w'"))
        #expect(result.stderr.contains("2 errors, 0 warnings"))

        let json = try CLI.run(["validate", "--json"], in: folder)
        #expect(json.status == 1)
        let report = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        #expect(report?["valid"] as? Bool == false)
        #expect(report?["errors"] as? Int == 2)
        let first = (report?["diagnostics"] as? [[String: Any]])?.first
        #expect(first?["line"] as? Int == 3 && first?["column"] as? Int == 16)
        #expect(first?["hint"] as? String == "did you mean 'resize'?")
    }

    @Test func missingManifest() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["validate"], in: folder)
        #expect(result.status == 1)
        #expect(result.stderr.contains("derive.yaml: no such file"))
    }

    @Test func stylesListsCanonicalForms() throws {
        let result = try CLI.run(["styles", Self.manifests.appendingPathComponent("site.yaml").path])
        #expect(result.status == 0)
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(text.contains("thumb    image/resize,m_fill,w_240,h_160,limit_1,color_FFFFFF/quality,q_80"))
        #expect(text.split(separator: "\n").count == 6)
    }
}

@Suite(.ownThreads) struct WatermarkCLITests {
    @Test func bucketRootFeedsImageWatermarks() throws {
        let key = Base64URL.encode("logo-alpha.png?x-oss-process=image/resize,P_20")
        let landscape = CLI.samples.appendingPathComponent("landscape.jpg").path
        let result = try CLI.run(["process", landscape, "image/resize,w_300/watermark,image_\(key),g_nw,x_0,y_0/format,png", "-o", "-",
                                  "--bucket-root", CLI.samples.path])
        #expect(result.status == 0, "\(result.stderr)")
        let raster = try Raster.decode(result.stdout)
        // The logo's orange disc covers the top-left corner, where the sky is blue.
        let pixel = raster.pixel(20, 20)
        #expect(pixel[0] > 180 && pixel[2] < 120, "\(pixel)")
        let without = try CLI.run(["process", landscape, "image/watermark,image_\(key)", "-o", "-"])
        #expect(without.status == 1 && without.stderr.contains("--bucket-root"))
    }
}

@Suite(.ownThreads) struct SignCLITests {
    @Test func signedURLsVerify() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("""
        version: 1
        region: cn-hangzhou
        access_keys:
          - id: AKIDTEST
            secret_env: DERIVE_TEST_SIGN_SECRET
        buckets:
          photos:
            path: photos
        styles:
          thumb: image/resize,w_100
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let environment = ["DERIVE_TEST_SIGN_SECRET": "s3cret"]
        for arguments in [["--process", "resize,w_100"], ["--style", "thumb", "--v4"], []] {
            let result = try CLI.run(["sign", "photos/a b/猫.jpg", "--endpoint", "http://127.0.0.1:9000"] + arguments, in: folder, environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            let url = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(url.hasPrefix("http://127.0.0.1:9000/photos/a%20b/%E7%8C%AB.jpg?"))
            let components = URLComponents(string: url)!
            let request = SignedRequest(method: "GET", bucket: "photos", key: "a b/猫.jpg",
                                        query: SignedRequest.parseQuery(components.percentEncodedQuery ?? ""), headers: [:])
            let verifier = Verifier(keys: ["AKIDTEST": "s3cret"], region: "cn-hangzhou")
            #expect(try verifier.authenticate(request, now: Int(Date().timeIntervalSince1970)) == "AKIDTEST")
        }
        let missing = try CLI.run(["sign", "photos/a.jpg"], in: folder)
        #expect(missing.status == 1 && missing.stderr.contains("DERIVE_TEST_SIGN_SECRET"))
    }

    /// `plan --json` answers with a JSON error object on standard output when no plan can be
    /// made (an invalid manifest), exit 1; the human message stays on standard error.
    @Test func planJSONErrorIsJSON() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("version: 1\nbuckets: {a: {path: nowhere}}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = try CLI.run(["plan", "--json"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        let stdout = String(decoding: result.stdout, as: UTF8.self)
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        #expect((object?["error"] as? String)?.isEmpty == false && object?["exitCode"] as? Int == 1, "\(stdout)")
        #expect(!stdout.contains("Error:") && result.stderr.contains("not valid"), "\(stdout) \(result.stderr)")
    }

    /// The JSON error object carries the reasons, each with its file, line and column (issue #10,
    /// fifth attack, finding 6: a YAML syntax error said only "the reason is on standard error").
    @Test func planJSONErrorCarriesTheReasons() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("version: 1\nbuckets: [\n".utf8).write(to: folder.appendingPathComponent("broken.yaml"))
        let result = try CLI.run(["plan", "--json", "broken.yaml"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        let stdout = String(decoding: result.stdout, as: UTF8.self)
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        let reasons = object?["reasons"] as? [[String: Any]] ?? []
        #expect(!reasons.isEmpty, "\(stdout)")
        for reason in reasons {
            #expect((reason["file"] as? String)?.hasSuffix("broken.yaml") == true, "\(stdout)")
            #expect((reason["line"] as? Int ?? 0) >= 1 && (reason["column"] as? Int ?? 0) >= 1, "\(stdout)")
            #expect((reason["message"] as? String)?.isEmpty == false, "\(stdout)")
        }
        #expect(!stdout.contains("on standard error"), "\(stdout)")
    }
}
