import Foundation
import Testing
import TestSupport
import Builder
import Planner

/// Attack 46's M2, on the planner's two paths: a variant a narrower source would rename onto a
/// name another rule writes (`a-800.webp` for `w=960` of an 800 px source, beside a hero rule's
/// `{name}-800.webp`) is planned as written (`a-960.webp`). The edited-source path rebuilds such
/// a variant from its record as written while the name stays taken, and gives the full plan's
/// plan item by item after each edit (a source re-exported narrower and wider among them).
@Suite(.ownThreads, .serialized) struct NarrowedNameTakenPlanTests {
    static let manifest = """
    version: 1
    buckets:
      photos: {path: photos}
      site: {path: site}
    derivatives:
      - name: A
        from: photos/*.jpg
        process: image/resize,w_{w}/format,webp
        matrix: {w: [480, 960]}
        to: site/{name}-{w}.webp
      - name: B
        from: photos/*.jpg
        process: image/resize,w_800/format,webp
        to: site/{name}-800.webp
    index: site/index.json

    """

    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples")

    static func put(_ sample: String, at path: String, in project: Project) throws {
        try FileManager.default.createDirectory(atPath: project.path("photos"), withIntermediateDirectories: true)
        try Data(contentsOf: samples.appendingPathComponent(sample)).write(to: URL(fileURLWithPath: project.path(path)))
    }

    @Test func theEditedSourcePathAgreesWithTheFullPlan() throws {
        let project = try Project(Self.manifest)
        // a: 800 px (its w=960 would be a-800, rule B's); b: 1200 px; c: 300 px (c-300, no one else's).
        try Self.put("portrait.jpg", at: "photos/a.jpg", in: project)
        try Self.put("landscape.jpg", at: "photos/b.jpg", in: project)
        try Self.put("orientation-1.jpg", at: "photos/c.jpg", in: project)
        let first = try project.build()
        #expect(first.plan.errors.isEmpty, "\(first.plan.errors)")
        let outputs = first.plan.items.map(\.output).sorted()
        #expect(outputs == ["site/a-480.webp", "site/a-800.webp", "site/a-960.webp", "site/b-480.webp", "site/b-800.webp", "site/b-960.webp",
                            "site/c-300.webp", "site/c-800.webp"], "\(outputs)")
        project.settle()
        try project.build()
        // (edit, the path the incremental plan must take)
        let steps: [(String, String, Bool)] = [("orientation-2.jpg", "photos/c.jpg", true), ("landscape.jpg", "photos/a.jpg", true),
                                                ("portrait.jpg", "photos/a.jpg", false), ("orientation-1.jpg", "photos/c.jpg", true)]
        for (sample, path, edited) in steps {
            try Self.put(sample, at: path, in: project)
            project.settle()
            let session = try project.session()
            let fast = try session.plan()
            if edited { #expect(session.lastPlanPath == .editedSources(1), "\(path) as \(sample): \(session.lastPlanPath)") }
            let off = try project.session()
            off.incrementalPlans = false
            let full = try off.plan()
            let (x, y) = (IncrementalPlanEquivalenceTests.describe(fast), IncrementalPlanEquivalenceTests.describe(full))
            #expect(x == y, "\(path) as \(sample): \(zip(x, y).filter { $0 != $1 }.prefix(3))")
            #expect(full.errors.isEmpty, "\(full.errors)")
            try project.build()
            project.settle()
            #expect(try project.plan().work.isEmpty)
        }
        let names = project.snapshot().keys.filter { $0.hasPrefix("site/") && $0.hasSuffix(".webp") }.sorted()
        #expect(names == ["site/a-480.webp", "site/a-800.webp", "site/a-960.webp", "site/b-480.webp", "site/b-800.webp", "site/b-960.webp",
                          "site/c-300.webp", "site/c-800.webp"], "\(names)")
    }
}
