import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Validation for the third attack on `derive serve` (issue #11): the leak guard counts the
/// target's object ACL rules, and a rule writing into a public-read-write bucket is warned about.
@Suite(.ownThreads) struct ServeRound3ValidationTests {
    static let buckets = """
        version: 1
        buckets:
          priv: {path: priv, acl: private}
          ovr:
            path: ovr
            acl: private
            objects:
              - match: "t/**"
                acl: public-read
          mixed:
            path: mixed
            acl: public-read
            objects:
              - match: "t/**"
                acl: private
          out: {path: out, acl: public-read-write}
          pub: {path: pub, acl: public-read}

        """

    func load(_ rule: String) throws -> ManifestLoader.Result {
        try Workspace().load(yaml: Self.buckets + "derivatives:\n" + rule, objects: ["priv": ["secret.jpg"], "pub": ["a.jpg"]])
    }

    @Test func anObjectRuleThatPublishesOutputsOfAPrivateSourceIsALeak() throws {
        let result = try load("""
              - name: thumbs
                from: priv/secret.jpg
                process: image/resize,w_100
                to: ovr/t/{name}.{ext}
            """)
        #expect(result.diagnostics.errors.contains { $0.message.contains("rule 'thumbs' writes derivatives of private objects of bucket 'priv' (secret.jpg) into public objects ('t/**' is public-read) of bucket 'ovr'") },
                "\(result.lines)")
    }

    @Test func outputsOutsideThePublicObjectRuleAreNoLeak() throws {
        let result = try load("""
              - name: thumbs
                from: priv/secret.jpg
                process: image/resize,w_100
                to: ovr/small/{name}.{ext}
            """)
        #expect(result.diagnostics.errors.isEmpty, "\(result.lines)")
    }

    @Test func aPrivateObjectRuleCoveringTheOutputsInAPublicBucketIsNoLeak() throws {
        let result = try load("""
              - name: thumbs
                from: priv/secret.jpg
                process: image/resize,w_100
                to: mixed/t/{name}.{ext}
            """)
        #expect(result.diagnostics.errors.isEmpty, "\(result.lines)")
        let open = try load("""
              - name: thumbs
                from: priv/secret.jpg
                process: image/resize,w_100
                to: mixed/open/{name}.{ext}
            """)
        #expect(open.diagnostics.errors.contains { $0.message.contains("into public bucket 'mixed'") }, "\(open.lines)")
    }

    @Test func anExplicitACLStillSilencesTheGuard() throws {
        let result = try load("""
              - name: thumbs
                from: priv/secret.jpg
                process: image/resize,w_100
                to: ovr/t/{name}.{ext}
                acl: private
            """)
        #expect(result.diagnostics.errors.isEmpty, "\(result.lines)")
    }

    @Test func aRuleWritingIntoAPublicReadWriteBucketIsWarnedAbout() throws {
        let result = try load("""
              - name: pubthumbs
                from: pub/a.jpg
                process: image/resize,w_100
                to: out/t/{name}.{ext}
            """)
        #expect(result.diagnostics.errors.isEmpty, "\(result.lines)")
        #expect(result.diagnostics.all.contains { $0.severity == .warning && $0.message.contains("writes into public-read-write bucket 'out'") },
                "\(result.lines)")
        let quiet = try load("""
              - name: pubthumbs
                from: pub/a.jpg
                process: image/resize,w_100
                to: pub/t/{name}.{ext}
            """)
        #expect(!quiet.diagnostics.all.contains { $0.message.contains("public-read-write") }, "\(quiet.lines)")
    }
}
