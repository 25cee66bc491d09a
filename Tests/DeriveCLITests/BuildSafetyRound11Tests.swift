import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The eleventh round on build safety (issue 9, attack 10's N2, N5, F7a, F7f and the `state:`
/// link cases), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound11Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// Adds a lock line per (path, format) for the file at that path, with its real digest.
    func injectLock(_ project: Project, _ entries: [(path: String, format: String)]) throws {
        let lock = project.url("derive.lock")
        var lines = try String(contentsOf: lock, encoding: .utf8).split(separator: "\n").map(String.init)
        for (path, format) in entries {
            let data = try Data(contentsOf: project.url(path))
            let sha = Process()
            sha.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            sha.arguments = [project.url(path).path]
            let pipe = Pipe(); sha.standardOutput = pipe
            try sha.run(); sha.waitUntilExit()
            let hex = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
            lines.append(#"{"path":"\#(path)","actionKey":"00","digest":"\#(hex)","width":1,"height":1,"bytes":\#(data.count),"format":"\#(format)"}"#)
        }
        let body = lines.dropFirst().sorted()
        try Data(([lines[0]] + body).joined(separator: "\n").appending("\n").utf8).write(to: lock)
    }

    // MARK: N2: a lock line's extension must name its format
    // (Round 13, N1: the format a rule writes today no longer limits it, since a style or a matrix
    // value since dropped may have written any format; `LockOwnershipRound13Tests`.)

    @Test func aLockLineWhoseExtensionDoesNotNameItsFormatIsKept() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone: the lock decides
        let users = [("out/user.png", "jpg"), ("out/user.webp", "png"), ("out/user.PNG", "png"), ("out/user.txt", "jpg")]
        for (path, _) in users { try Data("userbytes \(path)\n".utf8).write(to: project.url(path)) }
        try injectLock(project, users)
        let plan = try project.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        // Without a state, no line authorises a deletion (attack 16's H2): each is named as left, exit 0.
        #expect(plan.status == 0, "\(planText)")
        for (path, _) in users { #expect(planText.contains("= \(path)  left: known only from derive.lock"), "\(planText)") }
        #expect(!planText.contains("- out/user"), "\(planText)")
        let build = try project.run(["build"])
        #expect(!text(build.stdout).contains("removed") && !text(build.stdout).contains("deleted"), "\(text(build.stdout))")
        for (path, _) in users { #expect(project.exists(path), "\(path) was deleted by a lock line its rule cannot have written") }
        // clean agrees: the lines name nothing it may remove.
        try injectLock(project, users)
        try? FileManager.default.removeItem(at: project.url(".derive"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0 && (text(clean.stdout) + clean.stderr).contains("out/user.png  left: known only from derive.lock"), "\(text(clean.stdout)) \(clean.stderr)")
        for (path, _) in users { #expect(project.exists(path), "clean removed \(path)") }
    }
}

extension BuildSafetyRound11Tests {
    // MARK: N5: plan counts a non-image or cut source as a failure, as build does

    @Test func planCountsNonImageAndTruncatedSourcesAsBuildDoes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "src/*.jpg", with: "src/*.{jpg,png,gif}"))
        try Data("hello\n".utf8).write(to: project.url("src/txt.jpg"))
        try Data(try Data(contentsOf: project.url("src/landscape.jpg")).prefix(3000)).write(to: project.url("src/trunc.jpg"))
        let png = try Data(contentsOf: CLI.samples.appendingPathComponent("logo-alpha.png"))
        try Data(png.prefix(png.count / 2)).write(to: project.url("src/trunc.png"))
        let gif = try Data(contentsOf: CLI.samples.appendingPathComponent("spinner.gif"))
        try Data(gif.prefix(gif.count / 2)).write(to: project.url("src/trunc.gif"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("logo-alpha.png"), to: project.url("src/whole.png"))
        #expect(mkfifo(project.url("src/fifo.jpg").path, 0o644) == 0)
        let bad = ["src/txt.jpg", "src/trunc.jpg", "src/trunc.png", "src/trunc.gif", "src/fifo.jpg"]
        let plan = try project.run(["plan"])
        #expect(plan.status == 1)
        #expect(text(plan.stdout).contains("5 failures (above)"), "\(text(plan.stdout)) \(plan.stderr)")
        #expect(text(plan.stdout).contains("6 to create"), "the six good sources (whole.png too) are planned: \(text(plan.stdout))")
        for subject in bad { #expect(plan.stderr.contains("derive: failure: \(subject): "), "\(subject): \(plan.stderr)") }
        #expect(!plan.stderr.contains("derive: error:"), "plan's failures refuse nothing: \(plan.stderr)")
        #expect(plan.stderr.contains("src/txt.jpg: the source is not an image in a supported format"), "\(plan.stderr)")
        #expect(plan.stderr.contains("src/trunc.jpg: the source image is corrupt or truncated: the JPEG has no end-of-image marker"), "\(plan.stderr)")
        #expect(plan.stderr.contains("src/trunc.png: the source image is corrupt or truncated: the PNG's"), "\(plan.stderr)")
        let json = try JSONSerialization.jsonObject(with: try project.run(["plan", "--json"]).stdout) as? [String: Any]
        let failures = (json?["failures"] as? [[String: String]] ?? []).compactMap { $0["subject"] }
        #expect(Set(failures) == Set(bad), "\(failures)")
        let build = try project.run(["build"])
        #expect(build.status == 1)
        #expect(text(build.stdout).contains("built 6") && text(build.stdout).contains("5 failed"), "\(text(build.stdout)) \(build.stderr)")
        // The second plan reads the recorded digests: the cut files are still failures.
        let again = try project.run(["plan"])
        #expect(text(again.stdout).contains("5 failures (above)"), "\(text(again.stdout)) \(again.stderr)")
    }
}

extension BuildSafetyRound11Tests {
    // MARK: F7f: a refused build moves no other manifest's state aside

    @Test func aRefusedBuildLeavesAnotherManifestsStateWhereItIs() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        func manifest(_ out: String) -> String {
            Project.manifest(outPath: out, index: false) + "state: st\nlock: shared.lock\n"
        }
        try project.write("m1.yaml", manifest("out-m1"))
        #expect(try project.run(["build", "-q", "m1.yaml"]).status == 0)
        // m2 arrives after m1 built (a shared state folder is a validation error of both).
        try project.write("m2.yaml", manifest("out-m2"))
        let database = project.url("st/state.sqlite")
        let before = try Data(contentsOf: database)
        let inode = try FileManager.default.attributesOfItem(atPath: database.path)[.systemFileNumber] as? Int
        // m2 shares m1's state folder and lock: refused at validation, it writes nothing.
        let refused = try project.run(["build", "m2.yaml"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("two manifests may not share a state folder"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("moved it to"), "\(refused.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: project.url("st").path)
        #expect(!names.contains { $0.contains("foreign") }, "a refused build moved m1's state aside: \(names)")
        #expect(try Data(contentsOf: database) == before)
        #expect(try FileManager.default.attributesOfItem(atPath: database.path)[.systemFileNumber] as? Int == inode)
        #expect(!project.exists("out-m2/landscape.jpg"))
        // With m2 gone, m1 still finds its own state: nothing to do, nothing moved.
        try FileManager.default.removeItem(at: project.url("m2.yaml"))
        let again = try project.run(["build", "m1.yaml"])
        #expect(again.status == 0)
        #expect(text(again.stdout).contains("Nothing to do"), "\(text(again.stdout)) \(again.stderr)")
        #expect(try project.run(["check", "m1.yaml"]).status == 0)
    }
}

extension BuildSafetyRound11Tests {
    // MARK: `state:` naming a link to a file, or a loop of links

    @Test(arguments: ["linkToFile", "file", "loop"]) func aStateThatCannotBeAFolderFailsValidateSayingWhy(_ kind: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false) + "state: st\n")
        switch kind {
        case "linkToFile": try FileManager.default.createSymbolicLink(atPath: project.url("st").path, withDestinationPath: "derive.yaml")
        case "file": try project.write("st", "mine\n")
        default: try FileManager.default.createSymbolicLink(atPath: project.url("st").path, withDestinationPath: "st")
        }
        let validate = try project.run(["validate"])
        #expect(validate.status != 0, "\(text(validate.stdout)) \(validate.stderr)")
        let said = text(validate.stdout) + validate.stderr
        switch kind {
        case "linkToFile": #expect(said.contains("the state folder st is not a folder: it is a symbolic link to derive.yaml, which is a file"), "\(said)")
        case "file": #expect(said.contains("the state folder st is not a folder: it is a file"), "\(said)")
        default:
            #expect(said.contains("st is a symbolic link to st, which leads back to itself (a loop of links)"), "\(said)")
            #expect(!said.contains("does not exist"), "\(said)")
        }
        for command in ["plan", "build", "clean"] {
            let run = try project.run([command])
            #expect(run.status != 0, "\(command): \(text(run.stdout))")
            #expect(!run.stderr.contains("NSCocoaErrorDomain"), "\(command): \(run.stderr)")
        }
        #expect(!project.exists("out/landscape.jpg"))
        if kind == "file" { #expect(try String(contentsOf: project.url("st"), encoding: .utf8) == "mine\n") }
        if kind == "linkToFile" { #expect(try String(contentsOf: project.url("derive.yaml"), encoding: .utf8).hasPrefix("version: 1")) }
    }
}

extension BuildSafetyRound11Tests {
    // MARK: F7a: a bucket's old folder now a link: the old copies and old index are named as kept

    /// Builds into out/sub (index out/sub/index.json), moves the bucket to out2, then replaces
    /// `out` by a link to a folder outside the project holding what was there.
    func movedBucketWithOldFolderLinked() throws -> (Project, URL) {
        let project = try Project(index: false)
        try project.write("derive.yaml", BuildSafetyRound7Tests.manifest(outputs: "out/sub", index: "out/sub/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", BuildSafetyRound7Tests.manifest(outputs: "out/sub", index: "out/sub/index.json")
            .replacingOccurrences(of: "out: {path: out}", with: "out: {path: out2}"))
        let victim = project.root.deletingLastPathComponent().appendingPathComponent("victim-\(UUID().uuidString)")
        #expect(rename(project.url("out").path, victim.path) == 0)
        try FileManager.default.createSymbolicLink(atPath: project.url("out").path, withDestinationPath: victim.path)
        return (project, victim)
    }

    @Test func planAndBuildNameOldCopiesAndTheOldIndexBehindALinkedOldFolder() throws {
        let (project, victim) = try movedBucketWithOldFolderLinked()
        defer { project.remove(); try? FileManager.default.removeItem(at: victim) }
        let before = try treeContents(victim)
        #expect(before.count == 6, "\(before.keys)")
        let plan = try project.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(planText.contains("the old copy out/sub/landscape.jpg leads through a symbolic link (out), which Derive does not follow; it is kept"), "\(planText)")
        #expect(planText.contains("out/sub/index.json") && planText.contains("Derive's old index leads through a symbolic link (out)"), "\(planText)")
        let build = try project.run(["build"])
        let said = text(build.stdout) + build.stderr
        for name in project.outputs {
            #expect(said.contains("out/sub/\(name) leads through a symbolic link (out), which Derive does not follow; left in place"), "\(name): \(said)")
        }
        #expect(said.contains("out/sub/index.json (Derive's old index) leads through a symbolic link (out)"), "\(said)")
        #expect(try treeContents(victim) == before, "the folder behind the link changed")
        #expect(project.exists("out2/sub/landscape.jpg"))
    }

    @Test func cleanNamesRecordedOutputsBehindALinkedOldFolder() throws {
        let (project, victim) = try movedBucketWithOldFolderLinked()
        defer { project.remove(); try? FileManager.default.removeItem(at: victim) }
        let before = try treeContents(victim)
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 1, "\(said)")
        for name in project.outputs {
            #expect(said.contains("out/sub/\(name) leads through a symbolic link (out), which Derive does not follow"), "\(name): \(said)")
        }
        #expect(said.contains("out/sub/index.json leads through a symbolic link (out)"), "\(said)")
        #expect(try treeContents(victim) == before)
    }
}
