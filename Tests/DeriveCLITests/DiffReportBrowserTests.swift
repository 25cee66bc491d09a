import Foundation
import Testing
import TestSupport
import Imaging

/// Where `chromium` is on PATH, if it is.
enum Chromium {
    static let path: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
                return "\(folder)/\(name)"
            }
        }
        return nil
    }()
}

/// The HTML report in a real browser: headless Chromium (Debian `chromium`) loads it, every
/// `<img>` decodes (`naturalWidth > 0`), no script error or console error, and a screenshot is
/// written. Skipped, saying why, where `chromium` is not installed.
@Suite(.ownThreads, .serialized, .enabled(if: Chromium.path != nil && DiffRepository.gitFound,
                             "headless Chromium check skipped: 'chromium' is not on PATH (apt-get install -y --no-install-recommends chromium) or git is missing"))
struct DiffReportBrowserTests {

    /// Runs Chromium headless with a deadline; standard output and error.
    static func browse(_ arguments: [String], profile: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Chromium.path!)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                             "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 90, execute: deadline)
        let errors = Locked(Data())
        let reader = Thread { errors.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()
        while !errors.done { usleep(10_000) }
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: errors.value, as: UTF8.self))
    }

    final class Locked: @unchecked Sendable {
        private let lock = NSLock()
        private var data: Data
        private var finished = false
        init(_ data: Data) { self.data = data }
        func set(_ value: Data) { lock.withLock { data = value; finished = true } }
        var done: Bool { lock.withLock { finished } }
        var value: Data { lock.withLock { data } }
    }

    @Test func reportLoadsInChromiumWithEveryImageAndNoErrors() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.change(commit: false)
        let report = repository.folder.appendingPathComponent("report")
        let result = try repository.run(["diff", "--html", report.path])
        #expect(result.status == 0, "\(result.stderr)")
        let page = try String(contentsOf: report.appendingPathComponent("index.html"), encoding: .utf8)
        // Self-contained: no address outside the folder.
        #expect(!page.contains("http://") && !page.contains("https://") && !page.contains("src=\"/"))
        // The checker: the report with a script first in <head> that records errors, and one at
        // load that writes what it found into the DOM, which --dump-dom prints.
        let checker = """
        <script>window.__errors=[];window.addEventListener('error',function(e){__errors.push(String(e.message||(e.target&&e.target.src)))},true);
        var __ce=console.error;console.error=function(){__errors.push(Array.from(arguments).join(' '));__ce.apply(console,arguments)};
        window.addEventListener('load',function(){var imgs=Array.from(document.images);
        document.body.setAttribute('data-check',JSON.stringify({images:imgs.length,broken:imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).map(function(i){return i.getAttribute('src')}),errors:__errors}))});</script>
        """
        let checked = page.replacingOccurrences(of: "<head>", with: "<head>" + checker)
        try Data(checked.utf8).write(to: report.appendingPathComponent("check.html"))
        let profile = repository.folder.appendingPathComponent("chromium-profile")
        let dom = try Self.browse(["--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom",
                                   report.appendingPathComponent("check.html").absoluteString], profile: profile)
        let marker = try #require(dom.stdout.range(of: "data-check=\""), "no check result in the DOM: \(dom.stderr.suffix(2000))")
        let rest = dom.stdout[marker.upperBound...]
        let json = String(rest[..<(rest.firstIndex(of: "\"") ?? rest.endIndex)]).replacingOccurrences(of: "&quot;", with: "\"")
        let found = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        // 2 thumbnails × (old, new, heat map, and old + new in the slider) + 1 created + 1 deleted.
        #expect(found["images"] as? Int == 12)
        #expect((found["broken"] as? [Any])?.isEmpty == true, "\(found)")
        #expect((found["errors"] as? [Any])?.isEmpty == true, "\(found)")
        #expect(!dom.stderr.contains("Uncaught"), "\(dom.stderr)")
        // A screenshot of the report itself.
        let shot = repository.folder.appendingPathComponent("report.png")
        let screenshot = try Self.browse(["--window-size=1280,1600", "--screenshot=\(shot.path)",
                                          report.appendingPathComponent("index.html").absoluteString], profile: profile)
        #expect(screenshot.status == 0, "\(screenshot.stderr.suffix(2000))")
        let raster = try Raster.decode(Data(contentsOf: shot))
        #expect(raster.width == 1280 && raster.height == 1600)
        try? FileManager.default.copyItem(at: shot, to: URL(fileURLWithPath: NSTemporaryDirectory() + "derive-diff-report.png"))
    }
}
