import Foundation
import Testing
import TestSupport
@testable import Manifest

@Suite(.ownThreads) struct DiagnosticTests {
    @Test func validManifestHasNoDiagnostics() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          thumb: image/resize,m_fill,w_240,h_240/quality,q_82
        derivatives:
          - name: gallery
            from: photos/press/**/*.jpg
            styles: [thumb]
            to: site/img/{dir}/{name}.{style}.{ext}
        """)
        #expect(result.lines == [])
        #expect(result.manifest?.rules.count == 1)
    }

    @Test func unknownKeysWithSuggestions() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        stlyes:
          thumb: image/resize,w_10
        """)
        #expect(result.has(12, 1, "unknown key 'stlyes'"), "\(result.lines)")
        #expect(result.has(12, 1, "did you mean 'styles'?"), "\(result.lines)")
    }

    @Test func wrongTypes() throws {
        let result = try Workspace().load(yaml: """
        version: one
        buckets:
          - photos
        styles: image/resize,w_10
        derivatives: {}
        """)
        #expect(result.has(1, 10, "version must be an integer, got 'one'"), "\(result.lines)")
        #expect(result.has(3, 3, "'buckets' must be a mapping, got a list"), "\(result.lines)")
        #expect(result.has(4, 9, "'styles' must be a mapping, got a scalar"), "\(result.lines)")
        #expect(result.has(5, 14, "'derivatives' must be a list of rules, got a mapping"), "\(result.lines)")
    }

    @Test func versionIsRequiredAndChecked() throws {
        #expect(try Workspace().load(yaml: "styles: {}\n").has(1, 1, "missing 'version: 1'"))
        #expect(try Workspace().load(yaml: "version: 2\n").has(1, 10, "unsupported manifest version 2"))
    }

    /// The failing action is located inside the process string, quoted or not.
    @Test func processErrorsPointIntoTheString() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        styles:
          thumb: image/rezise,w_100
          big: "image/resize,w_100/quality,q_200"
          ok: image/resize,w_1,zz_1
        """)
        #expect(result.has(3, 16, "unknown action 'rezise' in style 'thumb'"), "\(result.lines)")
        #expect(result.has(3, 16, "did you mean 'resize'?"), "\(result.lines)")
        #expect(result.has(4, 28, "quality: parameter 'q' must be in [1, 100], got 200 in style 'big'"), "\(result.lines)")
        #expect(result.has(4, 28, "0040-00000309"), "\(result.lines)")
        #expect(result.has(5, 7, "unknown parameter 'zz'", severity: .warning), "\(result.lines)")
    }

    @Test func styleNamingAStyle() throws {
        let result = try Workspace().load(yaml: "version: 1\nstyles:\n  a: image/resize,w_1\n  b: style/a\n")
        #expect(result.has(4, 6, "style 'b' names another style"), "\(result.lines)")
    }

    @Test func badNames() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          Photos_1:
            path: p
          ab:
            path: q
        styles:
          "bad name": image/resize,w_1
        """)
        #expect(result.has(3, 3, "bucket name 'Photos_1' is invalid"), "\(result.lines)")
        #expect(result.has(5, 3, "bucket name 'ab' is invalid"), "\(result.lines)")
        #expect(result.has(8, 3, "style name 'bad name' is invalid"), "\(result.lines)")
    }

    @Test func unknownStylesAndBuckets() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          thumb: image/resize,w_10
        derivatives:
          - from: phtos/*.jpg
            styles: [thumb]
            to: site/{name}.{ext}
          - from: photos/*.jpg
            styles: [thum]
            to: sit/{name}.{ext}
        """)
        #expect(result.has(15, 11, "unknown bucket 'phtos' in 'from'"), "\(result.lines)")
        #expect(result.has(15, 11, "did you mean 'photos'?"), "\(result.lines)")
        #expect(result.has(19, 14, "unknown style 'thum' in the rule at line 18"), "\(result.lines)")
        #expect(result.has(19, 14, "did you mean 'thumb'?"), "\(result.lines)")
        #expect(result.has(20, 9, "unknown bucket 'sit' in 'to'"), "\(result.lines)")
    }

    @Test func templates() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/a.jpg
            process: image/resize,w_10
            to: site/{nme}.{style}.jpg
          - from: photos/a.jpg
            process: image/resize,w_20
            to: site/../escape/{name}.jpg
          - from: photos/a.jpg
            process: image/resize,w_30
            to: site//abs/{name.jpg
        """)
        #expect(result.has(15, 14, "unknown variable '{nme}' in 'to'"), "\(result.lines)")
        #expect(result.has(15, 14, "did you mean '{name}'?"), "\(result.lines)")
        #expect(result.has(15, 20, "{style} needs a 'styles:' rule"), "\(result.lines)")
        #expect(result.has(18, 14, "contains '..' and could leave its bucket"), "\(result.lines)")
        #expect(result.has(21, 19, "'{' without a closing '}'"), "\(result.lines)")
    }

    @Test func absoluteTemplate() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/a.jpg
            process: image/resize,w_10
            to: site//abs/{name}.jpg
        """)
        #expect(result.has(15, 14, "is absolute"), "\(result.lines)")
    }

    @Test func collisions() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          a: image/resize,w_10
          b: image/resize,w_20
          c: image/resize,w_30/format,webp
        derivatives:
          - name: one
            from: photos/**/*.jpg
            styles: [a, b]
            to: site/{name}.{ext}
          - name: two
            from: photos/press/*.jpg
            styles: [a]
            to: site/{name}.{ext}
          - name: three
            from: photos/*.png
            styles: [a, c]
            to: site/png/{name}.{ext}
          - name: four
            from: photos/x/*.gif
            styles: [a]
            to: site/{name}.gif
          - name: five
            from: photos/y/*.gif
            styles: [a]
            to: site/{name}.gif
        """)
        #expect(result.has(20, 9, "rule 'one': style 'a' and style 'b' would both write site/{name}.{ext}"), "\(result.lines)")
        #expect(result.has(24, 9, "rules 'one' and 'two' can write the same path site/{name}.{ext}"), "\(result.lines)")
        // Different formats do not collide; disjoint sources do not either.
        #expect(!result.diagnostics.errors.contains { $0.message.contains("'three'") })
        #expect(!result.diagnostics.errors.contains { $0.message.contains("'four'") })
    }

    @Test func matrixRules() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/a.jpg
            process: image/resize,w_{w}/format,webp
            matrix: {w: [320, 640]}
            to: site/{name}.webp
          - from: photos/a.jpg
            process: image/resize,w_{w}
            matrix: {w: [0, 10]}
            to: site/m/{name}-{w}.{ext}
          - from: photos/a.jpg
            process: image/resize,w_{size}
            matrix: {name: [1]}
            to: site/n/{name}.{ext}
        """)
        #expect(result.has(16, 14, "matrix variable 'w' is not used in 'to'"), "\(result.lines)")
        #expect(result.has(18, 20, "resize: parameter 'w' must be in [1, 16384], got 0"), "\(result.lines)")
        #expect(result.has(22, 29, "unknown variable '{size}'"), "\(result.lines)")
        #expect(result.has(23, 14, "matrix variable 'name' shadows the built-in {name}"), "\(result.lines)")
    }

    @Test func ruleShape() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          a: image/resize,w_10
        derivatives:
          - from: photos/a.jpg
            to: site/{name}.{ext}
          - from: photos/a.jpg
            styles: [a]
            process: image/resize,w_1
            to: site/b/{name}.{ext}
          - name: late
            styles: [a]
        """)
        #expect(result.has(15, 5, "needs 'styles'"), "\(result.lines)")
        #expect(result.has(19, 14, "has both 'styles' and 'process'"), "\(result.lines)")
        #expect(result.has(21, 5, "rule 'late' needs 'from'"), "\(result.lines)")
        #expect(result.has(21, 5, "rule 'late' needs 'to'"), "\(result.lines)")
    }

    @Test func secretsStayOutOfManifests() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        region: cn-hangzhou
        access_keys:
          - id: AKIDEXAMPLE
            secret: hunter2
          - id: AKIDOTHER
            secret_env: DERIVE_SECRET
          - id: AKIDBAD
            secret_env: not-a-var
        """)
        #expect(result.has(5, 5, "secret is written into the manifest"), "\(result.lines)")
        #expect(result.has(9, 17, "is not an environment variable name"), "\(result.lines)")
        #expect(result.manifest?.accessKeys.map(\.id) == ["AKIDOTHER"])
        #expect(result.manifest?.region == "cn-hangzhou")
    }

    @Test func limitsIndexAndState() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        limits:
          bytes: 1000000
          side: 8000
          pixels: 0
          outptu_side: 4
        index: site/index.json
        state: cache/state
        """)
        #expect(result.has(15, 11, "limits.pixels must be at least 1"), "\(result.lines)")
        #expect(result.has(16, 3, "unknown key 'outptu_side'"), "\(result.lines)")
        let manifest = try #require(result.manifest)
        #expect(manifest.limits.bytes == 1_000_000 && manifest.limits.side == 8000)
        #expect(manifest.index?.bucket == "site" && manifest.index?.path == "index.json")
        #expect(manifest.stateFolder.hasSuffix("/cache/state"))
    }

    @Test func ruleMatchingNothingWarns() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: none
            from: photos/*.tiff
            process: image/resize,w_10
            to: site/{name}.{ext}
        """)
        #expect(result.has(13, 5, "matches no objects", severity: .warning), "\(result.lines)")
        #expect(!result.diagnostics.hasErrors)
    }

    /// Attack 42a's L1: `from: src/.h.jpg` matched nothing and the warning did not say why: names
    /// starting with `.` are never listed as sources.
    @Test(arguments: ["photos/.h.jpg", "photos/.well-known/*.png"])
    func ruleNamingAHiddenSourceSaysHiddenNamesAreNoSources(from: String) throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: none
            from: \(from)
            process: image/resize,w_10
            to: site/{name}.{ext}
        """)
        #expect(result.has(13, 5, "names starting with '.' are never sources", severity: .warning), "\(result.lines)")
    }

    @Test func missingSourceFolder() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/*.jpg
            process: image/resize,w_10
            to: site/{name}.{ext}
        """, objects: [:])
        #expect(result.has(13, 5, "whose folder photos does not exist"), "\(result.lines)")
    }
}

@Suite(.ownThreads) struct ACLTests {
    @Test func effectiveACLFirstMatchWins() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          photos:
            path: photos
            acl: public-read
            objects:
              - match: "private/**"
                acl: private
              - match: "private/shared/**"
                acl: public-read
              - match: "*.raw"
                acl: default
        """)
        let bucket = try #require(result.manifest?.bucket(named: "photos"))
        #expect(bucket.effectiveACL(of: "a.jpg") == .publicRead)
        #expect(bucket.effectiveACL(of: "private/shared/x.jpg") == .private)   // first match wins
        #expect(bucket.effectiveACL(of: "b.raw") == .publicRead)               // default = the bucket's
        #expect(result.manifest?.bucket(named: "photos")?.objects.count == 3)
    }

    @Test func bucketACLDefaultsToPrivate() throws {
        let result = try Workspace().load(yaml: "version: 1\nbuckets:\n  photos:\n    path: p\n")
        #expect(result.manifest?.bucket(named: "photos")?.acl == .private)
    }

    @Test func leakGuard() throws {
        let yaml = baseBuckets + """

        derivatives:
          - name: leaky
            from: photos/**/*.jpg
            process: image/resize,w_10
            to: site/{key}
          - name: press
            from: photos/press/*.jpg
            process: image/resize,w_10
            to: site/press/{key}
          - name: deliberate
            from: photos/*.jpg
            process: image/resize,w_10
            to: site/public/{key}
            acl: public-read
        """
        let result = try Workspace().load(yaml: yaml)
        #expect(result.has(13, 5, "rule 'leaky' writes derivatives of private objects of bucket 'photos' (a.jpg) into public bucket 'site'"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
    }
}
