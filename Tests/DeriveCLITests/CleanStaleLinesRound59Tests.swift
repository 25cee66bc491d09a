import Foundation
import Testing
import TestSupport

/// Attack 59b's F1: after a restyle and a lost build state, `plan` and `build` proved the old
/// outputs Derive's by the lock this user's Derive last wrote, but `clean` called them unproven,
/// left them and removed `derive.lock`, their only record: every later build refused Derive's own
/// files as a user's. `clean` now takes the build's proof, and keeps the lock for files it leaves.
@Suite(.ownThreads) struct CleanStaleLinesRound59Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_64\", to: \"out/{name}.jpg\"}\n"

    /// Built, restyled, its state lost: under the same state home (`own`) or another (a second HOME).
    func restyledWithoutState(_ root: URL, home: String) throws -> (project: URL, environment: [String: String]) {
        let project = root.appendingPathComponent("p")
        try makeSampleProject(project, manifest: Self.manifest)
        let first = ["XDG_STATE_HOME": root.appendingPathComponent("home1").path]
        let built = try CLI.run(["build", "-q"], in: project, environment: first)
        #expect(built.status == 0, "\(said(built))")
        try Data(Self.manifest.replacingOccurrences(of: "w_64", with: "w_48").utf8).write(to: project.appendingPathComponent("derive.yaml"))
        try FileManager.default.removeItem(at: project.appendingPathComponent(".derive"))
        return (project, ["XDG_STATE_HOME": root.appendingPathComponent(home).path])
    }

    @Test func cleanRemovesWhatTheOwnLockProvesAsTheBuildWould() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (project, environment) = try restyledWithoutState(root, home: "home1")
        let plan = try CLI.run(["plan"], in: project, environment: environment)
        #expect(said(plan).contains("proven Derive's by the lock"), "\(said(plan))")
        let clean = try CLI.run(["clean"], in: project, environment: environment)
        #expect(clean.status == 0, "\(said(clean))")
        #expect(!FileManager.default.fileExists(atPath: project.appendingPathComponent("out/a.jpg").path), "\(said(clean))")
        #expect(!FileManager.default.fileExists(atPath: project.appendingPathComponent("derive.lock").path), "\(said(clean))")
    }

    @Test func aFileCleanLeavesKeepsTheLockAsItsRecord() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (project, environment) = try restyledWithoutState(root, home: "home2")
        let lock = try Data(contentsOf: project.appendingPathComponent("derive.lock"))
        let clean = try CLI.run(["clean"], in: project, environment: environment)
        #expect(clean.status == 1 && clean.stderr.contains("under another recipe") && clean.stderr.contains("derive.lock is kept as its record"), "\(said(clean))")
        #expect(FileManager.default.fileExists(atPath: project.appendingPathComponent("out/a.jpg").path))
        #expect((try? Data(contentsOf: project.appendingPathComponent("derive.lock"))) == lock, "\(said(clean))")
        // Back under the home whose Derive wrote that lock, the build proves and rebuilds its file.
        let build = try CLI.run(["build", "-q"], in: project, environment: ["XDG_STATE_HOME": root.appendingPathComponent("home1").path])
        #expect(build.status == 0, "\(said(build))")
    }
}
