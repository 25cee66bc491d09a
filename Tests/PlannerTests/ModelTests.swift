import Foundation
import Testing
import TestSupport
import Builder
import Manifest
import Planner
import ProcessLanguage

/// Fails the renders whose source starts with "BROKEN", like a corrupt image, and every render
/// while `failing` is set: a build cut short.
final class FlakyRenderer: DerivativeRenderer, @unchecked Sendable {
    var failing = false
    func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered {
        if failing { throw DiskError("killed") }
        return try FakeRenderer().render(source, pipeline, bucketPath: bucketPath)
    }
    func memoryEstimate(_ source: Data) -> Int { 1 << 20 }
}

/// Model-based: random sequences of manifest edits, bucket moves, rule removals and renames,
/// source edits, interrupted builds and user files dropped into buckets. After every step no
/// file the user wrote has changed or disappeared, and `check` agrees with a from-scratch plan.
@Suite(.ownThreads, .serialized) struct ModelTests {
    struct Model {
        var width = 200
        var sitePath = "outA"
        var secondRule = true
        var ruleName = "gallery"

        var yaml: String {
            var text = """
            version: 1
            buckets:
              photos:
                path: photos
              site:
                path: \(sitePath)
            styles:
              thumb: image/resize,w_\(width)
            derivatives:
              - name: \(ruleName)
                from: photos/**/*.jpg
                styles: [thumb]
                to: site/{dir}/{name}.{style}.{ext}

            """
            if secondRule {
                text += """
                  - name: small
                    from: photos/*.jpg
                    process: image/resize,w_50
                    to: site/small/{name}.jpg

                """
            }
            return text
        }
    }

    @Test(arguments: [1, 2, 3, 4]) func randomHistoriesNeverTouchUserFiles(seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        var model = Model()
        let renderer = FlakyRenderer()
        let project = try Project(model.yaml, files: ["photos/a.jpg": "A", "photos/trip/b.jpg": "B"])
        var userFiles: [String: String] = ["photos/a.jpg": "A", "photos/trip/b.jpg": "B", "derive.yaml": model.yaml]
        let names = ["a", "b", "c", "trip/d"]
        for step in 0..<10 {
            renderer.failing = false
            switch random.next() % 8 {
            case 0: model.width = [200, 240, 320].randomElement(using: &random)!
            case 1: model.sitePath = ["outA", "outB", "outC"].randomElement(using: &random)!
            case 2: model.secondRule.toggle()
            case 3: model.ruleName = ["gallery", "pictures"].randomElement(using: &random)!
            case 4:
                let path = "photos/\(names.randomElement(using: &random)!).jpg"
                let text = "S\(random.next() % 1000)"
                try project.write(path, text)
                userFiles[path] = text
            case 5:
                // A user file dropped into an output folder, sometimes right where an output goes.
                let folder = ["outA", "outB", "outC"].randomElement(using: &random)!
                let name = ["\(names.randomElement(using: &random)!).thumb.jpg", "small/a.jpg", "notes.txt"].randomElement(using: &random)!
                let path = "\(folder)/\(name)"
                if !project.exists(path) {
                    try project.write(path, "user \(step)")
                    userFiles[path] = "user \(step)"
                }
            case 6:
                renderer.failing = true   // the build is cut short: every render fails
                try project.write("\(model.sitePath)/.x.jpg.4194302.1.derive-tmp", "half")
            default:
                if let victim = userFiles.keys.filter({ $0.hasPrefix("photos/") }).sorted().first, random.next() % 2 == 0 {
                    try project.remove(victim)
                    userFiles[victim] = nil
                }
            }
            try project.write("derive.yaml", model.yaml)
            userFiles["derive.yaml"] = model.yaml
            _ = try project.session().build(options: BuildOptions(jobs: 2, quiet: true)) { renderer }

            for (path, text) in userFiles {
                #expect(project.read(path) == text, "seed \(seed) step \(step): \(path) changed")
            }
            let plan = try project.plan()
            let clean = plan.errors.isEmpty && plan.failures.isEmpty && !plan.hasChanges
            let check = try project.check()
            #expect(check.problems.isEmpty == clean, "seed \(seed) step \(step): check \(check.problems) vs plan \(plan.summary) \(plan.errors)")
        }
    }
}

/// A small deterministic generator, so a failing history can be replayed from its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
