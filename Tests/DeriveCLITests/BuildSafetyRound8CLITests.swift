import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The eighth attack on build safety (issue 9), end to end through the binary: plan's errors
/// and failures (F4), clean with links (F5), a dangling `state:` link (F6).
@Suite(.ownThreads, .serialized) struct BuildSafetyRound8CLITests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static let subManifest = BuildSafetyRound7Tests.manifest(outputs: "out/sub", index: "out/sub/index.json")

    // MARK: F4: errors refuse the build, failures fail only their own outputs

    @Test func planSplitsErrorsFromInputFailuresAndBuildDoesWhatItSays() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.subManifest)
        try FileManager.default.createSymbolicLink(atPath: project.url("src/bad.jpg").path, withDestinationPath: "/etc/hostname")
        let json = try project.run(["plan", "--json"])
        #expect(json.status == 1, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        #expect((object?["errors"] as? [String])?.isEmpty == true, "an input failure is not a plan error: \(text(json.stdout))")
        let failures = object?["failures"] as? [[String: String]] ?? []
        #expect(failures.contains { $0["subject"] == "src/bad.jpg" && ($0["message"] ?? "").contains("symbolic link") }, "\(text(json.stdout))")
        let plan = try project.run(["plan"])
        #expect(plan.status == 1)
        #expect(text(plan.stdout).contains("1 failure (above): its outputs fail, a build builds everything else"), "\(text(plan.stdout))")
        #expect(!text(plan.stdout).contains("error"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 1)
        #expect(text(build.stdout).contains("built 5"), "\(text(build.stdout)) \(build.stderr)")
        // A real plan error: build refuses and builds nothing, and plan says so.
        try Data("USER".utf8).write(to: project.url("out/sub/landscape.jpg"))
        let blocked = try project.run(["plan"])
        #expect(blocked.status == 1)
        #expect(text(blocked.stdout).contains("1 error and 1 failure (above) to fix: a build refuses to start and builds nothing"), "\(text(blocked.stdout))")
        let blockedJSON = try JSONSerialization.jsonObject(with: try project.run(["plan", "--json"]).stdout) as? [String: Any]
        #expect((blockedJSON?["errors"] as? [String])?.count == 1, "\(String(describing: blockedJSON))")
    }

    // MARK: F5: clean with an output folder or the index replaced by a link

    @Test func cleanNamesOutputsBehindALinkedFolderKeepsTheLockAndExitsOne() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.subManifest)
        #expect(try project.run(["build", "-q"]).status == 0)
        let victim = project.url("victim")
        #expect(rename(project.url("out/sub").path, victim.path) == 0)
        try FileManager.default.createSymbolicLink(atPath: project.url("out/sub").path, withDestinationPath: "../victim")
        let before = try FileManager.default.contentsOfDirectory(atPath: victim.path).sorted()
        let clean = try project.run(["clean"])
        #expect(clean.status == 1, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(clean.stderr.contains("out/sub/landscape.jpg leads through a symbolic link (out/sub)"), "\(clean.stderr)")
        #expect(clean.stderr.contains("out/sub/index.json leads through a symbolic link"), "\(clean.stderr)")
        #expect(project.exists("derive.lock"), "the lock is the outputs' only record")
        #expect(try FileManager.default.contentsOfDirectory(atPath: victim.path).sorted() == before)
    }

    @Test func cleanKeepsAndNamesALinkAtTheIndexPathAndFinishes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.subManifest)
        #expect(try project.run(["build", "-q"]).status == 0)
        try Data("{}".utf8).write(to: project.url("elsewhere.json"))
        try FileManager.default.removeItem(at: project.url("out/sub/index.json"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/sub/index.json").path, withDestinationPath: "../../elsewhere.json")
        let plan = try project.run(["plan"])
        #expect(plan.stderr.contains("index.json is a symbolic link"), "\(plan.stderr)")
        #expect(!plan.stderr.contains("--overwrite\n") && !plan.stderr.contains("or pass --overwrite"), "--overwrite does not help: \(plan.stderr)")
        let overwrite = try project.run(["build", "--overwrite"])
        #expect(overwrite.status == 1)
        #expect(overwrite.stderr.contains("out/sub/index.json is a symbolic link") && !overwrite.stderr.contains("or pass --overwrite"), "\(overwrite.stderr)")
        let check = try project.run(["check"])
        #expect(text(check.stdout).contains("out/sub/index.json is a symbolic link"), "\(text(check.stdout))")
        let clean = try project.run(["clean"])
        // The user's link is not Derive's file: kept and named, and it does not fail clean.
        #expect(clean.status == 0, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(!clean.stderr.contains("clean failed"), "\(clean.stderr)")
        #expect(clean.stderr.contains("out/sub/index.json is not the file Derive wrote as the index (a symbolic link)"), "\(clean.stderr)")
        #expect(!project.exists("out/sub/landscape.jpg"), "the rest is removed")
        var info = stat()
        #expect(lstat(project.url("out/sub/index.json").path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "the link is kept")
        #expect(project.exists("elsewhere.json"))
    }

    // MARK: F6: `state:` as a link to nothing

    @Test func aDanglingStateLinkIsAValidationErrorNotACocoaError() throws {
        let project = try Project()
        defer { project.remove() }
        try FileManager.default.createSymbolicLink(atPath: project.url("stlink").path, withDestinationPath: "nowhere/st")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true) + "state: stlink\n")
        for command in [["validate"], ["plan"], ["build"]] {
            let result = try project.run(command)
            #expect(result.status != 0, "\(command): \(text(result.stdout))")
            let all = text(result.stdout) + result.stderr
            #expect(all.contains("stlink is a symbolic link to nowhere/st, which does not exist"), "\(command): \(all)")
            #expect(!all.contains("NSCocoaErrorDomain"), "\(command): \(all)")
        }
    }

    /// Round 10: a state folder the user made a symbolic link to a real folder (another disk, say)
    /// works like the default `.derive` as a link: build, check, clean, the state in the real folder.
    @Test func aStateFolderThatIsALinkToAFolderWorks() throws {
        let project = try Project()
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("real-state"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: project.url("stlink").path, withDestinationPath: "real-state")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true) + "state: stlink\n")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!build.stderr.contains("NSCocoaErrorDomain"), "\(build.stderr)")
        #expect(project.exists("real-state/state.sqlite"))
        #expect(try project.run(["check"]).status == 0)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(text(clean.stdout)) \(clean.stderr)")
        var info = stat()
        #expect(lstat(project.url("stlink").path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "the user's link is kept")
    }
}
