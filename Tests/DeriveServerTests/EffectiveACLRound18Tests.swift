import Confinement
import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 18's F1/F1b at the one definition: a key is never more public than what a rule that
/// may write it gives. A private rule's old `{hash}` output that a build "left in place" (a fresh
/// clone's lock line dropped, or a file with a new inode) has no record any more: it must not
/// fall back to its public bucket's ACL.
@Suite(.ownThreads) struct EffectiveACLRound18Tests {
    /// Records as the state holds them (`key` → record) and the keys the lock lists.
    struct State: RecordedOutputs {
        var records: [String: RecordedOutput] = [:]
        var lock: Set<String> = []
        func recordedACL(bucket: String, key: String) throws -> BucketACL? { records[key]?.acl }
        func recordedOutput(bucket: String, key: String) throws -> RecordedOutput? { records[key] }
        func lockLists(bucket: String, key: String) -> Bool { lock.contains(key) }
    }

    /// Attack 18's manifest: `site` public-read (its index private by an `objects:` rule), rule
    /// `gallery` from the public bucket, rule `internal` (`acl: private`) from the private one,
    /// both `{hash}` names in `site`. `rules` replaces the derivatives.
    static func manifest(rules: String? = nil, privACL: String = "private", privObjects: String = "") throws -> Manifest {
        let folder = (try ScratchFolder.make("derive-acl18"))
        for bucket in ["pub", "priv", "site"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(bucket), withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        let derivatives = rules ?? """
              - name: gallery
                from: pub/*.jpg
                process: image/resize,w_200/format,webp
                to: site/g/{name}.{hash}.webp
              - name: internal
                from: priv/*.jpg
                process: image/resize,w_200/format,webp
                to: site/internal/{name}.{hash}.webp
                acl: private
            """
        let text = """
            version: 1
            buckets:
              pub: {path: pub, acl: public-read}
              priv: {path: priv, acl: \(privACL)\(privObjects)}
              site:
                path: site
                acl: public-read
                objects: [{match: "index.json", acl: private}]
            derivatives:
            \(derivatives)
            index: site/index.json

            """
        try Data(text.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
        return try #require(result.manifest, "\(result.diagnostics.sorted)")
    }

    /// A public rule `gallery` writing `site/{name}.webp` and a private one `internal` writing
    /// `site/{name}-200.webp`: `lake-200.webp` may be either's.
    static let overlappingRules = """
          - name: gallery
            from: pub/*.jpg
            process: image/resize,w_200/format,webp
            to: site/{name}.webp
          - name: internal
            from: priv/*.jpg
            process: image/resize,w_200/format,webp
            to: site/{name}-200.webp
            acl: private
        """

    func acl(_ key: String, _ manifest: Manifest, _ state: State = State()) throws -> BucketACL {
        let authorizer = Authorizer(recorded: state, manifest: manifest)
        return authorizer.effectiveACL(try #require(manifest.bucket(named: "site")), try ObjectKey(key))
    }

    /// F1/F1b: the state answers (a build made it) and records no such key; the key is the
    /// private rule's old `{hash}` name. Private, anonymous readers get 403 and no listing.
    @Test func aPrivateRulesOutputLeftInPlaceWithoutARecordStaysPrivate() throws {
        let manifest = try Self.manifest()
        #expect(try acl("internal/ceo-passport-scan.fb0a8f6cd2.webp", manifest) == .private)
        let authorizer = Authorizer(recorded: State(), manifest: manifest)
        let site = try #require(manifest.bucket(named: "site"))
        let key = try ObjectKey("internal/ceo-passport-scan.fb0a8f6cd2.webp")
        #expect(!authorizer.mayRead(site, key, caller: nil))
        #expect(authorizer.mayRead(site, key, caller: "AKID"), "a signed request still reads it")
        #expect(authorizer.objectACLHeader(site, key) == "private")
    }

    /// The rest of the bucket keeps its ACL: the public rule's names, plain files, and names
    /// that the private rule's template does not give (no hex run, another folder, another
    /// extension than its format's).
    @Test func keysNoPrivateTemplateGivesKeepTheirBucketsACL() throws {
        let manifest = try Self.manifest()
        for key in ["g/lake.0123456789.webp", "index.html", "internal/notes.txt", "internal/a.webp", "internal/a.xyz0123456.webp",
                    "internal/a.0123456789.jpg", "other/a.0123456789.webp"] {
            #expect(try acl(key, manifest) == .publicRead, "\(key)")
        }
        #expect(try acl("index.json", manifest) == .private)
    }

    /// `{hash}` as its hex run: an output of an earlier `{hash:N}` (another length) is the rule's too.
    @Test func anOldHashLengthIsStillTheRulesName() throws {
        let manifest = try Self.manifest()
        #expect(try acl("internal/a.fb0a.webp", manifest) == .private)
        #expect(try acl("internal/a.fb0a8f6cd2fb0a8f6cd2.webp", manifest) == .private)
    }

    /// A rule without `acl:` gives its derivatives their source's ACL: for a key with no record
    /// (its source not known) that is the most private its source bucket gives a key `from:`
    /// may match. An `objects:` rule that `from:` cannot meet does not count.
    @Test func aRuleWithoutACLBoundsItsUnrecordedKeysByItsSourcesACL() throws {
        let rules = """
              - name: internal
                from: priv/*.jpg
                process: image/resize,w_200/format,webp
                to: site/internal/{name}.{hash}.webp
            """
        let key = "internal/a.0123456789.webp"
        #expect(try acl(key, Self.manifest(rules: rules)) == .private)
        #expect(try acl(key, Self.manifest(rules: rules, privACL: "public-read")) == .publicRead)
        #expect(try acl(key, Self.manifest(rules: rules, privACL: "public-read", privObjects: ", objects: [{match: \"drafts/**\", acl: private}]")) == .publicRead,
                "drafts/** never meets *.jpg")
        #expect(try acl(key, Self.manifest(rules: rules, privACL: "public-read", privObjects: ", objects: [{match: \"ceo-*\", acl: private}]")) == .private,
                "some source may be private")
        #expect(try acl(key, Self.manifest(rules: rules, privACL: "private", privObjects: ", objects: [{match: \"*\", acl: public-read}]")) == .publicRead,
                "every source is public-read by an objects: rule that covers from:")
    }

    /// A recorded output of the public rule whose key the private rule's template also gives:
    /// the private rule may write it, so it is private (the record's own rule is applied with
    /// its known source, attack 17's N6).
    @Test func aRecordedOutputThatAPrivateRuleMayAlsoWriteIsPrivate() throws {
        let manifest = try Self.manifest(rules: Self.overlappingRules)
        let state = State(records: ["lake-200.webp": RecordedOutput(acl: .publicRead, rule: "gallery", source: "pub/lake-200.jpg"),
                                    "lake.webp": RecordedOutput(acl: .publicRead, rule: "gallery", source: "pub/lake.jpg")])
        #expect(try acl("lake-200.webp", manifest, state) == .private)
        #expect(try acl("lake.webp", manifest, state) == .publicRead)
    }

    /// The matrix's styles and values as they are now: a width the rule writes is its name, one
    /// it does not (a user's file beside them) keeps the bucket's ACL.
    @Test func styleAndMatrixValuesAreTheRulesOwn() throws {
        let rules = """
              - name: internal
                from: priv/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [200, 400]}
                to: site/{name}-{w}.webp
                acl: private
            """
        let manifest = try Self.manifest(rules: rules)
        #expect(try acl("a-200.webp", manifest) == .private)
        #expect(try acl("a-400.webp", manifest) == .private)
        #expect(try acl("a-dark.webp", manifest) == .publicRead)
    }

    /// A key the lock lists and the state does not record: its line's rule's ACL when a rule's
    /// template gives it; private when none does (an output of a rule since renamed or removed).
    @Test func aKeyOnlyTheLockListsGetsItsRulesACLOrPrivate() throws {
        let manifest = try Self.manifest()
        let state = State(lock: ["g/lake.0123456789.webp", "old/lake.webp"])
        #expect(try acl("g/lake.0123456789.webp", manifest, state) == .publicRead)
        #expect(try acl("old/lake.webp", manifest, state) == .private)
        #expect(try acl("old/other.webp", manifest, state) == .publicRead)
    }

    /// The same definition where the build decides: a public rule's output that the private
    /// rule's template also gives is recorded private (and a public index refuses to list it).
    @Test func theBuildsACLOfAnOutputIsTheSameDefinition() throws {
        let manifest = try Self.manifest(rules: Self.overlappingRules)
        let acls = EffectiveACL(manifest)
        let gallery = try #require(manifest.rules.first { $0.name == "gallery" })
        let pub = try #require(manifest.bucket(named: "pub"))
        #expect(acls.derivative(gallery, sourceBucket: pub, sourceKey: "lake-200.jpg", outputKey: "lake-200.webp") == .private)
        #expect(acls.derivative(gallery, sourceBucket: pub, sourceKey: "lake.jpg", outputKey: "lake.webp") == .publicRead)
    }
    /// The cost per request: the templates are compiled once per manifest load (`Authorizer`
    /// holds them), so a lookup is a few pattern matches. 40 rules with 3 widths each write into
    /// `site`; 20 000 lookups of keys they give and keys they do not. A regression that compiled
    /// the templates per request (expanding every rule's recipes) costs far more than the bound.
    @Test func aLookupMatchesPrecompiledTemplates() throws {
        var rules = ""
        for index in 0..<40 {
            rules += """
                  - name: r\(index)
                    from: priv/*.jpg
                    process: image/resize,w_{w}/format,webp
                    matrix: {w: [320, 640, 960]}
                    to: site/r\(index)/{name}-{w}.{hash}.webp
                \(index % 2 == 0 ? "    acl: private\n" : "    acl: public-read\n")
                """
        }
        let manifest = try Self.manifest(rules: rules)
        let site = try #require(manifest.bucket(named: "site"))
        let keys = try (0..<40).flatMap { index in
            [try ObjectKey("r\(index)/lake-640.0123456789.webp"), try ObjectKey("r\(index)/notes.txt"), try ObjectKey("page-\(index).html")]
        }
        let clock = ContinuousClock()
        var authorizer: Authorizer?
        let compile = clock.measure { authorizer = Authorizer(recorded: State(), manifest: manifest) }
        let loaded = try #require(authorizer)
        var privateCount = 0
        let lookups = 20_000
        let elapsed = clock.measure {
            for index in 0..<lookups where loaded.effectiveACL(site, keys[index % keys.count]) == .private { privateCount += 1 }
        }
        let perLookup = Double(elapsed.components.attoseconds) / 1e12 / Double(lookups) + Double(elapsed.components.seconds) * 1e6 / Double(lookups)
        print("EffectiveACL: compile \(compile) for 40 rules; \(String(format: "%.1f", perLookup)) µs per lookup (\(lookups) lookups)")
        #expect(privateCount > 0)
        #expect(loaded.effectiveACL(site, try ObjectKey("r0/lake-640.0123456789.webp")) == .private)
        #expect(loaded.effectiveACL(site, try ObjectKey("r1/lake-640.0123456789.webp")) == .publicRead)
        #expect(loaded.effectiveACL(site, try ObjectKey("r0/notes.txt")) == .publicRead)
        #expect(perLookup < 2_000, "\(perLookup) µs per lookup")
    }
}

