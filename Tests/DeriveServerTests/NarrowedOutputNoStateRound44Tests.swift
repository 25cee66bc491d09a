import Confinement
import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 42b's L-e: with no build state, an output narrowed to its source's own width
/// (`a-1200.webp` for `w: 9000`, a 1200 px source), which the lock lists but no template gives
/// literally, was refused "because of bucket acl" though its rule and bucket are public-read (a
/// state would make it public); a private rule's such output must not name the state (a build
/// would not make it public). Only the text: both stay private without a state.
@Suite(.ownThreads) struct NarrowedOutputNoStateRound44Tests {
    /// No state to ask; the lock lists the built outputs.
    struct NoState: RecordedOutputs {
        struct Unreadable: Error {}
        let listed: Set<String> = ["a-100.webp", "a-1200.webp", "p/a-120.webp", "p/a-1200.webp", "x/a-1200.webp"]
        func recordedACL(bucket: String, key: String) throws -> BucketACL? { throw Unreadable() }
        func recordedOutput(bucket: String, key: String) throws -> RecordedOutput? { throw Unreadable() }
        func lockLists(bucket: String, key: String) -> Bool { bucket == "site" && listed.contains(key) }
    }

    @Test func theStateIsNamedOnlyWhereItIsWhy() throws {
        let folder = (try ScratchFolder.make("derive-narrowed44"))
        for bucket in ["photos", "site"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(bucket), withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("""
            version: 1
            buckets:
              photos: {path: photos}
              site: {path: site, acl: public-read}
            derivatives:
              - name: pub
                from: "photos/*.jpg"
                acl: public-read
                matrix: {w: [100, 9000]}
                process: image/resize,w_{w}/format,webp
                to: "site/{name}-{w}.webp"
              - name: priv
                from: "photos/*.jpg"
                acl: private
                matrix: {w: [120, 9100]}
                process: image/resize,w_{w}/format,webp
                to: "site/p/{name}-{w}.webp"
            """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
        let manifest = try #require(result.manifest, "\(result.diagnostics)")
        let site = try #require(manifest.bucket(named: "site"))
        let authorizer = Authorizer(recorded: NoState(), manifest: manifest)
        func why(_ key: String) throws -> (acl: BucketACL, state: Bool) {
            let key = try ObjectKey(key)
            return (authorizer.effectiveACL(site, key), authorizer.refusedForWantOfState(site, key))
        }
        // The public rule's outputs, at a matrix width and narrowed: the state is why.
        #expect(try why("a-100.webp") == (.private, true))
        #expect(try why("a-1200.webp") == (.private, true))
        // The private rule's: never the state.
        #expect(try why("p/a-120.webp") == (.private, false))
        #expect(try why("p/a-1200.webp") == (.private, false))
        // A lock line no rule could have written, narrowed or not: private, not the state's doing;
        // a key neither the lock nor a rule names: private without a state, which is why.
        #expect(try why("x/a-1200.webp") == (.private, false))
        #expect(try why("other.webp") == (.private, true))
    }
}
