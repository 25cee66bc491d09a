import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import Manifest
import Planner
import ProcessLanguage

/// Pins what plans say, item by item, on a varied tree, to what the planner said before plan
/// records were made compact (issue 15, memory: interned digests, shared names, lazy fields).
/// The tree covers every field a derivative or plan item holds: styles and a matrix, a watermark
/// (dependencies) and a missing one (a failure), `{hash}` names (resolved from the state), a
/// source narrower than a width (narrowed variants), an ACL, a non-ASCII name, a source that is no
/// image for the engine, and each kind of item (create, up to date, rebuild, update, delete).
/// The plans of a fixed sequence of steps are described (`IncrementalPlanEquivalenceTests.describe`,
/// the temporary root replaced) and hashed; the golden digest is what main at 1bd9c91 gave, with the state file `clock-stamp` (round 23) among the protected paths, and since round 40 a `{hash}` output's create and delete saying why (attack 39b L4: reasons ["source changed"], "replaced by … (source changed; …)"); nothing else changed.
@Suite(.ownThreads, .serialized) struct PlanOutputPinnedTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples")

    /// `IncrementalPlanEquivalenceTests`' gallery manifest, with an ACL on its rule, a style
    /// whose watermark is missing, a matrix with `{hash:8}` names, and a rule that fails.
    static func manifest(width: Int, acl: String) -> String {
        let missing = "image/watermark,image_\(Base64URL.encode("gone.png"))"
        return IncrementalPlanEquivalenceTests.galleryManifest(width: width, pattern: "{dir}/{name}.{style}.{ext}", styles: """
              lost: \(missing)

            """, gallery: """
                acl: \(acl)

            """, rules: """
              - name: hero
                from: photos/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix:
                  w: [100, 4000, 5000]
                to: site/hero/{name}-{w}.{hash:8}.webp
              - name: broken
                from: photos/trip/*.jpg
                styles: [lost]
                to: site/lost/{name}.{ext}

            """)
    }

    /// The describe lines of every plan of the sequence (the root spelt `<root>`).
    static func sequence() throws -> [String] {
        let project = try Project(manifest(width: 200, acl: "public-read"),
                                  files: IncrementalPlanEquivalenceTests.galleryFiles.merging(["photos/caf\u{E9}.jpg": "NFC"]) { $1 })
        // A real JPEG (300 px wide): the 4000 and 5000 widths draw it at its own width (narrowed).
        let jpeg = try Data(contentsOf: samples.appendingPathComponent("orientation-1.jpg"))
        try jpeg.write(to: URL(fileURLWithPath: project.path("photos/real.jpg")))
        var lines: [String] = []
        func plan(_ step: String) throws {
            let described = IncrementalPlanEquivalenceTests.describe(try project.plan())
            lines.append("== \(step)")
            lines += described.map { $0.replacingOccurrences(of: project.root.path, with: "<root>") }
        }
        try plan("from scratch")
        try project.build()
        project.settle()
        try plan("built")
        try project.write("photos/b.jpg", "BB edited")
        try project.remove("photos/trip/c.jpg")
        try project.write("photos/new.jpg", "NEW")
        try project.remove("site/a.thumb.jpg")
        try project.write("derive.yaml", manifest(width: 240, acl: "public-read"))
        project.settle()
        try plan("edited, removed, added, an output deleted, a style changed")
        try project.build()
        try project.write("derive.yaml", manifest(width: 240, acl: "private"))
        project.settle()
        try plan("acl changed")
        try project.build()
        project.settle()
        try plan("built again")
        return lines
    }

    static let golden = "8214bb83b0d237841c46cb3f69adcbfd41793f054241ee15c9c5a1f3795f19c7"

    @Test func plansOfAVariedTreeSayWhatTheyAlwaysSaid() throws {
        let lines = try Self.sequence()
        let digest = ContentDigests.digest(lines.joined(separator: "\n"))
        // The sequence reaches what it means to: each kind of item, a failure, a narrowed variant, {hash} names resolved.
        let text = lines.joined(separator: "\n")
        for needle in [" create ", " up-to-date ", " rebuild ", " update ", " delete ", "failure site/lost/",
                       "site/hero/real-300.", "site/hero/a-100.", "caf\u{E9}", "site/a.marked.jpg"] {
            #expect(text.contains(needle), "the sequence never says \(needle)")
        }
        #expect(digest == Self.golden, "the plans changed; they were:\n\(text)")
    }

    /// Plans are deterministic: the same sequence in another folder says the same.
    @Test func theSequenceIsDeterministic() throws {
        let first = try Self.sequence()
        let second = try Self.sequence()
        #expect(first == second)
    }
}
