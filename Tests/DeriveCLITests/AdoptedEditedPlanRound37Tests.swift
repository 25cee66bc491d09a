import Foundation
import Testing
import TestSupport

/// Attack 37a's M3: a project copied without its state and outside git (a tarball, rsync) adopts
/// its outputs from derive.lock ("unverified"); after one photo is edited, `plan` exited 0 with
/// `~ out/a.jpg rebuild: …` and no errors, while `build` refused the file ("exists and was not
/// written by Derive … cannot be proven Derive's") and built nothing. What was built from a
/// source that changed since cannot be rendered again, so no render can prove the file: plan
/// decides it as the build does (the same function, `Planner.adoptedRecipe`), and says the
/// error with its fix. A plan with errors builds nothing, as for any user's file at an output path.
@Suite(.ownThreads, .serialized) struct AdoptedEditedPlanRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func said(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    /// The `derive: error: …` lines of a run.
    func errors(_ result: CLI.Result) -> [String] {
        result.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("derive: error: ") && !$0.contains("nothing was built") }
    }

    @Test func planSaysTheRefusalTheBuildMakes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))   // a copy without its state
        let adopt = try project.run(["build"])
        #expect(adopt.status == 0 && text(adopt.stdout).contains("adopted 5 from derive.lock"), "\(said(adopt))")
        let before = try Data(contentsOf: project.url("out/landscape.jpg"))
        // The user edits one photo.
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: project.url("src/landscape.jpg"))

        let plan = try project.run(["plan"])
        #expect(plan.status != 0, "plan says the build will rebuild it: \(said(plan))")
        #expect(said(plan).contains("out/landscape.jpg exists and was not written by Derive") && said(plan).contains("move it or pass --overwrite"),
                "\(said(plan))")
        let json = try project.run(["plan", "--json"])
        let errorsInJSON = (try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])?["errors"] as? [Any] ?? []
        #expect(errorsInJSON.count == 1, "\(text(json.stdout))")
        let check = try project.run(["check"])
        #expect(check.status != 0, "\(said(check))")

        let build = try project.run(["build"])
        #expect(build.status != 0, "\(said(build))")
        #expect(errors(build) == errors(plan), "plan and build disagree:\nplan: \(errors(plan))\nbuild: \(errors(build))")
        #expect(try Data(contentsOf: project.url("out/landscape.jpg")) == before, "the user's file was replaced")

        // The fix the message gives: --overwrite renders over it.
        let overwrite = try project.run(["build", "--overwrite"])
        #expect(overwrite.status == 0, "\(said(overwrite))")
        #expect(try Data(contentsOf: project.url("out/landscape.jpg")) != before)
    }
}
