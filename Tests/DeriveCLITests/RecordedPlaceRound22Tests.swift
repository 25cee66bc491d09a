import Foundation
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Round 22's V1 against a running `derive serve`: a private rule's *current* outputs (recorded
/// in the state and listed in the lock, not `left`) were public under a renamed bucket over the
/// same folder (`site:` → `www:`), or under a new public bucket over their sub-folder, as soon as
/// the manifest was edited: output records were matched by key (`site/…`), not by the file's
/// place, so `www/…` reached the same files with no record. In a clone a failed build (leaving
/// an empty state) was enough. A recorded output's ACL now applies to its file under every key
/// that reaches its place (bucket folder + key), never more publicly, as left records do.
@Suite(.ownThreads, .serialized) struct RecordedPlaceRound22Tests {
    typealias R19 = LeftInPlaceRound19Tests
    typealias Project = LeftInPlaceRound19Tests.Project
    let r21 = LeftInPlaceRound21Tests()

    /// The private rules' current outputs of round 19's project (`internal` w 32 and 36, and
    /// `internal2`'s style `small`), by key under the bucket over `site/`.
    static let privateKeys = ["internal/ceo-passport-scan-32.webp", "internal/ceo-passport-scan-36.webp", "st/ceo-passport-scan.small.webp"]

    /// `site:` → `www:` over the same folder (`path: site` kept), plus a matrix value changed.
    static func renamedBucket(_ text: String) -> String {
        text.replacingOccurrences(of: "\n  site:\n", with: "\n  www:\n").replacingOccurrences(of: "to: site/", with: "to: www/")
            .replacingOccurrences(of: "index: site/", with: "index: www/").replacingOccurrences(of: "w: [32, 36]", with: "w: [30, 36]")
    }

    func built() throws -> Project {
        setenv(R19.secretVariable, R19.secret, 1)
        let project = try Project()
        _ = try project.build(["-q"])
        return project
    }

    /// V1 (lw/clean2): serve running, the bucket renamed, no build. Every private output is
    /// private under `www/…` (anonymous 403, not listed, signed 200); the public one stays public.
    @Test func aBucketRenamedOverTheSameFolderKeepsItsPrivateOutputsPrivateBeforeAnyBuild() throws {
        let project = try built()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        for key in Self.privateKeys { try r21.expectPrivate("site", key, file: "site/" + key, project, serve, "before the edit") }
        try project.edit(Self.renamedBucket)
        for key in Self.privateKeys { try r21.expectPrivate("www", key, file: "site/" + key, project, serve, "renamed, running serve, no build") }
        let lake = try r21.r19.request(serve, "/www/g/lake.webp")
        #expect(lake.status == 200, "the public output under the renamed bucket: \(lake.status)")
        // A fresh serve on the same tree (one serve per state folder: the first one stopped).
        serve.stop()
        let again = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { again.stop() }
        for key in Self.privateKeys { try r21.expectPrivate("www", key, file: "site/" + key, project, again, "renamed, fresh serve, no build") }
    }

    /// V1's second form: a new public bucket over the private outputs' sub-folder, the private
    /// rule removed, no build: `raw/…` reaches the same files and is private.
    @Test func aNewBucketOverTheirSubFolderKeepsPrivateOutputsPrivateBeforeAnyBuild() throws {
        let project = try built()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        // lw/sub: the bucket over `site/` replaced by public buckets over its sub-folders, the private
        // rules removed (a bucket inside another is refused, so `site` goes).
        try project.write("derive.yaml", """
            version: 1
            access_keys:
              - id: AKIDR19
                secret_env: \(R19.secretVariable)
            buckets:
              pub: {path: pub, acl: public-read}
              priv: {path: priv, acl: private}
              raw: {path: site/internal, acl: public-read}
              stx: {path: site/st, acl: public-read}
            derivatives:
              - name: gallery
                from: pub/*.jpg
                process: image/resize,w_48/format,webp
                to: raw/g/{name}.webp

            """)
        let validate = try project.run(["validate"])
        #expect(validate.status == 0, "\(r21.out(validate)) \(validate.stderr)")
        for key in Self.privateKeys {
            let (bucket, inBucket) = key.hasPrefix("internal/") ? ("raw", String(key.dropFirst("internal/".count))) : ("stx", String(key.dropFirst("st/".count)))
            try r21.expectPrivate(bucket, inBucket, file: "site/" + key, project, serve, "new buckets over the sub-folders, no build")
        }
    }

    /// V1 clone (lw/clone3): `.derive/` gone, the bucket renamed; the build fails (the lock does not
    /// vouch for `www/…`) but leaves a state: the outputs the lock lists stay private under `www/…`.
    @Test func aCloneWithABucketRenamedKeepsItsPrivateOutputsPrivateAfterAFailedBuild() throws {
        let project = try built()
        defer { project.remove() }
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.edit(Self.renamedBucket)
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        for key in Self.privateKeys { try r21.expectPrivate("www", key, file: "site/" + key, project, serve, "clone, renamed, no build") }
        let refused = try project.run(["build"])
        #expect(refused.status != 0, "\(r21.out(refused))")
        for key in Self.privateKeys { try r21.expectPrivate("www", key, file: "site/" + key, project, serve, "clone, renamed, build refused") }
    }

    /// The index guard under a renamed bucket: `site:` → `www:` with its `objects:` rule (the
    /// index private) and the private rules removed, no build. The index the build wrote lists
    /// the private outputs (names, sizes, placeholders): it stays private under `www/…`, and so
    /// do the outputs.
    @Test func theIndexUnderARenamedBucketStaysAsPrivateAsTheOutputsItLists() throws {
        let project = try built()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        try project.edit { text in
            var renamed = Self.renamedBucket(text).replacingOccurrences(of: "    objects: [{match: \"index.json\", acl: private}]\n", with: "")
            if let start = renamed.range(of: "  - name: internal\n"), let end = renamed.range(of: "index: www/") {
                renamed.replaceSubrange(start.lowerBound..<end.lowerBound, with: "")
            }
            return renamed
        }
        let validate = try project.run(["validate"])
        #expect(validate.status == 0, "\(r21.out(validate)) \(validate.stderr)")
        try r21.expectPrivate("www", "index.json", file: "site/index.json", project, serve, "index, renamed bucket, no build")
        for key in Self.privateKeys { try r21.expectPrivate("www", key, file: "site/" + key, project, serve, "renamed, rules removed, no build") }
    }
}
