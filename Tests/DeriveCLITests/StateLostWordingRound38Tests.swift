import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 37b's finding 12: after the state folder was lost mid-restyle, plan and build named
/// what Derive had just rendered "exists and was not written by Derive" (it cannot prove it
/// wrote it: its records are gone), listed files the lock this user's Derive wrote proves as
/// `+ … create` (they are rebuilt over Derive's bytes), and said "adopted from derive.lock
/// unverified" without saying the lock is Derive's own record.
@Suite(.ownThreads, .serialized) struct StateLostWordingRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func said(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    /// The `derive: error: …` lines of a run.
    func errors(_ result: CLI.Result) -> [String] {
        result.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("derive: error: ") && !$0.contains("nothing was built") }
    }

    /// A restyle (width 32 → 24) whose build rendered out/landscape.jpg and then lost its state
    /// folder: the lock is the one this user's Derive last wrote (width 32's lines).
    func stateLostMidRestyle() throws -> (project: Project, rendered: Data) {
        let project = try Project(index: false)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 24))
        #expect(try project.run(["build", "-q"]).status == 0)
        let rendered = try Data(contentsOf: project.url("out/landscape.jpg"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 32))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 24))
        try rendered.write(to: project.url("out/landscape.jpg"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        return (project, rendered)
    }

    @Test func aRenderWhoseStateWasLostIsNamedAsUnprovenNotAsAUsersFile() throws {
        let (project, rendered) = try stateLostMidRestyle()
        defer { project.remove() }
        let plan = try project.run(["plan"])
        #expect(plan.status != 0, "\(said(plan))")
        #expect(!said(plan).contains("out/landscape.jpg exists and was not written by Derive"), "\(said(plan))")
        #expect(said(plan).contains("out/landscape.jpg exists and Derive cannot prove it wrote it: its build state is gone"), "\(said(plan))")
        #expect(said(plan).contains("derive build --verify renders it again and adopts it if it holds exactly what rule 'thumbs' renders"), "\(said(plan))")

        let build = try project.run(["build"])
        #expect(build.status == 1, "\(said(build))")
        #expect(errors(build) == errors(plan), "plan and build disagree:\nplan: \(errors(plan))\nbuild: \(errors(build))")
        #expect(try Data(contentsOf: project.url("out/landscape.jpg")) == rendered, "a refused build changed the file")

        // What the message says holds: --verify adopts the identical bytes, and all is up to date.
        let verify = try project.run(["build", "--verify"])
        #expect(verify.status == 0, "\(said(verify))")
        #expect(try Data(contentsOf: project.url("out/landscape.jpg")) == rendered)
        #expect(try project.run(["check"]).status == 0)
    }

    @Test func aReplacementTheLockProvesIsARebuild() throws {
        let (project, _) = try stateLostMidRestyle()
        defer { project.remove() }
        try FileManager.default.removeItem(at: project.url("out/landscape.jpg"))   // no refusal: only the proven files
        let plan = try project.run(["plan"])
        let lines = text(plan.stdout).split(separator: "\n").map(String.init)
        for name in project.outputs where name != "landscape.jpg" {
            let line = lines.first { $0.contains("out/\(name)  ") }
            #expect(line?.hasPrefix("~ out/\(name)  rebuild: ") == true, "\(line ?? text(plan.stdout))")
            #expect(line?.contains("the lock this user's Derive last wrote") == true, "\(line ?? "")")
        }
        #expect(lines.contains { $0.hasPrefix("+ out/landscape.jpg  create") }, "\(text(plan.stdout))")
        let json = try project.run(["plan", "--json"])
        let summary = (try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])?["summary"] as? [String: Any]
        #expect(summary?["rebuild"] as? Int == 4 && summary?["create"] as? Int == 1, "\(text(json.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(text(build.stdout).contains("built 5"), "\(said(build))")
        #expect(try project.run(["check"]).status == 0)
    }

    /// Outputs adopted from the lock this user's Derive last wrote: plan and build say one line,
    /// naming the lock for what it is.
    @Test func planAndBuildSayTheAdoptionInOneLineNamingTheLocksProvenance() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        func adoptionLine(_ result: CLI.Result) -> String? {
            text(result.stdout).split(separator: "\n").map(String.init).first { $0.contains("adopted from derive.lock") && !$0.hasPrefix("built") }
        }
        let plan = try project.run(["plan"])
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(adoptionLine(plan) != nil && adoptionLine(plan) == adoptionLine(build), "plan: \(said(plan))\nbuild: \(said(build))")
        #expect(adoptionLine(plan)?.contains("derive.lock is the lock this user's Derive last wrote for this state") == true, "\(said(plan))")
        // The control: a copy elsewhere (a fresh clone) is the lock's word alone.
        let copy = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: copy) }
        for name in ["src", "out", "derive.yaml"] {
            try FileManager.default.copyItem(at: project.url(name), to: copy.appendingPathComponent(name))
        }
        // The lock as this build wrote it (its lines adopted: no longer Derive's own record anyway).
        try FileManager.default.copyItem(at: project.url("derive.lock"), to: copy.appendingPathComponent("derive.lock"))
        let clone = try CLI.run(["plan"], in: copy)
        #expect(adoptionLine(clone)?.contains("last wrote") == false, "\(said(clone))")
    }
}
