import Foundation
import Manifest
import Planner
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Round 23: serve answered each key from the state with its own SQL transactions (a listing of
/// 50 keys of a 10 000-output state: 3 to 6 reads per key). It now reads the state whole once per
/// `data_version` (`BuiltOutputs.StateView`) and answers every lookup from that. These tests run
/// both ways on the same states (round 19's project: private rules, a public one, left files by
/// path and by place, a bucket renamed, a rule's ACL changed by a build while the same
/// `BuiltOutputs` is in use, the state removed) and require the same answers, errors included.
@Suite(.ownThreads, .serialized) struct ServeStateViewRound23Tests {
    typealias R19 = LeftInPlaceRound19Tests
    typealias Project = LeftInPlaceRound19Tests.Project

    static func loaded(_ project: Project) throws -> Manifest {
        let result = ManifestLoader().load(project.url("derive.yaml").path)
        return try #require(result.manifest, "\(result.diagnostics.sorted)")
    }

    /// Every file under the project's buckets' folders, the lock's paths, and keys nothing has,
    /// as (bucket, key) under every bucket of the manifest.
    static func keys(_ project: Project, _ manifest: Manifest) -> [(String, String)] {
        var keys: Set<String> = ["nothing.webp", "internal/nothing-32.webp", "index.json", "g/lake.webp"]
        for folder in ["site", "pub", "priv"] {
            let base = project.url(folder)
            for case let url as URL in FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) ?? .init() {
                keys.insert(String(url.path.dropFirst(base.path.count + 1)))
            }
        }
        if let lock = try? project.read("derive.lock") {
            for match in lock.matches(of: /"(?:path|left|file)":"[a-z]+\/([^"]+)"/) { keys.insert(String(match.1)) }
        }
        return manifest.buckets.flatMap { bucket in keys.sorted().map { (bucket.name, $0) } }
    }

    /// The answer as text: the record, nil, or the error's description.
    static func text(_ answer: () throws -> EffectiveACL.Built?) -> String {
        do { return try answer().map { "\($0.acl.rawValue) rule=\($0.rule ?? "-") source=\($0.source)" } ?? "none" } catch {
            return "error: \(error)"
        }
    }

    /// Both ways agree on every key; returns how many keys had a record (so a test can tell the
    /// comparison saw records, not only misses).
    @discardableResult
    static func expectSame(_ outputs: BuiltOutputs, _ project: Project, _ manifest: Manifest, _ when: String) -> Int {
        var recorded = 0
        for (bucket, key) in keys(project, manifest) {
            let fast = text { try outputs.recordedOutput(bucket: bucket, key: key) }
            let slow = text { try outputs.recordedOutputBySQL(bucket: bucket, key: key) }
            #expect(fast == slow, "\(when): \(bucket)/\(key): state view \(fast), SQL \(slow)")
            if fast.hasPrefix("public") || fast.hasPrefix("private") { recorded += 1 }
            let path = bucket + "/" + key
            let place = manifest.bucket(named: bucket).map { LockFile.place(bucket: $0, key: key, manifest: manifest) }
            let left = outputs.stateLeftACL(path: path, place: place), leftSQL = outputs.stateLeftACLBySQL(path: path, place: place)
            #expect(left == leftSQL, "\(when): \(path) left: state view \(String(describing: left)), SQL \(String(describing: leftSQL))")
        }
        return recorded
    }

    /// A view read before a build's commits and not read again (`viewInterval` an hour: the
    /// answers while a build commits) answers each key no more publicly than a view read now.
    static func expectNoMorePublic(_ stale: BuiltOutputs, _ project: Project, _ manifest: Manifest, _ when: String) {
        let now = BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest, viewInterval: 0)
        for (bucket, key) in keys(project, manifest) {
            let fast = text { try stale.recordedOutput(bucket: bucket, key: key) }
            let slow = text { try now.recordedOutput(bucket: bucket, key: key) }
            #expect(fast == slow, "\(when): \(bucket)/\(key): stale view \(fast), now \(slow)")
            let old = stale.placedOutputACL(bucket: bucket, key: key), current = now.placedOutputACL(bucket: bucket, key: key)
            if let current {
                #expect(old.map { BucketACL.morePrivate($0, current) == $0 } ?? false,
                        "\(when): \(bucket)/\(key) placed: stale view \(String(describing: old)), now \(current)")
            }
            let path = bucket + "/" + key
            let place = manifest.bucket(named: bucket).map { LockFile.place(bucket: $0, key: key, manifest: manifest) }
            #expect(stale.stateLeftACL(path: path, place: place) == now.stateLeftACL(path: path, place: place), "\(when): \(path) left")
        }
    }

    @Test func theStateViewAnswersAsOneQueryPerKeyDoes() throws {
        setenv(R19.secretVariable, R19.secret, 1)
        let project = try Project()
        defer { project.remove() }
        _ = try project.build(["-q"])
        var manifest = try Self.loaded(project)
        let outputs = BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest, viewInterval: 0)
        #expect(Self.expectSame(outputs, project, manifest, "after the first build") >= 4)
        let stale = BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest, viewInterval: 3600)
        Self.expectNoMorePublic(stale, project, manifest, "after the first build")

        // Re-created private outputs, then renamed values: left files recorded in the state (by path and place).
        for key in ["internal/ceo-passport-scan-32.webp", "st/ceo-passport-scan.small.webp"] { try project.recreate("site/" + key) }
        try project.edit(R19.renamed)
        _ = try project.build(["-q"])
        // The same `BuiltOutputs` (the build's commits moved `data_version`), and one of the new manifest.
        Self.expectSame(outputs, project, manifest, "left files, the old manifest's view")
        manifest = try Self.loaded(project)
        let renamed = BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest)
        Self.expectSame(renamed, project, manifest, "left files")
        Self.expectNoMorePublic(stale, project, try Self.loaded(project), "left files, a view read before")
        #expect(renamed.stateLeftACL(path: "site/internal/ceo-passport-scan-32.webp", place: "site/internal/ceo-passport-scan-32.webp") == .private)

        // A public rule made private and built while `renamed` is in use: the view follows the commit.
        #expect(try renamed.recordedOutput(bucket: "site", key: "g/lake.webp")?.acl == .publicRead)
        try project.edit { $0.replacingOccurrences(of: "    to: site/g/{name}.webp\n", with: "    to: site/g/{name}.webp\n    acl: private\n") }
        _ = try project.build(["-q"])
        #expect(try renamed.recordedOutput(bucket: "site", key: "g/lake.webp")?.acl == .private, "the view was not read again after a build's commit")
        Self.expectSame(renamed, project, manifest, "a rule's ACL changed by a build")

        // The bucket renamed over the same folder (records under the old name, keys under the new one).
        try project.edit(RecordedPlaceRound22Tests.renamedBucket)
        let www = try Self.loaded(project)
        let wwwOutputs = BuiltOutputs(stateFolder: www.stateFolder, manifest: www, viewInterval: 3600)
        Self.expectSame(wwwOutputs, project, www, "bucket renamed, no build")
        // Built under the new name while the view read before the build is kept: the records
        // re-keyed by the build's commits are answered by path, never more publicly.
        _ = try project.build(["-q"])
        Self.expectNoMorePublic(wwwOutputs, project, www, "bucket renamed and built, a view read before")
        for key in RecordedPlaceRound22Tests.privateKeys {
            let acl = try? wwwOutputs.recordedOutput(bucket: "www", key: key)?.acl
            // A current output's own record, or (the renamed values' old outputs) the file left there.
            #expect(wwwOutputs.leftACL(bucket: "www", key: key) == .private || acl == .private, "www/\(key): \(String(describing: acl))")
        }

        // No state: both fail closed alike.
        try FileManager.default.removeItem(at: project.url(".derive"))
        Self.expectSame(renamed, project, manifest, "the state removed")
    }
}
