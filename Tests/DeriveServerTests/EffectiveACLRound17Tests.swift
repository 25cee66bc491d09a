import Confinement
import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 17's N6 at the one definition: a built output's effective ACL is the more private of
/// the ACL its build recorded and the one the manifest in force gives it (its rule's `acl:`, else
/// its source's ACL), so a rule or a source made private applies before any build.
@Suite(.ownThreads) struct EffectiveACLRound17Tests {
    /// One recorded output, `site/a.webp`, built by rule `pic` from `src/a.jpg`.
    struct Built: RecordedOutputs {
        var acl: BucketACL
        var rule: String? = "pic"
        func recordedACL(bucket: String, key: String) throws -> BucketACL? { key == "a.webp" ? acl : nil }
        func recordedOutput(bucket: String, key: String) throws -> RecordedOutput? {
            key == "a.webp" ? RecordedOutput(acl: acl, rule: rule, source: "src/a.jpg") : nil
        }
    }

    static func manifest(rule: String = "pic", ruleACL: String?, srcACL: String = "private", siteACL: String = "private") throws -> Manifest {
        let folder = (try ScratchFolder.make("derive-acl17"))
        for bucket in ["src", "site"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(bucket), withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = """
            version: 1
            buckets:
              src: {path: src, acl: \(srcACL)}
              site: {path: site, acl: \(siteACL)}
            derivatives:
              - name: \(rule)
                from: src/*.jpg
                process: image/resize,w_40
                to: site/{name}.webp
            \(ruleACL.map { "    acl: \($0)\n" } ?? "")
            """
        try Data(text.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
        return try #require(result.manifest, "\(result.diagnostics)")
    }

    func acl(_ recorded: BucketACL, _ manifest: Manifest, rule: String? = "pic") throws -> BucketACL {
        let authorizer = Authorizer(recorded: Built(acl: recorded, rule: rule), manifest: manifest)
        let site = try #require(manifest.bucket(named: "site"))
        return authorizer.effectiveACL(site, try ObjectKey("a.webp"))
    }

    @Test func aRuleMadePrivateMakesItsRecordedPublicOutputPrivate() throws {
        #expect(try acl(.publicRead, Self.manifest(ruleACL: "private")) == .private)
        #expect(try acl(.publicRead, Self.manifest(ruleACL: "public-read")) == .publicRead)
    }

    @Test func aRuleMadePublicWaitsForTheBuildThatRecordsIt() throws {
        #expect(try acl(.private, Self.manifest(ruleACL: "public-read")) == .private)
    }

    @Test func aSourceMadePrivateMakesTheOutputsOfARuleWithoutACLPrivate() throws {
        // Built while src was public-read (recorded public-read); src is private now.
        #expect(try acl(.publicRead, Self.manifest(ruleACL: nil, srcACL: "private")) == .private)
        #expect(try acl(.publicRead, Self.manifest(ruleACL: nil, srcACL: "public-read", siteACL: "public-read")) == .publicRead)
    }

    @Test func anOutputOfARuleNoLongerInTheManifestHasAtMostItsBucketsACL() throws {
        #expect(try acl(.publicRead, Self.manifest(rule: "other", ruleACL: "public-read")) == .private, "site is private")
        #expect(try acl(.publicRead, Self.manifest(rule: "other", ruleACL: "public-read", srcACL: "public-read", siteACL: "public-read")) == .publicRead)
    }

    /// A record that does not say its rule keeps its recorded ACL, at most what a rule whose
    /// output template gives its key gives (attack 18's F1: `EffectiveACL`). Here `pic` writes
    /// `site/{name}.webp`, so `a.webp` is its name.
    @Test func aRecordWithoutItsRuleKeepsTheRecordedACL() throws {
        #expect(try acl(.publicRead, Self.manifest(ruleACL: "public-read", srcACL: "public-read", siteACL: "public-read"), rule: nil) == .publicRead)
        #expect(try acl(.publicRead, Self.manifest(ruleACL: "private"), rule: nil) == .private)
    }

    @Test func morePrivateOrdersTheThreeACLs() {
        #expect(BucketACL.morePrivate(.publicReadWrite, .publicRead) == .publicRead)
        #expect(BucketACL.morePrivate(.publicRead, .private) == .private)
        #expect(BucketACL.morePrivate(.private, .publicReadWrite) == .private)
    }
}
