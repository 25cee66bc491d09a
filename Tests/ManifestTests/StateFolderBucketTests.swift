import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack round 23's H3: a bucket inside the state folder, at the names Derive keeps its caches
/// under (`build-renders/`, `serve-cache/`), had its SHA-256-named photos swept by a build and by
/// `clean` as Derive's own files. A bucket never lies in a folder Derive owns: inside a state
/// folder of Derive's own, or (with `state: .`, the user's folder) at or inside a name Derive keeps.
@Suite(.ownThreads) struct StateFolderBucketTests {
    func workspace(folders: [String]) throws -> Workspace {
        let workspace = try Workspace()
        for folder in folders {
            try FileManager.default.createDirectory(atPath: workspace.path(folder), withIntermediateDirectories: true)
        }
        return workspace
    }

    func manifest(state: String, sitePath: String) -> String {
        """
        version: 1
        buckets:
          photos:
            path: photos
            acl: private
          site:
            path: \(sitePath)
            acl: public-read
        state: \(state)
        """
    }

    @Test func aBucketInsideADerivesOwnStateFolderIsRefusedAtItsPath() throws {
        for (state, path) in [("work", "work/site"), ("work", "work/build-renders"), ("work", "work/serve-cache/ab"),
                              (".derive/derive", ".derive/derive/build-renders"), ("work", "work")] {
            let workspace = try workspace(folders: ["photos", path])
            let result = try workspace.load(yaml: manifest(state: state, sitePath: path))
            #expect(result.has(7, 11, "bucket 'site' (\(path)) is inside the state folder \(state)"), "\(state) \(path): \(result.lines)")
        }
    }

    /// Not created yet: the state folder and the bucket are both named, neither exists.
    @Test func aBucketInsideAStateFolderThatDoesNotExistYetIsRefused() throws {
        let workspace = try workspace(folders: ["photos"])
        let result = try workspace.load(yaml: manifest(state: "work", sitePath: "work/serve-cache"))
        #expect(result.has(7, 11, "is inside the state folder work"), "\(result.lines)")
        // What is at risk, said as it is (attack 42a's L3: "would take the bucket's files for its
        // own" overstated it, while `state: .` holding buckets validates): files at Derive's names.
        #expect(result.has(7, 11, "sweep their caches there by name (build-renders, serve-cache, serve-uploads)"), "\(result.lines)")
        #expect(result.has(7, 11, "'state: .', is the user's"), "\(result.lines)")
    }

    /// Through a link: the bucket's path spells another folder, the file system says it is inside.
    @Test func aBucketLinkedIntoTheStateFolderIsRefused() throws {
        let workspace = try workspace(folders: ["photos", "work/build-renders"])
        try FileManager.default.createSymbolicLink(atPath: workspace.path("site"), withDestinationPath: "work/build-renders")
        let result = try workspace.load(yaml: manifest(state: "work", sitePath: "site"))
        #expect(result.has(7, 11, "is inside the state folder work"), "\(result.lines)")
    }

    @Test func withTheStateFolderBesideTheManifestOnlyDerivesNamesAreTaken() throws {
        for taken in ["build-renders", "serve-cache", "serve-uploads", "serve-cache/00", "build-renders/x/y"] {
            let workspace = try workspace(folders: ["photos", taken])
            let result = try workspace.load(yaml: manifest(state: ".", sitePath: taken))
            #expect(result.has(7, 11, "bucket 'site' (\(taken)) is at or inside build-renders, serve-cache or serve-uploads"), "\(taken): \(result.lines)")
        }
        for free in ["site", "out/build-renders", "serve-cache2", "public"] {
            let workspace = try workspace(folders: ["photos", free])
            let result = try workspace.load(yaml: manifest(state: ".", sitePath: free))
            #expect(!result.lines.contains { $0.contains("state folder") || $0.contains("build-renders, serve-cache") }, "\(free): \(result.lines)")
        }
    }

    @Test func bucketsBesideTheStateFolderAreFine() throws {
        let workspace = try workspace(folders: ["photos", "site", "work"])
        let result = try workspace.load(yaml: manifest(state: "work", sitePath: "site"))
        #expect(!result.lines.contains { $0.contains("state folder") }, "\(result.lines)")
    }
}
