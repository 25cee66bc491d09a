import Foundation
import Testing
import TestSupport

/// Attack 37a's L1: "Nothing to do: 1 outputs up to date.", "No changes: 1 outputs up to date.",
/// "Up to date: 1 outputs match the manifest and the lock.": one output is said in the singular,
/// on the witness's path and on the full path alike.
@Suite(.ownThreads, .serialized) struct SingularCountRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test func oneOutputIsSaidInTheSingular() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "src/*.jpg", with: "src/landscape.jpg"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let expected = [["build"]: "Nothing to do: 1 output up to date.", ["plan"]: "No changes: 1 output up to date.",
                        ["check"]: "Up to date: 1 output matches the manifest and the lock."]
        for witness in [false, true] {
            if witness {
                #expect(try project.run(["build"]).status == 0)
                Thread.sleep(forTimeInterval: 1.2)   // past the racy margin: the witness answers
            }
            for (command, line) in expected {
                if !witness { try? FileManager.default.removeItem(at: project.url(".derive/derive/noop-witness")) }
                let result = try project.run(command)
                #expect(text(result.stdout) == line + "\n", "\(command) (witness: \(witness)): \(text(result.stdout))")
            }
        }
        // Two outputs stay plural.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "src/*.jpg", with: "src/orientation-{1,2}.jpg"))
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(text(try project.run(["check"]).stdout) == "Up to date: 2 outputs match the manifest and the lock.\n")
    }
}
