import Foundation
@testable import Manifest
import Testing
import TestSupport

/// Round 45: validate and a running serve look for the projects below a manifest's folder
/// (`ForeignProjectFiles.manifestsBelow`), serve at most every second; the folder listings are
/// kept while each folder's identity and times stay. The kept walk must find what a walk listing
/// every folder finds, after each kind of change below.
@Suite(.ownThreads) struct ManifestsBelowKeptListingsTests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: src}\nderivatives: []\n"

    @Test func theKeptListingsFindWhatAFullWalkFinds() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("derive-below-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func write(_ path: String, _ text: String = Self.manifest) throws {
            let url = URL(literalFilePath: root + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        /// Sets the folders' modification times 10 s back, so their listings are kept (a folder
        /// modified under two seconds ago is listed again each time).
        func age(_ folders: [String]) {
            let past = Date().addingTimeInterval(-10)
            for folder in folders { try? FileManager.default.setAttributes([.modificationDate: past], ofItemAtPath: root + "/" + folder) }
        }
        func same(_ step: String) {
            let kept = ForeignProjectFiles.manifestsBelow(root), full = ForeignProjectFiles.manifestsBelowListingEveryFolder(root)
            #expect(kept == full, "\(step): kept \(kept), full \(full)")
        }
        try write("derive.yaml")
        try write("gallery/derive.yaml")
        try write("a/b/c/derive.yaml")
        try write("a/b/c/d/e/derive.yaml") // five levels down: beyond the bound
        try write("x/.hidden/derive.yaml")
        age(["", "gallery", "a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e", "x", "x/.hidden"])
        let before = ForeignProjectFiles.listings.keptCount
        same("first walk")
        #expect(ForeignProjectFiles.listings.keptCount > before, "no listing was kept: the fast path is not tested")
        #expect(ForeignProjectFiles.manifestsBelow(root) == [root + "/gallery/derive.yaml", root + "/a/b/c/derive.yaml"])
        same("unchanged")
        try write("a/b/site.yml")
        age(["a/b"])
        same("a manifest added")
        try FileManager.default.removeItem(atPath: root + "/gallery/derive.yaml")
        age(["gallery"])
        same("a manifest removed")
        try write("a/b/site.yml", "")
        same("a manifest emptied (its folder's times unchanged)")
        #expect(!ForeignProjectFiles.manifestsBelow(root).contains(root + "/a/b/site.yml"))
        try write("a/b/site.yml", "version: 1\nbuckets: [\n")
        same("a manifest mid-edit")
        #expect(ForeignProjectFiles.manifestsBelow(root).contains(root + "/a/b/site.yml"))
        try FileManager.default.moveItem(atPath: root + "/a/b/c", toPath: root + "/a/c2")
        age(["a", "a/b"])
        same("a folder moved up")
        try FileManager.default.createDirectory(atPath: root + "/n/m", withIntermediateDirectories: true)
        age(["", "n", "n/m"])
        same("folders added")
        try write("n/m/derive.json", "{\"version\": 1, \"buckets\": {\"s\": {\"path\": \"s\"}}}")
        age(["n/m"])
        same("a JSON manifest added")
        #expect(ForeignProjectFiles.manifestsBelow(root).contains(root + "/n/m/derive.json"))
    }
}
