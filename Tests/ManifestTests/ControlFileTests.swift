import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Derive's own files are never targets or sources, and never inside a bucket (issues #9
/// "What must hold", #11.4). Folders are created on disk: containment is the file system's call.
@Suite(.ownThreads) struct ControlFileTests {
    func workspace(folders: [String] = ["photos", "site"]) throws -> Workspace {
        let workspace = try Workspace()
        for folder in folders {
            try FileManager.default.createDirectory(atPath: workspace.path(folder), withIntermediateDirectories: true)
        }
        return workspace
    }

    @Test func bucketBesideTheManifestIsRefusedWithAHint() throws {
        let result = try workspace().load(yaml: """
        version: 1
        buckets:
          site:
            path: .
            acl: public-read-write
        """)
        #expect(result.has(4, 11, "bucket 'site' (.) holds the manifest derive.yaml"), "\(result.lines)")
        #expect(result.has(4, 11, "give bucket 'site' its own subfolder, e.g. path: site"), "\(result.lines)")
        #expect(result.has(4, 11, "holds the lock file derive.lock"), "\(result.lines)")
        #expect(result.has(4, 11, "holds the state folder .derive/derive"), "\(result.lines)")
    }

    @Test func lockInsideTheStateFolderIsRefusedAtTheLockLine() throws {
        // The build would write the lock over state.sqlite (hostile tester, fix B.1).
        let result = try workspace().load(yaml: baseBuckets + "\nlock: .derive/derive/state.sqlite\n")
        #expect(result.has(12, 7, "the lock file .derive/derive/state.sqlite is inside the state folder .derive/derive"), "\(result.lines)")
        let beside = try workspace().load(yaml: baseBuckets + "\nstate: work\nlock: work/derive.lock\n")
        #expect(beside.has(13, 7, "is inside the state folder work"), "\(beside.lines)")
        // With `state: .` the folder is the user's: only the names of Derive's state files are taken.
        let named = try workspace().load(yaml: baseBuckets + "\nstate: .\nlock: state.sqlite\n")
        #expect(named.has(13, 7, "is inside the state folder"), "\(named.lines)")
        let ordinary = try workspace().load(yaml: baseBuckets + "\nstate: .\nlock: site.lock\n")
        #expect(!ordinary.lines.contains { $0.contains("inside the state folder") }, "\(ordinary.lines)")
    }

    /// With `state: .` every name Derive gives a file in the state folder is taken, not only
    /// the database's: the serve cache and a database moved aside too (attack finding).
    @Test func lockRuleForAStateFolderHoldingTheManifestIsExact() throws {
        for taken in ["serve-cache/derive.lock", "state.sqlite.corrupt-1700000000", "state.sqlite.foreign-1", "noop-witness", "build.lock", "state.sqlite-wal"] {
            let result = try workspace().load(yaml: baseBuckets + "\nstate: .\nlock: \(taken)\n")
            #expect(result.has(13, 7, "is inside the state folder"), "\(taken): \(result.lines)")
        }
        for free in ["notes/derive.lock", "state.lock", "serve-cache.lock"] {
            let result = try workspace().load(yaml: baseBuckets + "\nstate: .\nlock: \(free)\n")
            #expect(!result.lines.contains { $0.contains("inside the state folder") }, "\(free): \(result.lines)")
        }
    }

    @Test func bucketHoldingTheManifestsFolderFromAboveIsRefused() throws {
        let workspace = try workspace(folders: ["project/photos"])
        try workspace.write("project/derive.yaml", """
        version: 1
        buckets:
          all:
            path: ..
        """)
        let result = workspace.load("project/derive.yaml")
        #expect(result.has(4, 11, "bucket 'all' (..) holds the manifest"), "\(result.lines)")
    }

    @Test func includeInsideABucketIsRefused() throws {
        let workspace = try workspace()
        try workspace.write("site/styles.yaml", "version: 1\nstyles:\n  a: image/resize,w_1\n")
        let result = try workspace.load(yaml: baseBuckets + "\ninclude: [site/styles.yaml]\n")
        #expect(result.has(10, 11, "bucket 'site' (site) holds the included manifest site/styles.yaml"), "\(result.lines)")
    }

    @Test func bucketReachedThroughASymlinkIsStillSeen() throws {
        // The bucket is named by a link to the manifest's folder: a string check would miss it.
        let workspace = try workspace()
        try FileManager.default.createSymbolicLink(atPath: workspace.path("photos/up"), withDestinationPath: workspace.folder.path)
        let result = try workspace.load(yaml: """
        version: 1
        buckets:
          loop:
            path: photos/up
        """)
        #expect(result.has(4, 11, "bucket 'loop' (photos/up) holds the manifest"), "\(result.lines)")
    }

    @Test func stateAndLockInsideABucketAreErrorsAtTheirLines() throws {
        let result = try workspace().load(yaml: baseBuckets + """

        state: site/.state
        lock: photos/derive.lock
        """)
        #expect(result.has(12, 8, "bucket 'site' (site) holds the state folder site/.state"), "\(result.lines)")
        #expect(result.has(13, 7, "bucket 'photos' (photos) holds the lock file photos/derive.lock"), "\(result.lines)")
    }

    @Test func stateFolderThatDoesNotExistYetIsStillChecked() throws {
        let result = try workspace().load(yaml: baseBuckets + "\nstate: site/not/yet/made\n")
        #expect(result.has(12, 8, "holds the state folder site/not/yet/made"), "\(result.lines)")
    }

    @Test func indexInAPublicReadWriteBucketIsRefused() throws {
        let result = try workspace(folders: ["photos", "site", "drop"]).load(yaml: baseBuckets + """

          drop:
            path: drop
            acl: public-read-write
        index: drop/index.json
        """)
        #expect(result.has(15, 8, "the index drop/index.json is in public-read-write bucket 'drop': anyone could overwrite it"), "\(result.lines)")
    }

    @Test func indexMadeWritableByAnObjectRuleOrAnOuterBucketIsRefused() throws {
        let result = try workspace(folders: ["photos", "site/pub"]).load(yaml: """
        version: 1
        buckets:
          site:
            path: site
            acl: public-read
            objects:
              - match: "open/**"
                acl: public-read-write
          inner:
            path: site/pub
            acl: private
          outer:
            path: .
            acl: private
        index: site/open/index.json
        """)
        #expect(result.has(15, 8, "public-read-write bucket 'site'"), "\(result.lines)")
        let nested = try workspace(folders: ["out/site"]).load(yaml: """
        version: 1
        buckets:
          all:
            path: out
            acl: public-read-write
          site:
            path: out/site
            acl: public-read
        index: site/index.json
        """)
        #expect(nested.has(9, 8, "public-read-write bucket 'all' (as site/index.json)"), "\(nested.lines)")
    }

    @Test func indexInAPublicReadBucketIsFine() throws {
        let result = try workspace().load(yaml: baseBuckets + "\nindex: site/derive-index.json\n")
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
    }

    @Test func outputsOverTheIndexAreErrorsAtTheTemplate() throws {
        let result = try workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: json
            from: photos/press/*.jpg
            process: image/resize,w_10
            to: site/{name}.json
          - name: keyed
            from: photos/press/*.jpg
            process: image/resize,w_10
            to: site/{key}
          - name: fine
            from: photos/press/*.jpg
            process: image/resize,w_10/format,webp
            to: site/{dir}/{name}.{ext}
        index: site/derive-index.json
        """)
        #expect(result.has(16, 14, "outputs of rule 'json' may overwrite the index site/derive-index.json"), "\(result.lines)")
        // {key} keeps the source's name (press/*.jpg), {ext} the format: neither can be the index.
        #expect(!result.lines.joined().contains("'keyed' may"), "\(result.lines)")
        #expect(!result.lines.joined().contains("'fine' may"), "\(result.lines)")
    }

    @Test func outputsIntoTheStateFolderOrOverTheLockAreErrors() throws {
        // A state folder and a lock inside the bucket: each is an error at its own line, and the
        // outputs that could land there are errors at the template.
        let result = try workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: state
            from: photos/**/*.jpg
            process: image/resize,w_10
            to: site/{dir}/{name}.{ext}
          - name: lock
            from: photos/press/*.lock
            process: image/resize,w_10
            to: site/{name}.lock
        state: site/state
        lock: site/derive.lock
        """)
        #expect(result.has(16, 14, "outputs of rule 'state' may land inside the state folder site/state"), "\(result.lines)")
        #expect(result.has(20, 14, "outputs of rule 'lock' may overwrite the lock file site/derive.lock"), "\(result.lines)")
    }

    /// `{dir}` is the folder of a key the rule's `from:` matches: `press/*.jpg` gives only `press`,
    /// so `site/{dir}/…` never lands in `site/state`.
    @Test func aDirFromAFixedFolderCannotLandInTheStateFolder() throws {
        let result = try workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: state
            from: photos/press/*.jpg
            process: image/resize,w_10
            to: site/{dir}/{name}.{ext}
        state: site/state
        """)
        #expect(!result.lines.joined().contains("may land inside the state folder"), "\(result.lines)")
    }

    @Test func outputsOverTheManifestAreErrors() throws {
        let result = try workspace().load(yaml: """
        version: 1
        buckets:
          photos:
            path: photos
          here:
            path: .
        derivatives:
          - name: clobber
            from: photos/*.jpg
            process: image/resize,w_10
            to: here/{name}.yaml
            acl: private
        """, objects: ["photos": ["derive.jpg"]])
        #expect(result.has(11, 14, "outputs of rule 'clobber' may overwrite the manifest derive.yaml (here/derive.yaml)"), "\(result.lines)")
        #expect(result.has(6, 11, "bucket 'here' (.) holds the manifest derive.yaml"), "\(result.lines)")
    }

    @Test func outputsOverAnyRulesSourcesAreErrors() throws {
        let result = try workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: own
            from: photos/*.png
            process: image/resize,w_10
            to: photos/{name}.png
            acl: private
          - name: other
            from: photos/a.jpg
            process: image/resize,w_10
            to: photos/press/{name}.jpg
            acl: private
          - name: beside
            from: photos/*.png
            process: image/resize,w_10
            to: photos/small/{name}.png
            acl: private
          - name: excluded
            from: photos/**
            exclude: ["small2/**", "**/*.webp"]
            process: image/resize,w_10/format,webp
            to: photos/small2/{name}.{ext}
            acl: private
        """)
        #expect(result.has(16, 16, "outputs of rule 'own' may land on its own sources"), "\(result.lines)")
        // 'other' writes photos/press/*.jpg, which the 'excluded' rule reads: an error.
        #expect(result.has(21, 16, "outputs of rule 'other' may land on sources of rule 'excluded' ('photos/**')"), "\(result.lines)")
        // photos/*.png does not reach into photos/small/: '*' stays within a folder.
        #expect(!result.lines.joined().contains("rule 'beside' may land on its own"), "\(result.lines)")
        // 'beside' writes photos/small/*.png, which 'excluded' reads (photos/**): an error.
        #expect(result.has(26, 16, "outputs of rule 'beside' may land on sources of rule 'excluded'"), "\(result.lines)")
        // Excluding the output folder (or the output format) keeps a rule's outputs out of its sources.
        #expect(!result.lines.joined().contains("rule 'excluded' may land"), "\(result.lines)")
    }

    @Test func outputsOverSourcesOfANestedBucketAreErrors() throws {
        let result = try workspace(folders: ["site/raw"]).load(yaml: """
        version: 1
        buckets:
          site:
            path: site
            acl: private
          raw:
            path: site/raw
            acl: private
        derivatives:
          - name: inner
            from: raw/*.jpg
            process: image/resize,w_10
            to: site/{name}.jpg
          - name: outer
            from: raw/*.jpg
            process: image/resize,w_10
            to: site/raw/{name}.jpg
        """, objects: ["site/raw": ["a.jpg"]])
        #expect(result.has(17, 14, "outputs of rule 'outer' may land on sources of rule 'inner' ('raw/*.jpg')"), "\(result.lines)")
        #expect(result.has(17, 14, "outputs of rule 'outer' may land on its own sources"), "\(result.lines)")
        #expect(!result.lines.joined().contains("rule 'inner' may land"), "\(result.lines)")
    }

    @Test func indexIsNeverASource() throws {
        let result = try workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: republish
            from: site/**
            process: image/resize,w_10
            to: photos/copy/{key}
            acl: private
          - name: careful
            from: site/**
            exclude: [derive-index.json]
            process: image/resize,w_10
            to: photos/copy2/{key}
            acl: private
        index: site/derive-index.json
        """)
        #expect(result.has(13, 5, "rule 'republish' reads the index site/derive-index.json as a source"), "\(result.lines)")
        #expect(!result.lines.joined().contains("'careful' reads the index"), "\(result.lines)")
    }

    @Test func controlChecksRunWithoutCrossChecks() throws {
        let workspace = try workspace()
        try workspace.write("derive.yaml", "version: 1\nbuckets:\n  site:\n    path: .\n")
        var loader = ManifestLoader(lister: StubLister(folders: [:]))
        loader.crossChecks = false
        #expect(loader.load(workspace.path("derive.yaml")).diagnostics.errors.contains { $0.message.contains("holds the manifest") })
    }

    @Test func theDemoKeepsItsControlFilesOutOfItsBuckets() throws {
        let result = ManifestLoader().load(DemoManifestTests.root.appendingPathComponent("Manifests/site.yaml").path)
        #expect(!result.diagnostics.hasErrors, "\(result.diagnostics.sorted)")
    }
}

/// A private bucket inside a public-read-write one was readable and writable through the outer one.
@Suite(.ownThreads) struct OverlappingBucketTests {
    @Test func nestedAndIdenticalBucketFoldersAreRefused() throws {
        let workspace = try Workspace()
        try FileManager.default.createDirectory(at: workspace.folder.appendingPathComponent("data/private"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: workspace.folder.appendingPathComponent("alias"),
                                                   withDestinationURL: workspace.folder.appendingPathComponent("data/private"))
        try workspace.write("derive.yaml", """
        version: 1
        buckets:
          outer: {path: data, acl: public-read-write}
          inner: {path: data/private, acl: private}
          twin: {path: alias, acl: public-read}
          apart: {path: elsewhere}
        """)
        let messages = workspace.load("derive.yaml").diagnostics.errors.map(\.message)
        #expect(messages.filter { $0.contains("share files") }.count == 3, "\(messages)")
        #expect(messages.contains { $0.contains("'outer'") && $0.contains("'inner'") })
        #expect(messages.contains { $0.contains("'inner'") && $0.contains("'twin'") })
        #expect(!messages.contains { $0.contains("'apart'") })
    }
}
