import Foundation
import Testing
import TestSupport
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// `derive serve` running a website bucket for a test: started on a free port, stopped by `stop()`.
final class ServeSession {
    let process = Process()
    let out: URL
    let port: UInt16

    /// Runs `derive serve` in `folder` (its `derive.yaml`) and waits for the address it prints.
    /// `errors`: a file for its standard error (its log), else none.
    /// `environment`: added to this process's (a HOME of the test's own).
    /// `nobodyStateHome`: runs serve as nobody (`runAsNobody`), its state tokens kept there.
    init(in folder: URL, manifest: String? = nil, errors: URL? = nil, environment: [String: String] = [:], nobodyStateHome: URL? = nil) throws {
        out = folder.appendingPathComponent("serve.out")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        process.executableURL = CLI.executable
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.arguments = ["serve", "--port", "0"] + (manifest.map { [$0] } ?? [])
        if let nobodyStateHome {
            process.executableURL = URL(fileURLWithPath: Nobody.setpriv)
            process.arguments = ["--reuid=\(Nobody.uid)", "--regid=\(Nobody.uid)", "--clear-groups", "/usr/bin/env",
                                 "XDG_STATE_HOME=\(nobodyStateHome.path)", CLI.executable.path] + (process.arguments ?? [])
        }
        process.currentDirectoryURL = folder
        process.standardOutput = try FileHandle(forWritingTo: out)
        if let errors {
            _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: errors)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        var found: UInt16?
        let deadline = Date().addingTimeInterval(60)
        while found == nil, Date() < deadline, process.isRunning {
            let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"on http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                found = UInt16(text[range].split(separator: ":").last ?? "")
            }
            usleep(50_000)
        }
        guard let found else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            throw Failure(message: "derive serve printed no address: \((try? String(contentsOf: out, encoding: .utf8)) ?? "")")
        }
        port = found
    }

    /// GET `target`: status, lowercased headers and body.
    func get(_ target: String) throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        let connection = try ServeConnectionTests.Connection(port: port)
        connection.send(ServeConnectionTests.get(target))
        return try #require(connection.response())
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    struct Failure: Error, CustomStringConvertible { var message: String; var description: String { message } }
}

/// Issue #13's preview: the demo site (`Manifests/page.yaml`, `Samples/site/`) served by
/// `derive serve` with website hosting and loaded in headless Chromium; `build --watch` beside
/// `serve` serves what it rebuilt.
@Suite(.ownThreads, .serialized) struct SitePreviewTests {
    /// Debian's `chromium` (the README test command installs it); nil when it is not installed.
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A page beside the demo page that loads it in a frame, makes its lazy images load, waits for
    /// each, then writes every `<img>`'s address and `naturalWidth`, and any resource the frame
    /// fetched with an error status, into the DOM, where `--dump-dom` shows them.
    static let probe = """
    <!doctype html><meta charset="utf-8"><title>probe</title>
    <pre id="result">pending</pre>
    <iframe id="page" src="index.html" style="width:1200px;height:6000px"></iframe>
    <script>
    const frame = document.getElementById("page");
    frame.addEventListener("load", () => {
      const images = Array.from(frame.contentDocument.images);
      images.forEach((img) => { img.loading = "eager"; });
      const settled = (img) => img.complete ? Promise.resolve()
        : new Promise((done) => { img.addEventListener("load", done); img.addEventListener("error", done); });
      Promise.all(images.map(settled)).then(() => {
        const failed = frame.contentWindow.performance.getEntriesByType("resource")
          .filter((entry) => entry.responseStatus >= 400).map((entry) => entry.name);
        const report = {images: images.map((img) => ({src: img.currentSrc, naturalWidth: img.naturalWidth})), failed: failed};
        document.getElementById("result").textContent = "RESULT " + JSON.stringify(report);
      });
    });
    </script>
    """

    /// What headless Chromium saw loading `address` (a probe page): each image's address and
    /// `naturalWidth`, the resources answered with an error, and the page's console messages.
    static func load(_ address: String, scratch: URL) throws -> (images: [[String: Any]], failed: [String]?, console: [Substring]) {
        let chromium = try #require(Self.chromium)
        let browser = Process()
        browser.executableURL = URL(filePath: chromium)
        browser.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--user-data-dir=\(scratch.appendingPathComponent("chromium").path)",
                             "--enable-logging=stderr", "--v=0", "--window-size=1200,6000", "--virtual-time-budget=30000",
                             "--dump-dom", address]
        let dom = scratch.appendingPathComponent("dom.html"), log = scratch.appendingPathComponent("chromium.log")
        _ = FileManager.default.createFile(atPath: dom.path, contents: nil)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        browser.standardOutput = try FileHandle(forWritingTo: dom)
        browser.standardError = try FileHandle(forWritingTo: log)
        try browser.run()
        let deadline = Date().addingTimeInterval(120)
        while browser.isRunning, Date() < deadline { usleep(100_000) }
        if browser.isRunning { kill(browser.processIdentifier, SIGKILL) }
        browser.waitUntilExit()

        let text = try String(contentsOf: dom, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.contains("RESULT {") }, "no result in the DOM: \(text.prefix(2000))")
        let json = try #require(line.range(of: "RESULT ").map { line[$0.upperBound...] }.flatMap { $0.split(separator: "<").first })
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.replacingOccurrences(of: "&amp;", with: "&").utf8)) as? [String: Any])
        let images = try #require(report["images"] as? [[String: Any]])
        // Chromium logs every console message of the page (errors, warnings) as CONSOLE lines.
        let console = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").filter { $0.contains(":CONSOLE") }
        return (images, report["failed"] as? [String], console)
    }

    /// The address serve printed for `bucket` (`Website bucket: ADDRESS`), read once serve answers.
    static func website(_ bucket: String, in serve: ServeSession) throws -> String {
        // Serve prints its Website lines after it starts listening: on a loaded machine the
        // first request can be answered before they are written, so wait for them (10 s at most).
        let deadline = Date().addingTimeInterval(10)
        var printed = try String(contentsOf: serve.out, encoding: .utf8)
        while !printed.contains("Website \(bucket): "), Date() < deadline {
            usleep(50_000)
            printed = try String(contentsOf: serve.out, encoding: .utf8)
        }
        let line = try #require(printed.split(separator: "\n").first { $0.hasPrefix("Website \(bucket): ") }, "\(printed)")
        return String(line.dropFirst("Website \(bucket): ".count).split(separator: " ").first ?? "")
    }

    @Test(.enabled(if: chromium != nil, "chromium is not installed (apt-get install -y --no-install-recommends chromium): the headless preview test needs it"))
    func theDemoSiteLoadsInHeadlessChromiumWithEveryImageDecoded() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let project = CLI.samples.deletingLastPathComponent()
        try FileManager.default.copyItem(at: project.appendingPathComponent("Manifests/page.yaml"),
                                         to: demo.root.appendingPathComponent("Manifests/page.yaml"))
        let build = try demo.run(["build", demo.root.appendingPathComponent("Manifests/page.yaml").path])
        #expect(build.status == 0, "\(build.stderr)")
        try Data(Self.probe.utf8).write(to: demo.root.appendingPathComponent("Samples/site/probe.html"))

        // README's preview: `derive serve Manifests/page.yaml`, then `site/` below the Website
        // address it prints. The same addresses work from file:// (DemoPageTests).
        let serve = try ServeSession(in: demo.root.appendingPathComponent("Manifests"), manifest: "page.yaml")
        defer { serve.stop() }
        let home = try serve.get("/samples/site/")
        #expect(home.status == 200 && home.headers["content-type"] == "text/html; charset=utf-8", "\(home.status) \(home.headers)")
        let source = try serve.get("/samples/landscape.jpg")
        #expect(source.status == 403, "the demo's sources stay private: \(source.status)")
        // The address that answers the page (attack 39b's L5: the bucket's root answered 403).
        let address = try Self.website("samples", in: serve)
        #expect(address == "http://127.0.0.1:\(serve.port)/samples/site/")
        let scratch = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }

        let seen = try Self.load(address + "probe.html", scratch: scratch)
        #expect(seen.images.count == 2, "\(seen.images)")
        for image in seen.images {
            #expect((image["naturalWidth"] as? Int ?? 0) > 0, "not decoded: \(image)")
            let src = image["src"] as? String ?? ""
            #expect(src.contains("/samples/site/pictures/") && (src.hasSuffix(".avif") || src.hasSuffix(".webp") || src.hasSuffix(".jpg")), "\(src)")
        }
        #expect(seen.failed == [], "resources answered with an error: \(seen.failed ?? [])")
        #expect(seen.console.isEmpty, "console messages: \(seen.console)")
    }

    /// README: `url: /` gives addresses that work on every page; the Website address serve prints
    /// for such a bucket must be one where they resolve (the bucket at the host's root).
    @Test(.enabled(if: chromium != nil, "chromium is not installed (apt-get install -y --no-install-recommends chromium): the headless preview test needs it"))
    func aRootRelativeURLBucketIsPrintedAtAnAddressWhereItsImagesLoad() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["photos", "_site"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/landscape.jpg"))
        try Data("""
        version: 1
        buckets:
          photos: {path: photos, acl: private}
          site: {path: _site, acl: public-read, url: /, website: {index: index.html}}
        derivatives:
          - name: small
            from: photos/*.jpg
            process: image/resize,w_{w}/format,webp
            matrix: {w: [200, 400]}
            to: site/img/{name}-{w}.webp
            acl: public-read
        index: site/derive-index.json
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let html = try CLI.run(["html", "photos/landscape.jpg", "--alt", "a landscape"], in: folder)
        #expect(html.status == 0, "\(html.stderr)")
        let picture = String(decoding: html.stdout, as: UTF8.self)
        #expect(picture.contains("srcset=\"/img/landscape-200.webp 200w"), "\(picture)")
        try Data("<!doctype html><meta charset=\"utf-8\"><title>home</title>\(picture)".utf8).write(to: folder.appendingPathComponent("_site/index.html"))
        try Data(Self.probe.utf8).write(to: folder.appendingPathComponent("_site/probe.html"))

        let serve = try ServeSession(in: folder)
        defer { serve.stop() }
        _ = try serve.get("/")
        let address = try Self.website("site", in: serve)
        #expect(address == "http://site.localhost:\(serve.port)/")
        let scratch = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let seen = try Self.load(address + "probe.html", scratch: scratch)
        #expect(seen.images.count == 1, "\(seen.images)")
        for image in seen.images {
            #expect((image["naturalWidth"] as? Int ?? 0) > 0, "not decoded: \(image)")
        }
        #expect(seen.failed == [], "resources answered with an error: \(seen.failed ?? [])")
        #expect(seen.console.isEmpty, "console messages: \(seen.console)")
    }

    @Test func watchRebuildsAndServeAnswersTheNewOutput() throws {
        let watch = try WatchSession(manifestText: """
        version: 1
        buckets:
          photos:
            path: photos
            acl: public-read
            website: {index: index.html}
        derivatives:
          - name: small
            from: photos/src/*.jpg
            process: image/resize,w_64
            to: photos/out/{name}.{ext}
        """)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        let serve = try ServeSession(in: watch.root)
        defer { serve.stop() }
        func served() throws -> (width: Int, height: Int)? {
            let reply = try serve.get("/photos/out/a.jpg")
            guard reply.status == 200, reply.headers["content-type"] == "image/jpeg" else { return nil }
            let raster = try Raster.decode(Data(reply.body))
            return (raster.width, raster.height)
        }
        let before = try #require(try served())
        #expect(before.width == 64 && before.height < 64, "the landscape: \(before)")
        // The source replaced by the portrait, as an editor saves (write aside, then rename).
        let temporary = watch.sources.appendingPathComponent(".a.jpg.swp")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: temporary)
        #expect(rename(temporary.path, watch.sources.appendingPathComponent("a.jpg").path) == 0)
        #expect(watch.waitForLines(2), "\(watch.lines) \(watch.standardError)")
        let after = try #require(try served())
        #expect(after.width == 64 && after.height > 64, "serve answers the rebuilt portrait: \(after)")
        #expect(watch.terminate() == 0)
    }
}

/// Issue #13 point 4 end to end: TIFF, HEIC and AVIF sources from the corpus have a size in the
/// planner, so widths past theirs give one output at their own width, and the index sizes them.
@Suite(.ownThreads, .serialized) struct SiteCorpusSizeTests {
    static let corpus = CLI.samples.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/corpus")

    @Test(.enabled(if: FileManager.default.fileExists(atPath: corpus.path), "../shared/corpus is not present"))
    func widthsPastATIFFHEICOrAVIFSourceAreOneOutputAtItsWidth() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sources = ["libvips/sample.tif": ("sample.tif", 290, 442), "generated/landscape.heic": ("landscape.heic", 900, 600),
                       "thumbor/image.avif": ("image.avif", 300, 400)]
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        for (path, (name, _, _)) in sources {
            try FileManager.default.copyItem(at: Self.corpus.appendingPathComponent(path), to: folder.appendingPathComponent("photos/\(name)"))
        }
        try Data("""
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        derivatives:
          - name: hero
            from: photos/*.{tif,heic,avif}
            process: image/resize,w_{w}/format,webp
            matrix: {w: [200, 2000, 4000]}
            to: site/{name}-{w}.webp
        index: site/derive-index.json
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let built = Set((try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("site").path)) ?? [])
        let data = try Data(contentsOf: folder.appendingPathComponent("site/derive-index.json"))
        let index = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for (_, (name, width, height)) in sources {
            let stem = (name as NSString).deletingPathExtension
            #expect(built.contains("\(stem)-200.webp") && built.contains("\(stem)-\(width).webp"), "\(built)")
            #expect(!built.contains("\(stem)-2000.webp") && !built.contains("\(stem)-4000.webp"), "\(built)")
            let image = try Raster.decode(try Data(contentsOf: folder.appendingPathComponent("site/\(stem)-\(width).webp")))
            #expect(image.width == width && image.height == height)
            let entry = try #require((index["sources"] as? [String: Any])?["photos/\(name)"] as? [String: Any])
            #expect(entry["width"] as? Int == width && entry["height"] as? Int == height, "\(name): \(entry)")
            let picture = try #require((entry["pictures"] as? [String: Any])?["hero"] as? [String: Any])
            let formats = try #require(picture["formats"] as? [[String: Any]])
            #expect(formats.first?["srcset"] as? String == "/\(stem)-200.webp 200w, /\(stem)-\(width).webp \(width)w", "\(formats)")
        }
    }
}
