import Foundation
import ProcessLanguage
import Testing
import TestSupport
@testable import Manifest

/// The leak guard reports alongside a rule's other errors (issue #9.17) and counts the
/// watermark objects a rule's pipelines read (issues #9, #11.1).
@Suite(.ownThreads) struct LeakGuardTests {
    static func mark(_ key: String) -> String { "watermark,image_\(Base64URL.encode(key)),g_se" }

    @Test func reportedAlongsideTheRulesOtherErrors() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: leaky
            from: photos/**/*.jpg
            process: image/rezise,w_10
            to: site/{nme}.{ext}
        """)
        #expect(result.has(15, 20, "unknown action 'rezise'"), "\(result.lines)")
        #expect(result.has(16, 14, "unknown variable '{nme}'"), "\(result.lines)")
        #expect(result.has(13, 5, "rule 'leaky' writes derivatives of private objects of bucket 'photos' (a.jpg) into public bucket 'site'"), "\(result.lines)")
    }

    @Test func reportedWithAnUnknownStyleAndAnUnknownKey() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          thumb: image/resize,w_10
        derivatives:
          - name: leaky
            from: photos/*.jpg
            styles: [thumb, thum]
            to: site/{name}.{style}.{ext}
            colour: red
        """)
        #expect(result.has(17, 21, "unknown style 'thum'"), "\(result.lines)")
        #expect(result.has(19, 5, "unknown key 'colour'"), "\(result.lines)")
        #expect(result.has(15, 5, "rule 'leaky' writes derivatives of private objects"), "\(result.lines)")
    }

    @Test func aMisspeltACLIsAnErrorButNotALeak() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: meant
            from: photos/*.jpg
            process: image/resize,w_10
            to: site/{name}.{ext}
            acl: publik-read
        """)
        #expect(result.has(17, 10, "acl 'publik-read' must be one of"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
    }

    @Test func privateWatermarkIntoAPublicBucketIsALeak() throws {
        // The source is public (press/**); the logo is private (the bucket's default).
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          stamped: image/resize,w_100/\(Self.mark("logo.png"))
        derivatives:
          - name: stamped
            from: photos/press/*.jpg
            styles: [stamped]
            to: site/{name}.{ext}
          - name: inline
            from: photos/press/*.jpg
            process: image/resize,w_{w}/\(Self.mark("brand/mark.png?x-oss-process=image/resize,P_20"))
            matrix: {w: [10, 20]}
            to: site/inline/{name}-{w}.{ext}
          - name: publicmark
            from: photos/press/*.jpg
            process: image/\(Self.mark("press/logo.png"))
            to: site/ok/{name}.{ext}
          - name: deliberate
            from: photos/press/*.jpg
            styles: [stamped]
            to: site/deliberate/{name}.{ext}
            acl: public-read
          - name: private
            from: photos/press/*.jpg
            styles: [stamped]
            to: photos/private/{name}.{ext}
        """)
        #expect(result.has(15, 5, "rule 'stamped' stamps private watermark objects of bucket 'photos' (logo.png) into public bucket 'site'"), "\(result.lines)")
        #expect(result.has(19, 5, "rule 'inline' stamps private watermark objects of bucket 'photos' (brand/mark.png)"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 2, "\(result.lines)")
    }

    @Test func watermarkLeakIsReportedEvenWhenTheRuleHasOtherErrors() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - name: stamped
            from: photos/press/*.jpg
            process: image/resize,w_{w}/\(Self.mark("logo.png"))
            matrix: {w: [10, 0]}
            to: site/{name}-{w}.{ext}
        """)
        #expect(result.has(15, 5, "resize: parameter 'w' must be in [1, 16384], got 0", severity: .error) || result.lines.contains { $0.contains("got 0") },
                "\(result.lines)")
        #expect(result.has(13, 5, "stamps private watermark objects of bucket 'photos' (logo.png)"), "\(result.lines)")
    }
}
