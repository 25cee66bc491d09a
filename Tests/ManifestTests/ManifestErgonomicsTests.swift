import Foundation
import Testing
import TestSupport
import ProcessLanguage
@testable import Manifest

/// Issue #13 (first half): `x-` anchors, styles as lists of actions, fontconfig families,
/// website hosting keys and the JSON Schema drawn from the loader's own tables.
@Suite(.ownThreads) struct ManifestErgonomicsTests {
    // MARK: x- keys

    @Test func topLevelXKeysAreIgnoredAndServeAsAnchors() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        x-public: &public
          acl: public-read
        x-sizes: [320, 640]
        buckets:
          photos: {path: photos}
          site:
            <<: *public
            path: site
        derivatives:
          - from: photos/*.jpg
            process: image/resize,w_100
            to: site/{name}.{ext}
            acl: public-read
        """)
        #expect(result.lines.isEmpty, "\(result.lines)")
        #expect(result.manifest?.bucket(named: "site")?.acl == .publicRead)
    }

    @Test func otherUnknownTopLevelKeysAreStillErrors() throws {
        let result = try Workspace().load(yaml: baseBuckets + "\nxdefaults: 1\nX-upper: 2\n")
        #expect(result.has(12, 1, "unknown key 'xdefaults'"), "\(result.lines)")
        #expect(result.has(13, 1, "unknown key 'X-upper'"), "\(result.lines)")
    }

    @Test func includedFilesMayHoldXKeysToo() throws {
        let workspace = try Workspace()
        try workspace.write("styles.yaml", "version: 1\nx-common: &q quality,q_80\nstyles:\n  thumb: image/resize,w_100\n")
        try workspace.write("derive.yaml", baseBuckets + "\ninclude: [styles.yaml]\n")
        let result = workspace.load("derive.yaml", objects: ["photos": ["a.jpg"]])
        #expect(result.lines.isEmpty, "\(result.lines)")
    }

    // MARK: Styles as lists

    static let listStyles = """
    styles:
      hero:
        - resize: {w: 400}
        - watermark: {text: "© 2026 Lake Studio", size: 24, g: se}
        - format: webp
      flat: image/resize,w_400/watermark,text_wqkgMjAyNiBMYWtlIFN0dWRpbw,size_24,g_se/format,webp
      bare:
        - auto-orient: 0
        - rotate: 90
        - watermark: {text: "x", fill: true}
      meta: [info]
    """

    @Test func aListStyleCompilesToTheOSSStringWithBase64DoneByDerive() throws {
        let result = try Workspace().load(yaml: baseBuckets + "\n" + Self.listStyles + "\n")
        #expect(result.lines.isEmpty, "\(result.lines)")
        let catalogue = try #require(result.manifest).catalogue
        let hero = try #require(catalogue["hero"]), flat = try #require(catalogue["flat"])
        #expect(hero.process == "image/resize,w_400/watermark,text_" + Base64URL.encode("© 2026 Lake Studio") + ",size_24,g_se/format,webp")
        // Both forms of one recipe are the same pipeline, so the same fingerprint.
        #expect(hero.pipeline.canonical == flat.pipeline.canonical)
        #expect(hero.pipeline == flat.pipeline)
        let bare = try #require(catalogue["bare"])
        #expect(bare.process == "image/auto-orient,0/rotate,90/watermark,text_eA,fill_1")
        #expect(catalogue["meta"]?.process == "image/info")
        #expect(hero.location.line == 14)
    }

    @Test func listStyleErrorsPointAtTheValueOrActionWritten() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          zero:
            - resize: {w: 0}
          typo:
            - format: webp
            - rezise: {w: 10}
          comma:
            - resize: {w: "1,2"}
          two:
            - {resize: {w: 1}, format: png}
        """)
        #expect(result.has(14, 19, "resize: parameter 'w' must be in"), "\(result.lines)")
        #expect(result.has(17, 7, "unknown action 'rezise'"), "\(result.lines)")
        #expect(result.has(19, 19, "cannot be empty or contain '/' or ','"), "\(result.lines)")
        #expect(result.has(21, 7, "names one action"), "\(result.lines)")
        #expect(result.manifest?.catalogue.isEmpty == true)
    }

    // MARK: Fonts

    @Test func fontFamiliesBeyondTheOSSNamesMustBeInstalled() throws {
        let workspace = try Workspace()
        try workspace.write("derive.yaml", baseBuckets + """

        styles:
          known:
            - watermark: {text: "hi", type: "DejaVu Sans"}
          unknown:
            - watermark: {text: "hi", type: "No Such Sans"}
          oss: image/watermark,text_aGk,type_d3F5LXplbmhlaQ
        """)
        var loader = ManifestLoader(lister: StubLister(folders: [:]))
        loader.fontInstalled = { $0 == "DejaVu Sans" }
        let result = loader.load(workspace.path("derive.yaml"))
        #expect(result.has(16, 5, "font family 'No Such Sans' in style 'unknown' is not installed"), "\(result.lines)")
        #expect(result.has(16, 5, "fc-list : family"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
        #expect(result.manifest?.catalogue["known"] != nil)
    }

    @Test func aFamilyNameCannotCarryPatternSyntax() throws {
        #expect(Watermark.isFamilyName("DejaVu Sans"))
        #expect(Watermark.isFamilyName("文泉驿正黑"))
        for bad in ["", " Lead", "a:bold", "a,b", "x\u{0}", String(repeating: "a", count: 65)] {
            #expect(!Watermark.isFamilyName(bad), "\(bad)")
            #expect(throws: ProcessError.self) { try Pipeline.parse("image/watermark,text_aGk,type_" + Base64URL.encode(bad)) }
        }
    }

    // MARK: Website

    @Test func websiteNeedsAnIndexFileName() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          site:
            path: site
            acl: public-read
            website: {index: index.html, error: 404.html}
          docs:
            path: docs
            website: {index: a/index.html}
          blog:
            path: blog
            website: {error: 404.html, home: x}
        """)
        #expect(result.manifest?.bucket(named: "site")?.website == Website(index: "index.html", error: "404.html"))
        #expect(result.has(9, 22, "must be a file name without '/'"), "\(result.lines)")
        #expect(result.has(12, 14, "needs 'index'"), "\(result.lines)")
        #expect(result.has(12, 32, "unknown key 'home'"), "\(result.lines)")
    }

    /// Attack round 25 (static L7): control characters in `website` values reached the terminal
    /// raw (an ESC sequence, or backspaces making `x\b\b404.html` show as a valid `404.html`),
    /// the reason given was the wrong one, and a bad `error:` was not reported beside a bad index.
    @Test func badWebsiteValuesAreAllReportedEscapedWithTheirReason() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          site:
            path: site
            website: {index: "index.html\\u001b[8m", error: "x\\b\\b404.html"}
          docs:
            path: docs
            website: {index: "..", error: "errors/"}
        """)
        let text = result.lines.joined(separator: "\n")
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "\(text.debugDescription)")
        #expect(result.has(5, 22, "website.index 'index.html\\u{1B}[8m'"), "\(result.lines)")
        #expect(result.has(5, 22, "control character"), "\(result.lines)")
        #expect(result.has(5, 52, "website.error 'x\\u{8}\\u{8}404.html'"), "\(result.lines)")
        #expect(result.has(8, 22, "'.' or '..' segment"), "\(result.lines)")
        #expect(result.has(8, 35, "ends with '/'"), "\(result.lines)")
    }

    // MARK: Schema

    @Test func theSchemaNamesExactlyTheKeysTheLoaderAccepts() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: ManifestSchema.json()) as? [String: Any])
        let properties = try #require(schema["properties"] as? [String: Any])
        #expect(Set(properties.keys) == Set(ManifestLoader.topLevelKeys))
        #expect(schema["additionalProperties"] as? Bool == false)
        func keys(_ path: [String]) -> Set<String> {
            var node: Any = schema
            for step in path {
                guard let object = node as? [String: Any], let next = object[step] else { return [] }
                node = next
            }
            return Set(((node as? [String: Any])?["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
        }
        #expect(keys(["properties", "buckets", "additionalProperties"]) == Set(ManifestSchema.bucket.names))
        #expect(keys(["properties", "derivatives", "items"]) == Set(ManifestSchema.rule.names))
        #expect(keys(["properties", "limits"]) == Set(ManifestSchema.limits.names))
        #expect(keys(["properties", "serve"]) == Set(ManifestSchema.serve.names))
        #expect(keys(["properties", "buckets", "additionalProperties", "properties", "website"]) == ["index", "error"])
        // And the loader refuses what the schema does not name, in each section.
        let result = try Workspace().load(yaml: baseBuckets + """

            website: {index: i.html, errors: e.html}
        limits: {byte: 1}
        serve: {queue: 1}
        derivatives:
          - from: photos/*.jpg
            process: image/resize,w_1
            to: site/{name}.{ext}
            ac: private
        """)
        for key in ["errors", "byte", "queue", "ac"] {
            #expect(result.diagnostics.errors.contains { $0.message.contains("unknown key '\(key)'") }, "\(key): \(result.lines)")
        }
    }
}
