import Foundation
import Testing
import TestSupport

/// Attack round 25's build L9: `{ext}` of an `image/info` (or `average-hue`) rule was the
/// source's extension, so the JSON answer went to `out/a.jpg` while the lock said
/// `"format":"json"`. README: `{ext}` is the output format's extension; an answer's is `json`.
@Suite(.ownThreads) struct AnswerExtensionRound25Tests {
    @Test(arguments: ["image/info", "image/average-hue", "image/resize,w_50/info"])
    func anAnswersExtIsJSON(_ process: String) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data("""
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: i
            from: src/*.jpg
            process: \(process)
            to: out/{name}.{ext}
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("out").path) == ["a.json"])
        let answer = try Data(contentsOf: folder.appendingPathComponent("out/a.json"))
        #expect((try? JSONSerialization.jsonObject(with: answer)) != nil, "\(text(answer))")
        // The plan agrees with what was built: nothing to do.
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 0 && text(plan.stdout).contains("No changes"), "\(text(plan.stdout)) \(plan.stderr)")
    }
}
