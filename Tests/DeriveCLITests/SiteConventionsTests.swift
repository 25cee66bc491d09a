import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13 (first half), end to end through the `derive` executable: CLI conventions
/// (--version, init, schema, completion scripts), list-form styles, fontconfig families and
/// build errors grouped by source.
@Suite(.ownThreads, .serialized) struct SiteConventionsTests {
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// A folder with `images` (path → sample name, or `text:` bytes) and a manifest.
    static func project(_ images: [String: String], manifest: String? = nil) throws -> URL {
        let folder = try CLI.temporaryFolder()
        for (path, source) in images {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if source.hasPrefix("text:") {
                try Data(source.dropFirst(5).utf8).write(to: url)
            } else {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(source), to: url)
            }
        }
        if let manifest { try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml")) }
        return folder
    }

    @Test func versionNamesDeriveAndLibvips() throws {
        let result = try CLI.run(["--version"])
        #expect(result.status == 0)
        let lines = Self.text(result.stdout).split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("derive ") == true, "\(lines)")
        #expect(lines.contains("libvips " + Engine.libvipsVersion), "\(lines)")
    }

    @Test func completionScriptsForEachShell() throws {
        for (shell, marker) in [("bash", "complete -o filenames -F _derive derive"), ("zsh", "#compdef derive"), ("fish", "complete -c 'derive'")] {
            let result = try CLI.run(["--generate-completion-script", shell])
            #expect(result.status == 0, "\(shell): \(result.stderr)")
            let script = Self.text(result.stdout)
            #expect(script.contains(marker), "\(shell)")
            #expect(script.contains("init") && script.contains("schema") && script.contains("serve"), "\(shell)")
        }
    }

    @Test func schemaIsJSONSchemaOfTheManifest() throws {
        let result = try CLI.run(["schema"])
        #expect(result.status == 0)
        let schema = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect((schema["$schema"] as? String)?.contains("2020-12") == true)
        #expect((schema["required"] as? [String]) == ["version"])
        let properties = try #require(schema["properties"] as? [String: Any])
        #expect(properties["derivatives"] != nil && properties["buckets"] != nil && properties["styles"] != nil)
    }

    /// Attack 20's I1: init's rules took only the extensions found, so a camera's `IMG_2000.JPG`,
    /// a `.jpeg` or a `.webp` added later matched no rule while plan, build and check said
    /// "up to date". They are built now.
    @Test func imagesAddedLaterWithOtherExtensionsAreBuilt() throws {
        let folder = try Self.project(["photos/a.jpg": "landscape.jpg"])
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["init", "photos"], in: folder).status == 0)
        #expect(try CLI.run(["build", "--quiet"], in: folder).status == 0)
        for (name, sample) in [("IMG_2000.JPG", "landscape.jpg"), ("b.jpeg", "portrait.jpg"), ("c.PNG", "logo-alpha.png")] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: folder.appendingPathComponent("photos/" + name))
        }
        #expect(try CLI.run(["check"], in: folder).status != 0)
        let build = try CLI.run(["build", "--quiet"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let site = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path)
        for stem in ["IMG_2000.thumb.", "b.thumb.", "c.thumb."] {
            #expect(site.contains { $0.hasPrefix(stem) && $0.hasSuffix(".webp") }, "\(stem) in \(site.sorted())")
        }
        #expect(try CLI.run(["check"], in: folder).status == 0)
    }

    @Test func initWritesAStarterManifestThatBuildsAndNeverOverwrites() throws {
        let folder = try Self.project(["photos/landscape.jpg": "landscape.jpg", "photos/trips/portrait.jpg": "portrait.jpg",
                                       "photos/logo.png": "logo-alpha.png", "photos/.hidden/skip.jpg": "landscape.jpg",
                                       "photos/notes.txt": "text:hello", "elsewhere/other.jpg": "landscape.jpg"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try CLI.run(["init", "photos"], in: folder)
        #expect(first.status == 0, "\(first.stderr)")
        let manifest = folder.appendingPathComponent("derive.yaml")
        let written = try String(contentsOf: manifest, encoding: .utf8)
        #expect(written.contains("(2 jpg, 1 png)"), "\(written)")
        #expect(written.contains("path: \"photos\""))
        #expect(written.contains("from: images/**/*.{jpg,JPG,jpeg,JPEG,png,PNG,webp,WEBP,gif,GIF,heic,HEIC,heif,HEIF,avif,AVIF,tif,TIF,tiff,TIFF,bmp,BMP}"))
        #expect(written.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }.count >= 8)
        let validate = try CLI.run(["validate"], in: folder)
        #expect(validate.status == 0 && validate.stderr.isEmpty, "\(validate.stderr)")
        let build = try CLI.run(["build", "--quiet"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        // Outputs named by their bytes ({hash}), thumbnails as WebP whatever the source's format.
        let site = folder.appendingPathComponent("_site")
        func find(_ sub: String, _ prefix: String, _ suffix: String) throws -> URL {
            let dir = sub.isEmpty ? site : site.appendingPathComponent(sub)
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            return try #require(names.first { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }.map { dir.appendingPathComponent($0) }, "\(names)")
        }
        let thumb = try Raster.decode(try Data(contentsOf: try find("trips", "portrait.thumb.", ".webp")))
        #expect(thumb.width == 320 && thumb.height == 320)
        let webp = try Raster.decode(try Data(contentsOf: try find("", "landscape-480.", ".webp")))
        #expect(webp.width == 480)
        #expect(try find("", "landscape-480.", ".avif").lastPathComponent.count == "landscape-480.".count + 10 + ".avif".count)
        #expect(Self.text(try CLI.run(["build"], in: folder).stdout).contains("Nothing to do:"))
        // A second init refuses and leaves the manifest as it was.
        let again = try CLI.run(["init", "elsewhere"], in: folder)
        #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again.stderr)")
        #expect(try String(contentsOf: manifest, encoding: .utf8) == written)
        // The images' folder may not hold the manifest; a folder without images writes nothing.
        let inside = try CLI.run(["init", "."], in: folder.appendingPathComponent("elsewhere"))
        #expect(inside.status == 1 && inside.stderr.contains("holds the current folder"), "\(inside.stderr)")
        let none = try CLI.run(["init", "photos"], in: folder.appendingPathComponent("photos/trips").deletingLastPathComponent().appendingPathComponent(".hidden"))
        // .hidden lies in the images bucket (photos): init refuses there before looking for images (m51's M7).
        #expect(none.status == 1 && none.stderr.contains("another project; derive init writes nothing here"), "\(none.stderr)")
        let empty = try Self.project(["docs/notes.txt": "text:hello"])
        defer { try? FileManager.default.removeItem(at: empty) }
        let noImages = try CLI.run(["init", "docs"], in: empty)
        #expect(noImages.status == 1 && noImages.stderr.contains("found no images"), "\(noImages.stderr)")
        #expect(!FileManager.default.fileExists(atPath: empty.appendingPathComponent("derive.yaml").path))
    }

    /// Attack 18's I2: `derive init _site/photos` (images kept inside the output folder) wrote a
    /// manifest whose buckets overlap and that did not validate, plus `_site/index.html`; only
    /// `_site` itself was refused. Any folder inside `_site`, through a link too, is refused
    /// before anything is written.
    @Test func initRefusesAFolderInsideTheOutputFolder() throws {
        let folder = try Self.project(["_site/photos/a.jpg": "landscape.jpg", "_site/b.jpg": "portrait.jpg"])
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("pics").path, withDestinationPath: "_site/photos")
        for dir in ["_site/photos", "_site", "pics", "./_site/photos/"] {
            let result = try CLI.run(["init", dir], in: folder)
            #expect(result.status == 1 && result.stderr.contains("where derive init puts the outputs; keep the images in another folder"), "\(dir): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path), "\(dir)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("_site/index.html").path), "\(dir)")
        }
    }

    static let stringStyle = "  stamp: image/resize,w_200/watermark,text_" + Base64URL.encode("© 2026 Lake Studio") + ",size_24,g_se/format,webp\n"
    static let listStyle = """
      stamp:
        - resize: {w: 200}
        - watermark: {text: "© 2026 Lake Studio", size: 24, g: se}
        - format: webp

    """

    static func manifest(styles: String) -> String {
        """
        version: 1
        x-public: &public
          acl: public-read
        buckets:
          photos: {path: photos, acl: private}
          site: {<<: *public, path: site}
        styles:
        \(styles)derivatives:
          - name: stamped
            from: photos/*.jpg
            styles: [stamp]
            to: site/{name}.{style}.webp
            acl: public-read
        """
    }

    /// Switching a style between its string and list forms rebuilds nothing.
    @Test func bothStyleFormsHaveOneFingerprint() throws {
        let folder = try Self.project(["photos/landscape.jpg": "landscape.jpg"], manifest: Self.manifest(styles: Self.stringStyle))
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = folder.appendingPathComponent("derive.yaml").path
        let build = try CLI.run(["build", manifest, "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        try Data(Self.manifest(styles: Self.listStyle).utf8).write(to: URL(fileURLWithPath: manifest))
        let styles = try CLI.run(["styles", manifest])
        #expect(Self.text(styles.stdout).contains("text_" + Base64URL.encode("© 2026 Lake Studio")), "\(Self.text(styles.stdout))")
        let plan = try CLI.run(["plan", manifest, "--detailed-exitcode"])
        #expect(plan.status == 0, "\(Self.text(plan.stdout)) \(plan.stderr)")
        #expect(Self.text(plan.stdout).contains("No changes: 1 output up to date."))
    }

    /// A fontconfig family outside the seven OSS names draws text; an unknown one is a manifest
    /// error at its style, naming the family and how to list the installed ones.
    @Test func anyInstalledFontFamilyMayBeNamed() throws {
        // Installed by fonts-wqy-microhei (README), and not one of the seven OSS mappings.
        let family = "WenQuanYi Micro Hei Mono"
        let styles = """
          plain: image/resize,w_300/format,png
          named:
            - resize: {w: 300}
            - watermark: {text: "Derive 示例", type: "\(family)", size: 40, color: FF0000, g: center}
            - format: png

        """
        let manifest = """
        version: 1
        buckets:
          photos: {path: photos, acl: private}
          site: {path: site, acl: private}
        styles:
        \(styles)derivatives:
          - from: photos/*.jpg
            styles: [plain, named]
            to: site/{name}.{style}.png
        """
        let folder = try Self.project(["photos/landscape.jpg": "landscape.jpg"], manifest: manifest)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("derive.yaml").path
        let build = try CLI.run(["build", path, "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        let plain = try Raster.decode(try Data(contentsOf: folder.appendingPathComponent("site/landscape.plain.png")))
        let named = try Raster.decode(try Data(contentsOf: folder.appendingPathComponent("site/landscape.named.png")))
        #expect(named.width == plain.width && named.height == plain.height)
        // Red text in the middle: pixels that were not red before.
        var reddened = 0
        for y in 0..<named.height { for x in 0..<named.width {
            let before = plain.pixel(x, y), after = named.pixel(x, y)
            if after[0] > 200 && after[1] < 60 && after[2] < 60 && !(before[0] > 200 && before[1] < 60) { reddened += 1 }
        } }
        #expect(reddened > 200, "\(reddened)")

        let broken = manifest.replacingOccurrences(of: family, with: "No Such Family Sans")
        try Data(broken.utf8).write(to: URL(fileURLWithPath: path))
        let validate = try CLI.run(["validate", path])
        #expect(validate.status == 1)
        // (Said once, at the style, naming the rules that use it: names-39.)
        #expect(validate.stderr.contains("derive.yaml:8:5: error: font family 'No Such Family Sans' in style 'named' is not installed; style 'named' is used by rule at derive.yaml:12 (list the installed families with: fc-list : family)"),
                "\(validate.stderr)")
    }

    /// Two corrupt photos with three derivatives each: two error lines, one per source.
    @Test func buildErrorsAreGroupedBySource() throws {
        let manifest = """
        version: 1
        buckets:
          photos: {path: photos, acl: private}
          site: {path: site, acl: private}
        derivatives:
          - from: photos/*.jpg
            process: image/resize,w_{w}
            matrix:
              w: [50, 60, 70]
            to: site/{name}-{w}.{ext}
        """
        let folder = try Self.project(["photos/good.jpg": "landscape.jpg", "photos/IMG_1.jpg": "text:not a jpeg at all",
                                       "photos/IMG_2.jpg": "text:\u{FF}\u{D8}\u{FF}truncated"], manifest: manifest)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("derive.yaml").path
        let build = try CLI.run(["build", path, "--quiet"])
        #expect(build.status == 1)
        let errors = build.stderr.split(separator: "\n").filter { $0.hasPrefix("derive: failure:") }
        #expect(errors.count == 2, "\(build.stderr)")
        #expect(errors.contains { $0.hasPrefix("derive: failure: photos/IMG_1.jpg: ") && $0.contains(", 3 derivatives not built: ") }, "\(build.stderr)")
        #expect(errors.contains { $0.hasPrefix("derive: failure: photos/IMG_2.jpg: ") && $0.contains(", 3 derivatives not built: ") }, "\(build.stderr)")
        #expect(Self.text(build.stdout).contains("built 3"), "\(Self.text(build.stdout))")
        let verbose = try CLI.run(["build", path, "--quiet", "--verbose"])
        #expect(verbose.status == 1)
        // Not an image, it fails when planned (round 11, N5): the source is named with what it costs.
        #expect(verbose.stderr.contains("photos/IMG_1.jpg: the source is not an image in a supported format (JPEG, PNG, GIF, WebP, TIFF, HEIC, AVIF, BMP), 3 derivatives not built"), "\(verbose.stderr)")
    }

    /// A built site previewed over real HTTP: `derive serve` prints the website's address, the
    /// index answers `/site/` as text/html, a missing page the error document with 404, JSON and
    /// WebP their own types.
    @Test func aWebsiteBucketIsBrowsableOverHTTP() throws {
        let folder = try Self.project(["site/index.html": "text:<!doctype html><title>home</title>", "site/404.html": "text:lost",
                                       "site/derive-index.json": "text:{}", "site/img/a.webp": "text:RIFF0000WEBP"], manifest: """
        version: 1
        buckets:
          site:
            path: site
            acl: public-read
            website: {index: index.html, error: 404.html}
        """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("serve.out")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["serve", "--port", "0"]
        process.currentDirectoryURL = folder
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        var address: String?
        let deadline = Date().addingTimeInterval(30)
        while address == nil, Date() < deadline, process.isRunning {
            let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"Website site: http://127\.0\.0\.1:[0-9]+/site/"#, options: .regularExpression) {
                address = String(text[range].dropFirst("Website site: ".count))
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let url = try #require(address, "no website line: \((try? String(contentsOf: out, encoding: .utf8)) ?? "")")
        let port = try #require(UInt16(url.split(separator: ":")[2].split(separator: "/")[0]))
        let connection = try ServeConnectionTests.Connection(port: port)
        connection.send(ServeConnectionTests.get("/site/"))
        let home = try #require(connection.response())
        #expect(home.status == 200 && home.headers["content-type"] == "text/html; charset=utf-8" && String(decoding: home.body, as: UTF8.self).contains("home"))
        connection.send(ServeConnectionTests.get("/site/missing.html"))
        let missing = try #require(connection.response())
        #expect(missing.status == 404 && String(decoding: missing.body, as: UTF8.self) == "lost")
        connection.send(ServeConnectionTests.get("/site/derive-index.json"))
        #expect(connection.response()?.headers["content-type"] == "application/json")
        connection.send(ServeConnectionTests.get("/site/img/a.webp"))
        #expect(connection.response()?.headers["content-type"] == "image/webp")
    }
}
