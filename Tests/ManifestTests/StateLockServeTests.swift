import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Each manifest owns its state folder and lock (issue #9.12); `serve:` settings (issue #11).
@Suite(.ownThreads) struct StateAndLockTests {
    @Test func deriveYamlKeepsDeriveLock() throws {
        let workspace = try Workspace()
        let manifest = try #require(try workspace.load(yaml: "version: 1\n").manifest)
        #expect(manifest.lockFile == workspace.folder.appendingPathComponent("derive.lock").standardizedFileURL.path)
        #expect(manifest.stateFolder == workspace.folder.appendingPathComponent(".derive/derive").standardizedFileURL.path)
        #expect(manifest.lockFile.hasPrefix("/"))
    }

    @Test func twoManifestsInOneFolderOwnSeparateFiles() throws {
        let workspace = try Workspace()
        try workspace.write("site.yaml", "version: 1\n")
        try workspace.write("blog.prod.yaml", "version: 1\n")
        let site = try #require(workspace.load("site.yaml").manifest)
        let blog = try #require(workspace.load("blog.prod.yaml").manifest)
        #expect(site.lockFile.hasSuffix("/site.lock") && blog.lockFile.hasSuffix("/blog.prod.lock"))
        #expect(site.stateFolder.hasSuffix("/.derive/site") && blog.stateFolder.hasSuffix("/.derive/blog.prod"))
        #expect(site.lockFile != blog.lockFile && site.stateFolder != blog.stateFolder)
    }

    @Test func lockAndStateCanBeSet() throws {
        let workspace = try Workspace()
        let manifest = try #require(try workspace.load(yaml: "version: 1\nlock: locks/site.lock\nstate: cache/site\n").manifest)
        #expect(manifest.lockFile == workspace.folder.appendingPathComponent("locks/site.lock").standardizedFileURL.path)
        #expect(manifest.stateFolder == workspace.folder.appendingPathComponent("cache/site").standardizedFileURL.path)
    }

    @Test func badLockValues() throws {
        let workspace = try Workspace()
        try FileManager.default.createDirectory(atPath: workspace.path("folder"), withIntermediateDirectories: true)
        #expect(try workspace.load(yaml: "version: 1\nlock: folder\n").has(2, 7, "which is a folder"))
        #expect(try workspace.load(yaml: "version: 1\nlock: [a]\n").has(2, 7, "lock must be a string"))
        #expect(try workspace.load(yaml: "version: 1\nlock: derive.yaml\n").has(2, 7, "is one of the manifest files"))
        try workspace.write("styles.yaml", "version: 1\n")
        #expect(try workspace.load(yaml: "version: 1\ninclude: [styles.yaml]\nlock: styles.yaml\n").has(3, 7, "is one of the manifest files"))
    }

    @Test func lockIsTopLevelOnly() throws {
        let workspace = try Workspace()
        try workspace.write("styles.yaml", "version: 1\nlock: x.lock\n")
        let result = try workspace.load(yaml: "version: 1\ninclude: [styles.yaml]\n")
        #expect(result.diagnostics.errors.contains { $0.file.hasSuffix("styles.yaml") && $0.message.contains("unknown key 'lock' in an included file") })
    }
}

@Suite(.ownThreads) struct ServeSettingsTests {
    @Test func defaults() throws {
        let manifest = try #require(try Workspace().load(yaml: "version: 1\n").manifest)
        #expect(manifest.serve.cacheMaxBytes == 1 << 30)
        #expect(manifest.serve.renderQueue == 64)
        #expect(manifest.serve == ServeSettings())
    }

    @Test func values() throws {
        let result = try Workspace().load(yaml: "version: 1\nserve:\n  cache_max_bytes: 268_435_456\n  render_queue: 8\n")
        #expect(result.lines == [])
        #expect(result.manifest?.serve == ServeSettings(cacheMaxBytes: 268_435_456, renderQueue: 8))
    }

    @Test func problems() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        serve:
          cache_max_bytes: -1
          render_queue: lots
          cache_size: 10
        """)
        #expect(result.has(3, 20, "serve.cache_max_bytes must be at least 0, got -1"), "\(result.lines)")
        #expect(result.has(4, 17, "serve.render_queue must be an integer, got 'lots'"), "\(result.lines)")
        #expect(result.has(5, 3, "unknown key 'cache_size' in 'serve'"), "\(result.lines)")
        #expect(result.manifest?.serve == ServeSettings())   // bad values keep the defaults
        let shape = try Workspace().load(yaml: "version: 1\nserve: 5\n")
        #expect(shape.has(2, 8, "'serve' must be a mapping"), "\(shape.lines)")
        let huge = try Workspace().load(yaml: "version: 1\nserve:\n  render_queue: 99999999\n")
        #expect(huge.has(3, 17, "serve.render_queue must be at most 1000000"), "\(huge.lines)")
    }
}

/// Attack 9, finding 8: an anonymous multipart cap at or above the total let anonymous callers
/// take every slot. Set explicitly, it is an error naming both keys; left out, it follows the
/// total (a fifth of the uploads, a quarter of the bytes, at most 20 and 1 GiB).
@Suite(.ownThreads) struct AnonymousMultipartCapTests {
    @Test func anExplicitAnonymousCapAtOrAboveTheTotalIsAnError() throws {
        let uploads = try Workspace().load(yaml: "version: 1\nserve:\n  multipart_max_uploads: 8\n  multipart_max_anonymous_uploads: 8\n")
        #expect(uploads.has(4, 36, "serve.multipart_max_anonymous_uploads (8) must be smaller than serve.multipart_max_uploads (8)"), "\(uploads.lines)")
        let bytes = try Workspace().load(yaml: "version: 1\nserve:\n  multipart_max_anonymous_bytes: 5_000_000_000\n")
        #expect(bytes.has(3, 34, "serve.multipart_max_anonymous_bytes (5000000000) must be smaller than serve.multipart_max_bytes (4294967296)"), "\(bytes.lines)")
        // 0 turns anonymous multipart uploads off, whatever the total.
        let off = try Workspace().load(yaml: "version: 1\nserve:\n  multipart_max_uploads: 0\n  multipart_max_anonymous_uploads: 0\n")
        #expect(off.lines == [], "\(off.lines)")
        let fine = try Workspace().load(yaml: "version: 1\nserve:\n  multipart_max_uploads: 8\n  multipart_max_anonymous_uploads: 7\n")
        #expect(fine.lines == [] && fine.manifest?.serve.multipartMaxAnonymousUploads == 7, "\(fine.lines)")
    }

    @Test func aDefaultAnonymousCapFollowsASmallerTotal() throws {
        let manifest = try #require(try Workspace().load(yaml: "version: 1\nserve:\n  multipart_max_uploads: 8\n  multipart_max_bytes: 1_000_000\n").manifest)
        #expect(manifest.serve.multipartMaxAnonymousUploads == 1)
        #expect(manifest.serve.multipartMaxAnonymousBytes == 250_000)
        let defaults = try #require(try Workspace().load(yaml: "version: 1\n").manifest)
        #expect(defaults.serve.multipartMaxAnonymousUploads == 20 && defaults.serve.multipartMaxAnonymousBytes == 1 << 30)
    }
}
