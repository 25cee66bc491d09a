import Foundation
import Testing
import TestSupport
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack round 11: outputs at the source's own width in a fresh clone (F1), two
/// `{hash}` names that coincide (F2), the width a resize really sees (F4), and the manifest
/// `derive init` writes (F3, F5).
@Suite(.ownThreads, .serialized) struct SiteRound11Tests {
    struct Site {
        let root: URL
        init(_ images: [String: String], manifest: String?) throws {
            root = try CLI.temporaryFolder()
            for (path, sample) in images {
                let url = root.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: url)
            }
            if let manifest { try write(manifest) }
        }
        func write(_ manifest: String) throws { try Data(manifest.utf8).write(to: root.appendingPathComponent("derive.yaml")) }
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: url(path).path) }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }
        func lock() -> String { (try? String(contentsOf: url("derive.lock"), encoding: .utf8)) ?? "" }
        func freshClone() throws { try FileManager.default.removeItem(at: url(".derive")) }
        func files(_ folder: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: url(folder).path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// orientation-1.jpg is 300 px wide: w 480 and 960 both draw it at 300 (`o-300.webp`).
    static func widths(_ list: String, to: String = "site/{name}-{w}.webp", quality: String = "") -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: _site, acl: public-read}
        derivatives:
          - name: r
            from: images/*.jpg
            process: image/resize,w_{w}\(quality)/format,webp
            matrix: {w: [\(list)]}
            to: \(to)
            acl: public-read
        """
    }

    // MARK: F1: a source-width output is known from the lock in a fresh clone

    /// Attack 16's H2: without a state the lock deletes nothing; the old output is left, named once.
    @Test func aFreshCloneLeavesTheSourceWidthOutputOfARemovedSourceAndNamesIt() throws {
        let site = try Site(["images/o.jpg": "orientation-1.jpg"], manifest: Self.widths("480, 960"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        #expect(site.files("_site") == ["o-300.webp"])
        try site.freshClone()
        try FileManager.default.removeItem(at: site.url("images/o.jpg"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("= site/o-300.webp  left: known only from derive.lock"), "\(text(build.stdout))")
        #expect(site.exists("_site/o-300.webp"))
        // Not an output line any more: a `left` line keeps the file's ACL while it is there (round 19's V1).
        #expect(!site.lock().contains(#"{"path":"site/o-300"#) && site.lock().contains(#"{"left":"site/o-300.webp""#), "\(site.lock())")
    }

    @Test func aFreshCloneLeavesTheOldHashedSourceWidthOutputAfterAStyleChange() throws {
        let site = try Site(["images/o.jpg": "orientation-1.jpg"], manifest: Self.widths("480, 960", to: "site/{name}-{w}.{hash}.webp", quality: "/quality,q_60"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let old = site.files("_site")
        #expect(old.count == 1 && old[0].hasPrefix("o-300."), "\(old)")
        try site.freshClone()
        try site.write(Self.widths("480, 960", to: "site/{name}-{w}.{hash}.webp", quality: "/quality,q_70"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        // The old hashed file is known only from the lock: left (attack 16's H2), its line dropped.
        let now = site.files("_site")
        #expect(now.count == 2 && now.contains(old[0]) && now.allSatisfy { $0.hasPrefix("o-300.") }, "old \(old), now \(now)")
        #expect(text(build.stdout).contains("= site/\(old[0])  left: known only from derive.lock"), "\(text(build.stdout))")
        // Not an output line: a `left` line keeps its ACL while it is there (round 19's V1).
        #expect(!site.lock().contains(#"{"path":"site/\#(old[0])""#) && site.lock().contains(#"{"left":"site/\#(old[0])""#), "\(site.lock())")
        #expect(text(try site.run(["build"]).stdout).contains("Nothing to do: 1 output up to date"))
    }

    @Test func cleanInAFreshCloneRemovesSourceWidthOutputsAndLeavesWhatTheManifestNoLongerWrites() throws {
        let site = try Site(["images/o.jpg": "orientation-1.jpg"], manifest: Self.widths("480, 960"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try site.freshClone()
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(!site.exists("_site/o-300.webp") && !site.exists("derive.lock"), "\(clean.stderr)")

        // An output the manifest no longer writes (the widths moved into a folder): without a
        // state, clean deletes nothing on the lock's word (attack 16's V7): left, named, exit 0.
        #expect(try site.run(["build", "-q"]).status == 0)
        try site.freshClone()
        try site.write(Self.widths("200", to: "site/w{w}/{name}.webp"))
        let left = try site.run(["clean"])
        #expect(left.status == 0, "\(left.stderr)")
        #expect(left.stderr.contains("site/o-300.webp  left: known only from derive.lock"), "\(left.stderr)")
        #expect(site.exists("_site/o-300.webp"))
    }

    // MARK: F4: the width a resize sees follows the chain's orientation

    @Test func autoOrientOffAfterTheResizeIsNotCollapsedToTheDisplayedWidth() throws {
        // orientation-6.jpg is stored 200x300 and displayed 300x200; auto-orient,0 anywhere
        // turns orientation off for the whole chain, so the resize sees 200 px.
        let manifest = """
            version: 1
            buckets:
              images: {path: images}
              site: {path: _site, acl: public-read}
            derivatives:
              - name: r
                from: images/*.jpg
                process: image/resize,w_{w}/auto-orient,0/format,webp
                matrix: {w: [250, 400]}
                to: site/{name}-{w}.webp
                acl: public-read
            """
        let site = try Site(["images/p.jpg": "orientation-6.jpg"], manifest: manifest)
        defer { site.remove() }
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(site.files("_site") == ["p-250.webp", "p-400.webp"], "\(site.files("_site"))")
        for name in site.files("_site") {
            let image = try Raster.decode(try Data(contentsOf: site.url("_site/" + name)))
            #expect(image.width == 200 && image.height == 300, "\(name): \(image.width)x\(image.height)")
        }
    }

    // MARK: F2: two {hash} names that can coincide are written twice

    @Test func twoHashedTemplatesThatCanGiveOneNameAreRefusedAtPlanTime() throws {
        let manifest = """
            version: 1
            buckets:
              photos: {path: photos}
              img: {path: out, acl: public-read}
            derivatives:
              - {name: a, from: "photos/**/*.jpg", process: "image/format,webp", to: "img/{dir}{name}.{hash}.webp", acl: public-read}
              - {name: b, from: "photos/*.jpg", process: "image/format,webp/quality,q_85", to: "img/{name}.{hash:10}.webp", acl: public-read}
            """
        let site = try Site(["photos/sample.jpg": "orientation-1.jpg"], manifest: manifest)
        defer { site.remove() }
        let plan = try site.run(["plan"])
        #expect(plan.status != 0)
        #expect(plan.stderr.contains("would be written twice"), "\(plan.stderr)")
        let build = try site.run(["build"])
        #expect(build.status != 0 && build.stderr.contains("would be written twice"), "\(build.stderr)")
        #expect(site.files("out").isEmpty)
    }

    // MARK: L5: html refuses an empty sizes and control characters

    @Test func htmlRefusesAnEmptySizesAndControlCharacters() throws {
        let site = try Site([:], manifest: nil)
        defer { site.remove() }
        let empty = try site.run(["html", "photos/a.jpg", "--sizes", ""])
        #expect(empty.status != 0 && empty.stderr.contains("--sizes is empty"), "\(empty.stderr)")
        let control = try site.run(["html", "photos/a.jpg", "--alt", "a\u{1}b"])
        #expect(control.status != 0 && control.stderr.contains("--alt contains a control character"), "\(control.stderr)")
    }

    // MARK: F3, F5: the manifest derive init writes

    @Test func initBuildsWhenTwoImagesShareAStem() throws {
        let site = try Site(["photos/IMG_0001.jpg": "orientation-1.jpg", "photos/IMG_0001.jpeg": "orientation-2.jpg",
                             "photos/trips/other.jpg": "landscape.jpg"], manifest: nil)
        defer { site.remove() }
        #expect(try site.run(["init", "photos"]).status == 0)
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(site.files("_site").contains { $0.hasPrefix("IMG_0001.jpg") } && site.files("_site").contains { $0.hasPrefix("IMG_0001.jpeg") },
                "\(site.files("_site"))")
    }

    @Test func initReachesAPictureWithSourcesHashedNamesPlaceholdersAndAWebsite() throws {
        let site = try Site(["photos/landscape.jpg": "landscape.jpg", "photos/logo.png": "logo-alpha.png"], manifest: nil)
        defer { site.remove() }
        #expect(try site.run(["init", "photos"]).status == 0)
        let written = try String(contentsOf: site.url("derive.yaml"), encoding: .utf8)
        #expect(written.contains("{hash}") && written.contains("placeholder: true") && written.contains("website:"), "\(written)")
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        // Thumbnails in a web format, whatever the source's.
        let files = site.files("_site")
        #expect(files.contains { $0.hasPrefix("logo.thumb.") && $0.hasSuffix(".webp") }, "\(files)")
        #expect(!files.contains { $0.hasSuffix(".png") || $0.hasSuffix(".heic") || $0.hasSuffix(".tiff") }, "\(files)")
        let html = try site.run(["html", "photos/landscape.jpg", "--rule", "responsive"])
        #expect(html.status == 0, "\(html.stderr)")
        let picture = text(html.stdout)
        #expect(picture.contains("<source type=\"image/avif\"") && picture.contains("<source type=\"image/webp\""), "\(picture)")
        let index = try String(contentsOf: site.url("_site/derive-index.json"), encoding: .utf8)
        #expect(index.contains("\"placeholder\""), "\(index)")
        // The website's index page, written once by init and never by a build, reads the index.
        let page = try String(contentsOf: site.url("_site/index.html"), encoding: .utf8)
        #expect(page.contains("fetch(\"derive-index.json\")") && page.contains(".responsive"))
        #expect(index.contains("\"url\": \"./landscape-480."), "addresses from the page at _site/index.html")
        #expect(text(try site.run(["build"]).stdout).contains("Nothing to do:"))
        #expect(try site.run(["clean"]).status == 0)
        #expect(site.exists("_site/index.html"), "clean removes only what builds wrote")
    }
}
