import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Includes are read only below the root manifest's folder, by `openat`/`O_NOFOLLOW`, and a file
/// that is not a manifest gives one error that never repeats its contents (issue #9.9).
@Suite(.ownThreads) struct IncludeConfinementTests {
    /// A stand-in for /etc/shadow: lines that YAML reads as a mapping of unknown keys.
    static let secretLines = "root: $6$saltsalt$SECRETHASH\ndaemon: '*'\nalice: $6$other$ALSOSECRET\n"

    @Test func absoluteIncludeIsAnErrorAtItsLine() throws {
        let workspace = try Workspace()
        try workspace.write("outside/shadow", Self.secretLines)
        let result = try workspace.load(yaml: "version: 1\ninclude:\n  - \(workspace.path("outside/shadow"))\n")
        #expect(result.has(3, 5, "is an absolute path"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
        #expect(!result.lines.joined().contains("SECRET"))
        #expect(!result.files.contains { $0.hasSuffix("shadow") })
    }

    @Test func etcShadowIsNeverRead() throws {
        let result = try Workspace().load(yaml: "version: 1\ninclude: [/etc/shadow, /etc/passwd]\n")
        #expect(result.has(2, 11, "is an absolute path"), "\(result.lines)")
        #expect(result.has(2, 24, "is an absolute path"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 2, "\(result.lines)")
        #expect(!result.lines.joined().contains("root"))
    }

    @Test func dotDotEscapesAreErrorsAtTheirLine() throws {
        let workspace = try Workspace()
        try workspace.write("shadow", Self.secretLines)
        try workspace.write("project/sub/styles.yaml", "version: 1\ninclude: [../../../shadow]\nstyles:\n  a: image/resize,w_1\n")
        try workspace.write("project/derive.yaml", "version: 1\ninclude:\n  - ../shadow\n  - sub/styles.yaml\n  - ../../../../../../etc/passwd\n")
        let result = workspace.load("project/derive.yaml")
        #expect(result.has(3, 5, "leaves the manifest's folder"), "\(result.lines)")
        #expect(result.has(5, 5, "leaves the manifest's folder"), "\(result.lines)")
        #expect(result.diagnostics.errors.contains { $0.file.hasSuffix("sub/styles.yaml") && $0.line == 2 && $0.message.contains("leaves the manifest's folder") },
                "\(result.lines)")
        #expect(result.diagnostics.errors.count == 3, "\(result.lines)")
        #expect(!result.lines.joined().contains("SECRET"))
        #expect(result.manifest?.styles.map(\.name) == ["a"])   // the good include still counts
    }

    @Test func dotDotThatStaysInsideIsFine() throws {
        let workspace = try Workspace()
        try workspace.write("styles.yaml", "version: 1\nstyles:\n  a: image/resize,w_1\n")
        try workspace.write("sub/more.yaml", "version: 1\ninclude: [../styles.yaml]\n")
        try workspace.write("derive.yaml", "version: 1\ninclude: [sub/more.yaml, ./sub/../styles.yaml]\n")
        let result = workspace.load()
        #expect(result.lines == [])
        #expect(result.manifest?.styles.map(\.name) == ["a"])
        #expect(result.manifest?.files.count == 3)
    }

    @Test func symlinkedIncludeIsRefusedWherever_itPoints() throws {
        let workspace = try Workspace()
        try workspace.write("outside/shadow", Self.secretLines)
        try workspace.write("project/styles.yaml", "version: 1\nstyles:\n  a: image/resize,w_1\n")
        try FileManager.default.createSymbolicLink(atPath: workspace.path("project/link.yaml"), withDestinationPath: workspace.path("outside/shadow"))
        try FileManager.default.createSymbolicLink(atPath: workspace.path("project/inside.yaml"), withDestinationPath: "styles.yaml")
        try FileManager.default.createSymbolicLink(atPath: workspace.path("project/dir"), withDestinationPath: workspace.path("outside"))
        try workspace.write("project/derive.yaml", "version: 1\ninclude: [link.yaml, dir/shadow, inside.yaml]\n")
        let result = workspace.load("project/derive.yaml")
        #expect(result.has(2, 11, "symbolic link"), "\(result.lines)")
        #expect(result.has(2, 22, "symbolic link"), "\(result.lines)")
        #expect(result.has(2, 34, "symbolic link"), "\(result.lines)")
        #expect(!result.lines.joined().contains("SECRET"))
    }

    @Test func nonManifestIncludeGivesOneErrorWithoutItsContents() throws {
        let workspace = try Workspace()
        try workspace.write("shadow.txt", Self.secretLines)
        try workspace.write("list.yaml", "- one\n- two\n")
        try workspace.write("scalar.txt", "root:x:0:0:root:/root:/bin/bash\nSECRETLINE:x:1:1::/:/bin/sh\n")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01]).write(to: workspace.folder.appendingPathComponent("photo.jpg"))
        try workspace.write("derive.yaml", "version: 1\ninclude:\n  - shadow.txt\n  - list.yaml\n  - scalar.txt\n  - photo.jpg\n")
        let result = workspace.load()
        #expect(result.has(3, 5, "shadow.txt is not a Derive manifest"), "\(result.lines)")
        #expect(result.has(4, 5, "list.yaml is not a Derive manifest"), "\(result.lines)")
        #expect(result.has(5, 5, "scalar.txt is not a Derive manifest"), "\(result.lines)")
        #expect(result.diagnostics.errors.filter { $0.file.hasSuffix("photo.jpg") }.count == 1, "\(result.lines)")
        #expect(result.diagnostics.errors.count == 4, "\(result.lines)")
        let text = result.lines.joined(separator: "\n")
        #expect(!text.contains("SECRET") && !text.contains("root") && !text.contains("alice") && !text.contains("daemon"))
    }

    @Test func rootThatIsNotAManifestGivesOneError() throws {
        let workspace = try Workspace()
        try workspace.write("derive.yaml", Self.secretLines)
        let result = workspace.load()
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
        #expect(result.has(1, 1, "is not a Derive manifest"), "\(result.lines)")
        #expect(!result.lines.joined().contains("SECRET"))
    }

    @Test func folderAndFifoIncludesAreRefusedWithoutBlocking() throws {
        let workspace = try Workspace()
        try FileManager.default.createDirectory(atPath: workspace.path("folder.yaml"), withIntermediateDirectories: true)
        #expect(mkfifo(workspace.path("pipe.yaml"), 0o600) == 0)
        try workspace.write("derive.yaml", "version: 1\ninclude: [folder.yaml, pipe.yaml]\n")
        let result = workspace.load()
        #expect(result.has(2, 11, "not a manifest file"), "\(result.lines)")
        #expect(result.has(2, 24, "not a manifest file"), "\(result.lines)")
    }

    @Test func unknownKeysStillGetSuggestionsInRealManifests() throws {
        let workspace = try Workspace()
        try workspace.write("styles.yaml", "version: 1\nstlyes:\n  a: image/resize,w_1\n")
        try workspace.write("derive.yaml", "version: 1\ninclude: [styles.yaml]\n")
        let result = workspace.load()
        #expect(result.diagnostics.errors.contains { $0.file.hasSuffix("styles.yaml") && $0.message.contains("unknown key 'stlyes'") }, "\(result.lines)")
    }
}
