import Confinement
import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Round 19's V1 and V2 at the one definition: a key where a build left a file in place (the
/// lock's `left` line) is never answered more publicly than the ACL it was left under, whatever
/// today's templates and `objects:` rules say, with or without a state; a file left under a
/// public ACL stays public (only files left under a private ACL are made private).
@Suite(.ownThreads) struct LeftInPlaceACLTests {
    struct State: RecordedOutputs {
        var records: [String: RecordedOutput] = [:]
        var lock: Set<String> = []
        var left: [String: BucketACL] = [:]
        func recordedACL(bucket: String, key: String) throws -> BucketACL? { records[key]?.acl }
        func recordedOutput(bucket: String, key: String) throws -> RecordedOutput? { records[key] }
        func lockLists(bucket: String, key: String) -> Bool { lock.contains(key) }
        func leftACL(bucket: String, key: String) -> BucketACL? { left[key] }
    }

    /// mx.sh's manifest after its edit: the private rules now write `-30` and `.tiny` names; the
    /// old `-32` and `.small` outputs match no template. `index:` moved to `data/index.json`,
    /// with its `objects:` rule.
    static func manifest() throws -> Manifest {
        let folder = (try ScratchFolder.make("derive-left19"))
        for bucket in ["pub", "priv", "site"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(bucket), withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = """
            version: 1
            buckets:
              pub: {path: pub, acl: public-read}
              priv: {path: priv, acl: private}
              site:
                path: site
                acl: public-read
                objects: [{match: "data/index.json", acl: private}]
            styles:
              tiny: image/resize,w_40/format,webp
            derivatives:
              - name: gallery
                from: pub/*.jpg
                process: image/resize,w_48/format,webp
                to: site/g/{name}.webp
              - name: internal
                from: priv/*.jpg
                matrix: {w: [30, 36]}
                process: image/resize,w_{w}/format,webp
                to: site/internal/{name}-{w}.webp
                acl: private
              - name: internal2
                from: priv/*.jpg
                styles: [tiny]
                to: site/st/{name}.{style}.{ext}
                acl: private
            index: site/data/index.json

            """
        try Data(text.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
        return try #require(result.manifest, "\(result.diagnostics.sorted)")
    }

    static let oldKeys = ["internal/ceo-passport-scan-32.webp", "st/ceo-passport-scan.small.webp", "index.json", "staff/ceo.webp"]

    /// Without the `left` line these keys fall to the bucket's public-read (V1, V2); with it they
    /// are private, anonymous readers are refused (GET and listing use `mayRead`), signed ones are not.
    @Test func aKeyLeftPrivateStaysPrivateWhateverTheTemplatesSay() throws {
        let manifest = try Self.manifest()
        let site = try #require(manifest.bucket(named: "site"))
        let before = Authorizer(recorded: State(), manifest: manifest)
        for key in Self.oldKeys {
            #expect(before.effectiveACL(site, try ObjectKey(key)) == .publicRead, "\(key): the bucket's ACL without the line")
        }
        let left = Dictionary(uniqueKeysWithValues: Self.oldKeys.map { ($0, BucketACL.private) })
        for state in [State(left: left), State(lock: Set(Self.oldKeys), left: left)] {
            let authorizer = Authorizer(recorded: state, manifest: manifest)
            for key in Self.oldKeys {
                let object = try ObjectKey(key)
                #expect(authorizer.effectiveACL(site, object) == .private, "\(key)")
                #expect(!authorizer.mayRead(site, object, caller: nil), "\(key): anonymous")
                #expect(authorizer.mayRead(site, object, caller: "AKIDR19"), "\(key): signed")
                #expect(authorizer.objectACLHeader(site, object) == "private", "\(key)")
                #expect(!authorizer.mayWrite(site, object, caller: nil), "\(key): anonymous write")
            }
        }
    }

    /// Never a user's public file made private by accident: a line left public-read keeps the
    /// key public, and a line never makes a key more public than its bucket or rule gives.
    @Test func aKeyLeftPublicStaysPublicAndALineNeverWidens() throws {
        let manifest = try Self.manifest()
        let site = try #require(manifest.bucket(named: "site"))
        let authorizer = Authorizer(recorded: State(left: ["g/old-lake.webp": .publicRead, "internal/ceo-passport-scan-30.webp": .publicReadWrite,
                                                           "data/index.json": .publicRead]), manifest: manifest)
        #expect(authorizer.effectiveACL(site, try ObjectKey("g/old-lake.webp")) == .publicRead)
        #expect(authorizer.mayRead(site, try ObjectKey("g/old-lake.webp"), caller: nil))
        #expect(authorizer.effectiveACL(site, try ObjectKey("internal/ceo-passport-scan-30.webp")) == .private, "the private rule's key")
        #expect(authorizer.effectiveACL(site, try ObjectKey("data/index.json")) == .private, "the index's objects: rule")
        #expect(authorizer.effectiveACL(site, try ObjectKey("other.html")) == .publicRead, "no line: the bucket's ACL")
    }

    /// The same definition for the build's index guard: the index's ACL at a key left private.
    @Test func theIndexACLHonoursALeftLine() throws {
        let manifest = try Self.manifest()
        let acls = EffectiveACL(manifest)
        let site = try #require(manifest.bucket(named: "site"))
        #expect(acls.of(site, key: "index.json") == .publicRead)
        #expect(acls.of(site, key: "index.json", left: .private) == .private)
        #expect(acls.of(site, key: "g/a.webp", left: .publicRead) == .publicRead)
        #expect(acls.indexACL(left: .private) == .private)
    }
}
