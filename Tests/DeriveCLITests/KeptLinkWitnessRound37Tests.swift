import Foundation
import Testing
import TestSupport

/// Attack 37a's M1: once the no-op witness was saved, `build`, `plan` and `check` answered from
/// it and no longer named the old outputs kept behind a symbolic link (`= out/t/a.jpg  kept: …
/// leads through a symbolic link …`), which the full plan names every time (README). The witness
/// keeps those links (`@` lines); its answer now names the same outputs in the same words. Each
/// command is run on the witness's path and, with the witness removed, on the full path, and
/// the two must print the same text and exit the same way.
@Suite(.ownThreads, .serialized) struct KeptLinkWitnessRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func removeWitness(_ project: Project) throws {
        let state = project.url(".derive/derive").path
        for name in try FileManager.default.contentsOfDirectory(atPath: state) where name.hasPrefix("noop-witness") {
            try FileManager.default.removeItem(atPath: state + "/" + name)
        }
    }

    @Test func theWitnessNamesOutputsKeptBehindALinkAsTheFullPlanDoes() throws {
        let project = try LinkedOrphanSettlesTests().linkedOrphans()
        defer { project.remove() }
        // Settled: the first build names the kept outputs, the second saves a witness that holds.
        #expect(try project.run(["build"]).status == 0)
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try project.run(["build"]).status == 0)
        Thread.sleep(forTimeInterval: 1.2)   // past the racy margin: the witness answers

        let commands = [["plan"], ["plan", "--detailed-exitcode"], ["check"], ["build"]]
        var fast: [CLI.Result] = []
        for command in commands { fast.append(try project.run(command)) }
        #expect(FileManager.default.fileExists(atPath: project.url(".derive/derive/noop-witness").path), "no witness was saved")
        for (command, answer) in zip(commands, fast) {
            try removeWitness(project)
            let full = try project.run(command)
            #expect(text(answer.stdout).contains("out/t/cmyk.jpg  kept: "), "\(command): the witness's answer does not name it: \(text(answer.stdout))")
            #expect(text(answer.stdout) == text(full.stdout), "\(command): the witness's answer differs from the full plan's:\n\(text(answer.stdout))\n---\n\(text(full.stdout))")
            #expect(answer.stderr == full.stderr && answer.status == full.status, "\(command): \(answer.stderr) / \(full.stderr)")
        }
    }
}
