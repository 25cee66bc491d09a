import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Globs match Unicode scalars, never grapheme clusters: a combining mark after `/` is its own
/// scalar, so `secret/**` still sees the `/` (issue #11.3). Keys that differ in bytes are
/// different keys, as in OSS, even when Swift's `==` calls them equal.
@Suite(.ownThreads) struct UnicodeGlobTests {
    static let acute = "\u{301}"

    @Test func combiningMarkAfterSlashStillMatchesThePrivateFolder() throws {
        let glob = try Glob("secret/**")
        // As Characters, "/\u{301}" is one cluster and the folder is not seen.
        #expect(glob.matches("secret/\(Self.acute)x.jpg"))
        #expect(glob.matches("secret/\(Self.acute)/x.jpg"))
        #expect(try Glob("secret/*").matches("secret/\(Self.acute)x.jpg"))
        #expect(try Glob("*/*.jpg").matches("secret/\(Self.acute)x.jpg"))
    }

    @Test func bucketOverrideAppliesToCombiningMarkKeys() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          pubr:
            path: pubr
            acl: public-read
            objects:
              - match: "secret/**"
                acl: private
        """)
        let bucket = try #require(result.manifest?.bucket(named: "pubr"))
        #expect(bucket.effectiveACL(of: "secret/\(Self.acute)x.jpg") == .private)
        #expect(bucket.effectiveACL(of: "secret/x.jpg") == .private)
        #expect(bucket.effectiveACL(of: "x.jpg") == .publicRead)
    }

    @Test func starAndQuestionCountScalars() throws {
        // "e" + U+0301 is one Character but two scalars.
        #expect(try !Glob("?.jpg").matches("e\(Self.acute).jpg"))
        #expect(try Glob("??.jpg").matches("e\(Self.acute).jpg"))
        #expect(try Glob("e*.jpg").matches("e\(Self.acute).jpg"))
        // A literal "e" in the pattern matches the base letter of a decomposed key.
        #expect(try Glob("e\(Self.acute).jpg").matches("e\(Self.acute).jpg"))
    }

    @Test func zwjSequencesAreSeveralScalars() throws {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"   // one Character, five scalars
        #expect(try Glob("*.png").matches("\(family).png"))
        #expect(try !Glob("?.png").matches("\(family).png"))
        #expect(try Glob("?????.png").matches("\(family).png"))
        #expect(try Glob("\u{1F468}*").matches("\(family).png"))
        #expect(try Glob("private/**").matches("private/\u{200D}x.png"))
    }

    @Test func nfcAndNfdTwinsAreDifferentKeys() throws {
        let nfc = "caf\u{E9}.jpg", nfd = "cafe\u{301}.jpg"
        #expect(nfc == nfd)   // Swift's String equality is canonical equivalence...
        #expect(try Glob(nfc).matches(nfc))
        #expect(try !Glob(nfc).matches(nfd))   // ...glob matching is not
        #expect(try !Glob(nfd).matches(nfc))
        #expect(try Glob("caf[\u{E9}].jpg").matches(nfc))
        #expect(try !Glob("caf[\u{E9}].jpg").matches(nfd))
        #expect(try !Glob("{\(nfc)}").matches(nfd))
    }

    @Test func fullwidthSolidusIsNotASeparator() throws {
        let key = "secret\u{FF0F}x.jpg"
        #expect(try !Glob("secret/**").matches(key))
        #expect(try Glob("*.jpg").matches(key))       // one segment: `*` crosses U+FF0F
        #expect(try Glob("secret?x.jpg").matches(key))
        #expect(try !Glob("*/*").matches(key))
    }

    @Test func classesCompareScalars() throws {
        // A class holding a decomposed letter holds its two scalars, not one cluster.
        #expect(try Glob("[e\(Self.acute)]").matches("e"))
        #expect(try Glob("[e\(Self.acute)]").matches(Self.acute))
        #expect(try Glob("[a-z]\(Self.acute)").matches("e\(Self.acute)"))
    }

    @Test func ruleSourcesMatchScalars() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: sources
            from: photos/press/**
            exclude: ["press/\(Self.acute)skip/**"]
            process: image/resize,w_10
            to: site/{key}
            acl: public-read
        """)
        let rule = try #require(result.manifest?.rules.first)
        #expect(rule.includes("press/\(Self.acute)x.jpg"))
        #expect(!rule.includes("press/\(Self.acute)skip/x.jpg"))
        #expect(rule.includes("press/skip/x.jpg"))
    }

    @Test func bucketPathSplitsOnTheFirstSlashScalar() throws {
        // "photos/" + a combining mark is one Character; the bucket is still 'photos'.
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: "photos/\(Self.acute)x/*.jpg"
            process: image/resize,w_10
            to: "site/\(Self.acute)out/{name}.{ext}"
            acl: private
        """, objects: ["photos": ["\(Self.acute)x/a.jpg"]])
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
        let rule = try #require(result.manifest?.rules.first)
        #expect(rule.sourceBucket == "photos" && rule.targetBucket == "site")
        #expect(rule.includes("\(Self.acute)x/a.jpg"))
    }

    @Test func matrixValuesCannotHideASlashBehindACombiningMark() throws {
        // "../" + U+0301 is three Characters, none of them "/"; its bytes hold a '..' segment.
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/press/*.jpg
            process: image/resize,w_10
            matrix: {v: ["../\(Self.acute)", "a,\(Self.acute)"]}
            to: site/{v}{name}.{ext}
        """)
        #expect(result.has(15, 18, "matrix value '../\(Self.acute)' cannot be empty or contain '/' or ','"), "\(result.lines)")
        #expect(result.has(15, 26, "matrix value 'a,\(Self.acute)' cannot"), "\(result.lines)")
    }

    @Test func templateEscapesAreSeenThroughCombiningMarks() throws {
        // Bytes: "x", "..", "<U+0301>y": the '..' segment is real to the file system.
        #expect(try PathTemplate("x/../\(Self.acute)y/{name}").escapeProblem != nil)
        #expect(try PathTemplate("../\(Self.acute){name}").escapeProblem != nil)
        #expect(try PathTemplate("..\(Self.acute)/{name}").escapeProblem == nil)   // "..´" is a plain name
        #expect(try PathTemplate("/\(Self.acute){name}").escapeProblem != nil)
        // A combining mark after '}' does not hide the brace.
        let template = try PathTemplate("{name}\(Self.acute).jpg")
        #expect(template.variables == ["name"])
        #expect(template.render(["name": "a"]) == "a\(Self.acute).jpg")
        // An empty {dir} before "/<mark>" still drops the leading slash.
        #expect(try PathTemplate("{dir}/\(Self.acute){name}").render(["dir": "", "name": "a"]) == "\(Self.acute)a")
    }
}
