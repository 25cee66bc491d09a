import Foundation
import Testing
import TestSupport

/// Attack 36's F6: for an orphan edited by hand, `plan --json` said `"kind": "delete"` and counted
/// it in `summary.delete` while the build keeps the file and writes a `left` line for it. Each
/// deletion's kind says what the build then does: `delete` (the file goes), `dropRecord` (the file
/// was already gone), `left` (changed since Derive wrote it: left, with a `left` line), `keep`.
@Suite(.ownThreads, .serialized) struct PlanMatchesBuildRound36Tests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test func everyDeletionKindIsWhatTheBuildDoes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Data("mine".utf8).write(to: project.url("out/landscape.jpg"))   // edited by hand
        try FileManager.default.removeItem(at: project.url("out/cmyk.jpg"))   // already gone
        // out/orientation-3.jpg is Derive's as written: really deleted.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "from: src/*.jpg", with: "from: src/orientation-{1,2}.jpg"))
        let before = try PathBytes(project, ["out/landscape.jpg", "out/orientation-3.jpg"])

        let planned = try project.run(["plan", "--json"])
        let json = try JSONSerialization.jsonObject(with: planned.stdout) as? [String: Any]
        let items = (json?["items"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String != "up-to-date" }
        var kinds: [String: String] = [:]
        for item in items { kinds[item["output"] as? String ?? ""] = item["kind"] as? String }
        #expect(kinds == ["out/landscape.jpg": "left", "out/cmyk.jpg": "dropRecord", "out/orientation-3.jpg": "delete"], "\(items)")
        let summary = json?["summary"] as? [String: Any] ?? [:]
        #expect(summary["delete"] as? Int == 1 && summary["dropRecord"] as? Int == 1 && summary["left"] as? Int == 1, "\(summary)")
        let text = String(decoding: try project.run(["plan"]).stdout, as: UTF8.self)
        #expect(text.contains("= out/landscape.jpg  left: "), "\(text)")
        #expect(text.contains("1 to delete, 1 record to drop (file already gone), 1 left in place"), "\(text)")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        let lock = (try? String(contentsOf: project.url("derive.lock"), encoding: .utf8)) ?? ""
        for (output, kind) in kinds {
            let there = project.exists(output)
            switch kind {
            case "delete": #expect(!there, "\(output): planned as deleted, still there")
            case "dropRecord": #expect(!there && !lock.contains(output), "\(output): \(lock)")
            case "left":
                #expect(there && (try? Data(contentsOf: project.url(output))) == before.bytes[output], "\(output): planned as left, not kept as it was")
                #expect(lock.contains("\"\(output)\""), "\(output): planned as left, no left line: \(lock)")
            default: Issue.record("\(output): unexpected kind \(kind)")
            }
        }
        #expect(String(decoding: build.stdout, as: UTF8.self).contains("deleted 1"), "\(String(decoding: build.stdout, as: UTF8.self))")
    }

    struct PathBytes {
        var bytes: [String: Data] = [:]
        init(_ project: Project, _ paths: [String]) throws {
            for path in paths { bytes[path] = try Data(contentsOf: project.url(path)) }
        }
    }
}
