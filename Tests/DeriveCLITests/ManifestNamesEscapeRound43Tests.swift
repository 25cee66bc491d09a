import Foundation
import Testing
import TestSupport

/// Attack 42c's L5: a manifest's own names were echoed raw in its diagnostics (an include's name,
/// a bucket's `path:`, a `from:` pattern), so ESC reached the terminal and a line feed split the
/// line, while style names and `website.index` were escaped. Every diagnostic line is escaped now.
/// And a `to:` whose literal part holds a control character passed `validate`, then every output
/// failed at build: it is refused at validate, at its file:line:column, as a matrix value is.
@Suite(.ownThreads, .serialized) struct ManifestNamesEscapeRound43Tests {
    static func manifest(include: String = "", path: String = "out", from: String = "src/*.jpg", to: String = "out/{name}.webp") -> String {
        "version: 1\n" + (include.isEmpty ? "" : "include: [\"\(include)\"]\n")
            + "buckets:\n  src: {path: src}\n  out: {path: \"\(path)\"}\nderivatives:\n  - name: r\n    from: \"\(from)\"\n"
            + "    process: image/resize,w_50/format,webp\n    to: \"\(to)\"\n"
    }

    static func run(_ arguments: [String], manifest: String, prepare: (URL) throws -> Void = { _ in }) throws -> CLI.Result {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try prepare(folder)
        return try CLI.run(arguments + ["derive.yaml"], in: folder)
    }

    static func expectEscaped(_ result: CLI.Result, _ shown: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let all = said(result)
        #expect(result.status != 0, "\(all.debugDescription)", sourceLocation: sourceLocation)
        #expect(!all.contains("\u{1B}"), "\(all.debugDescription)", sourceLocation: sourceLocation)
        // Every line is a whole message: none is split by the name's line feed.
        for line in all.split(separator: "\n") {
            #expect(line.hasPrefix("derive.yaml") || line.hasPrefix("derive: ") || line.hasPrefix("["), "\(all.debugDescription)", sourceLocation: sourceLocation)
        }
        #expect(all.contains(shown), "\(all.debugDescription)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [["validate"], ["build"], ["plan"]])
    func anIncludeNameIsEscaped(_ command: [String]) throws {
        let result = try Self.run(command, manifest: Self.manifest(include: "inc/a\\e[31mRED\\nb.yaml"))
        Self.expectEscaped(result, "inc/a\\u{1B}[31mRED\\u{A}b.yaml")
    }

    @Test func aBucketPathIsEscaped() throws {
        let result = try Self.run(["validate"], manifest: Self.manifest(path: "f\\e[31mX\\nile")) { folder in
            try Data().write(to: folder.appendingPathComponent("f\u{1B}[31mX\nile"))
        }
        Self.expectEscaped(result, "f\\u{1B}[31mX\\u{A}ile")
    }

    @Test func aFromPatternIsEscaped() throws {
        let result = try Self.run(["validate"], manifest: Self.manifest(from: "src/{*\\e[31m\\n.jpg"))
        Self.expectEscaped(result, "{*\\u{1B}[31m\\u{A}.jpg")
    }

    /// The build's own failure named the problem for each output; validate names the place.
    @Test(arguments: ["out/\\e[31m{name}.webp", "out/{name}\\n.webp"])
    func aControlCharacterInToIsRefusedAtValidate(_ to: String) throws {
        let result = try Self.run(["validate"], manifest: Self.manifest(to: to))
        let all = said(result)
        #expect(result.status == 1, "\(all)")
        #expect(!all.contains("\u{1B}"), "\(all.debugDescription)")
        #expect(all.contains("derive.yaml:9:") && all.contains("control character"), "\(all.debugDescription)")
    }

    @Test func aWatchEscapesAnIncludeName() throws {
        let manifest = Self.manifest(include: "inc/a\\e[31mRED\\nb.yaml", path: "out")
        let watch = try WatchSession(manifestText: manifest)
        defer { watch.remove() }
        #expect(watch.wait { watch.lines.contains { $0.contains("not built") } }, "\(watch.lines) \(watch.standardError)")
        let all = watch.standardError
        #expect(!all.contains("\u{1B}"), "\(all.debugDescription)")
        #expect(all.contains("inc/a\\u{1B}[31mRED\\u{A}b.yaml"), "\(all.debugDescription)")
    }
}
