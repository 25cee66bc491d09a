import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Issue 15: `neighbourLockGuard` renders an output name only when `PathTemplate.mayEndInLock`
/// says it may end in `.lock`. The pretest must never say no to a name the full rendering ends
/// in `.lock` (in any case): each template here, for every key and variant, is run both ways.
@Suite(.ownThreads)
struct LockSuffixPretestTests {
    /// Keys as a bucket listing gives them (files: no empty part, no trailing '/').
    static let keys = [
        "a.jpg", "press/b.jpg", "derive.lock", "x.LOCK", "x.Lock", "sub/derive.lock", "x.loc\u{212A}", "x.jp\u{212A}",
        "noext", ".hidden", ".lock", "a.", "a/b.tar.gz", "é.jpg", "e\u{301}.lock", "x.lock\u{301}", "k", "a.k", "a.K",
        "folder.lock/x.jpg", "x.jp g", "x.lo ck", "a", "K", "d/a", "dots...", "a.b/c", "ü.LÖCK", "x.\u{130}",
    ]
    static let templates = [
        "out/{name}.{style}.{ext}", "{key}", "{dir}/{name}.lock", "{name}.{ext}", "{dir}/derive.{ext}", "x/{name}.lo{v}",
        "{ext}", "{style}", "{v}", "{name}{hash}", "{key}{hash:8}", "{name}.{ext}/", "lock", "{name}.loc{v}", "a/{ext}{v}",
        "{dir}", "{key}.{style}", "{v}{ext}", "derive.LOC{style}", "{name}.{ext}{hash}", "{key}//", "x{unknown}",
    ]

    func variants() throws -> [Rule.Variant] {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let result = try workspace.load(yaml: """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            styles:
              plain: image/resize,w_100
              webp: image/resize,w_100/format,webp
              k: image/resize,w_90
            derivatives:
              - from: src/*
                styles: [plain, webp, k]
                matrix: {v: [lock, k, K, x, "ck"]}
                to: out/{name}.{style}.{v}.{ext}
            """, objects: ["src": ["a.jpg"]])
        let manifest = try #require(result.manifest, "\(result.lines)")
        let rule = try #require(manifest.rules.first)
        var variants = try rule.variants(catalogue: manifest.catalogue)
        // No `styles:`: `{style}` taken from a matrix value, or empty.
        let pipeline = try #require(variants.first).pipeline
        variants.append(Rule.Variant(style: nil, values: ["style": "loCK", "v": "x"], pipeline: pipeline))
        variants.append(Rule.Variant(style: nil, values: [:], pipeline: pipeline))
        return variants
    }

    @Test func thePretestNeverRefusesANameTheGuardWouldJudge() throws {
        let variants = try variants()
        #expect(variants.count == 17)
        var skipped = 0, judged = 0
        for text in Self.templates {
            let template = try PathTemplate(text)
            for key in Self.keys {
                for variant in variants {
                    let outputKey = Validator.lockGuardOutputKey(template, key: key, variant: variant)
                    let endsInLock = outputKey.lowercased().hasSuffix(".lock")
                    if endsInLock { judged += 1 }
                    if !template.mayEndInLock(key: key, variant: variant) {
                        skipped += 1
                        #expect(!endsInLock, "'\(text)' for '\(key)', style \(variant.style ?? "-"), \(variant.values): \(outputKey)")
                    }
                }
            }
        }
        // Both answers occur: the corpus reaches names ending in `.lock` and names skipped.
        #expect(judged > 100 && skipped > 1_000, "judged \(judged), skipped \(skipped)")
    }

    /// The common shape skips every plain source (what made the guard cheap), and a source whose
    /// name ends as a lock is still rendered.
    @Test func aStyledRuleSkipsPlainSourcesOnly() throws {
        let variant = try #require(try variants().first { $0.style == "plain" && $0.values["v"] == "x" })
        let template = try PathTemplate("out/{name}.{style}.{ext}")
        for key in ["a.jpg", "press/b.png", "x.JPG", "noext", "a."] {
            #expect(!template.mayEndInLock(key: key, variant: variant), "\(key)")
        }
        for key in ["x.lock", "x.LOCK", "é.jpk", "x.loc\u{212A}"] {
            #expect(template.mayEndInLock(key: key, variant: variant), "\(key)")
        }
        #expect(try PathTemplate("out/{dir}/{name}").mayEndInLock(key: "a.jpg", variant: variant), "{name} last: always rendered")
    }

    /// `{dir}` of a one-character key at a bucket's top is "" (NSString's
    /// `deletingLastPathComponent` trapped on it: `derive plan` crashed on a source named `a`).
    @Test func aOneCharacterKeyHasNoFolder() throws {
        #expect(PathTemplate.folder(ofKey: "a") == "")
        #expect(PathTemplate.folder(ofKey: "k.jpg") == "")
        #expect(PathTemplate.folder(ofKey: "d/a") == "d")
        #expect(PathTemplate.folder(ofKey: "a/b/c.jpg") == "a/b")
        #expect(PathTemplate.folder(ofKey: "é/x") == "é")
        let variant = try #require(try variants().first { $0.style == "plain" && $0.values["v"] == "x" })
        #expect(Validator.lockGuardOutputKey(try PathTemplate("out/{dir}/{name}.{style}.{ext}"), key: "a", variant: variant) == "out/a.plain.")
    }

    /// `validate` still refuses an output at another manifest's lock that only `{key}` or the
    /// source's `{ext}` makes end in `.lock` (the two ways the pretest looks at the source).
    @Test func validateStillRefusesOutputsAtANeighboursLock() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        try workspace.write("out/sub/derive.yaml", "version: 1\nbuckets:\n  b: {path: b}\n")
        for (to, key) in [("out/sub/{key}", "derive.lock"), ("out/sub/derive.{ext}", "x.LOCK")] {
            let result = try workspace.load(yaml: """
                version: 1
                buckets:
                  src: {path: src}
                  out: {path: out}
                derivatives:
                  - from: src/*
                    process: image/resize,w_10
                    to: \(to)
                """, objects: ["src": [key, "a.jpg"]])
            #expect(result.lines.contains { $0.contains("is the lock of") && $0.contains("derive.yaml, another manifest") }, "\(to): \(result.lines)")
        }
    }
}
