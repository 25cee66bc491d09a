import Foundation
import TestSupport
import Testing
@testable import Manifest

/// Objects by folder, instead of the disk.
struct StubLister: ObjectLister {
    var folders: [String: [String]]
    func keys(inFolder folder: String, skipping: [String]) -> [String]? { folders[folder]?.sorted() }
}

/// Writes manifests into a fresh temporary folder and loads them.
struct Workspace {
    let folder: URL

    init() throws {
        folder = (try ScratchFolder.make("derive-manifest"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws {
        let url = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// Loads `name` with sources listed by `objects` (bucket folder name → keys).
    func load(_ name: String = "derive.yaml", objects: [String: [String]] = [:]) -> ManifestLoader.Result {
        var folders: [String: [String]] = [:]
        for (relative, keys) in objects { folders[folder.appendingPathComponent(relative).standardizedFileURL.path] = keys }
        return ManifestLoader(lister: StubLister(folders: folders)).load(path(name))
    }

    func load(yaml: String, objects: [String: [String]] = ["photos": ["a.jpg", "press/b.jpg", "press/c.png"]]) throws -> ManifestLoader.Result {
        try write("derive.yaml", yaml)
        return load("derive.yaml", objects: objects)
    }
}

extension ManifestLoader.Result {
    /// The diagnostics as `line:column: severity: message`, for compact assertions.
    var lines: [String] {
        diagnostics.sorted.map { "\($0.line):\($0.column): \($0.severity.rawValue): \($0.message)" + ($0.hint.map { " (\($0))" } ?? "") }
    }

    func has(_ line: Int, _ column: Int, _ fragment: String, severity: Diagnostic.Severity = .error) -> Bool {
        diagnostics.all.contains { $0.line == line && $0.column == column && $0.severity == severity
            && ($0.message.contains(fragment) || ($0.hint ?? "").contains(fragment)) }
    }
}

/// A valid manifest to mutate in tests: photos (private, press/** public) → site (public).
let baseBuckets = """
version: 1
buckets:
  photos:
    path: photos
    acl: private
    objects:
      - match: "press/**"
        acl: public-read
  site:
    path: site
    acl: public-read
"""
