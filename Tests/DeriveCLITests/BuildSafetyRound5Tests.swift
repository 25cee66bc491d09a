import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The fifth attack on build safety (issue 9), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound5Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    // MARK: 1: a copy whose every output needs re-rendering never writes the original's files

    func copyRestyled(index: Bool) throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let project = try Project(index: index, outPath: "../shared")
        let original = outer.appendingPathComponent("proj")
        try FileManager.default.moveItem(at: project.root, to: original)
        #expect(try CLI.run(["build", "-q"], in: original).status == 0)
        let shared = outer.appendingPathComponent("shared")
        let before = try contents(shared)
        let copy = outer.appendingPathComponent("copy")
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = ["-a", original.path, copy.path]
        try cp.run(); cp.waitUntilExit()
        // Every output of the copy now needs re-rendering: each would be a "create (replaces …)".
        try Data(Project.manifest(outPath: "../shared", index: index, width: 40).utf8).write(to: copy.appendingPathComponent("derive.yaml"))
        let claimed = "shared/landscape.jpg is an output of \(original.path)/derive.yaml"
        let plan = try CLI.run(["plan", "--detailed-exitcode"], in: copy)
        #expect(plan.status == 1, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(plan.stderr.contains(claimed), "\(plan.stderr)")
        let build = try CLI.run(["build", "-q"], in: copy)
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains(claimed), "\(build.stderr)")
        #expect(try contents(shared) == before, "the copy wrote over the original's files")
        // Twice: after the build moved the original's state aside, the same refusal.
        #expect(try CLI.run(["build", "-q"], in: copy).status == 1)
        #expect(try contents(shared) == before)
        let check = try CLI.run(["check"], in: original)
        #expect(check.status == 0, "\(text(check.stdout))")
    }

    @Test func aRestyledCopyWithAnIndexNeverWritesTheOriginalsOutputs() throws { try copyRestyled(index: true) }
    @Test func aRestyledCopyWithoutAnIndexNeverWritesTheOriginalsOutputs() throws { try copyRestyled(index: false) }

    // MARK: 2: lock entries are untrusted

    func injectLock(_ project: Project, entries: [(path: String, file: URL)]) throws {
        let lock = project.url("derive.lock")
        var lines = try String(contentsOf: lock, encoding: .utf8).split(separator: "\n").map(String.init)
        for (path, file) in entries {
            let sha = Process()
            sha.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            sha.arguments = [file.path]
            let pipe = Pipe(); sha.standardOutput = pipe
            try sha.run(); sha.waitUntilExit()
            let hex = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
            lines.append(#"{"path":"\#(path)","actionKey":"00","digest":"\#(hex)","width":1,"height":1,"bytes":7,"format":"jpg"}"#)
        }
        let body = lines.dropFirst().sorted()
        try Data(([lines[0]] + body).joined(separator: "\n").appending("\n").utf8).write(to: lock)
    }

    @Test(arguments: [false, true]) func lockLinesNamingPathsOutsideOutputsDeleteNothing(withoutState: Bool) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let victimName = "victim-\(UUID().uuidString).txt"
        let victim = project.root.deletingLastPathComponent().appendingPathComponent(victimName)
        defer { try? FileManager.default.removeItem(at: victim) }
        try Data("victim\n".utf8).write(to: victim)
        try Data("mine\n".utf8).write(to: project.url("out/mine.txt"))
        try project.write("keep.txt", "a user file beside the manifest\n")
        if withoutState { try FileManager.default.removeItem(at: project.url(".derive")) }
        try injectLock(project, entries: [("out/../../\(victimName)", victim), ("src/landscape.jpg", project.url("src/landscape.jpg")),
                                          ("out/../keep.txt", project.url("keep.txt")), ("out/./mine.txt", project.url("out/mine.txt"))]
                                + (withoutState ? [] : [("out/mine.txt", project.url("out/mine.txt"))]))
        let plan = try project.run(["plan"])
        #expect(!text(plan.stdout).split(separator: "\n").contains { $0.hasPrefix("- ") }, "\(text(plan.stdout))")
        #expect(text(plan.stdout).contains("0 to delete"), "\(text(plan.stdout))")
        _ = try project.run(["build", "-q"])
        #expect(FileManager.default.fileExists(atPath: victim.path))
        #expect(project.exists("src/landscape.jpg"))
        #expect(project.exists("keep.txt"))
        if !withoutState { #expect(project.exists("out/mine.txt"), "a state exists: the lock authorises nothing") }
        // clean without a state: the same entries remove nothing but real outputs.
        try FileManager.default.removeItem(at: project.url(".derive"))
        try injectLock(project, entries: [("out/../../\(victimName)", victim), ("src/landscape.jpg", project.url("src/landscape.jpg")),
                                          ("out/../keep.txt", project.url("keep.txt")), ("out/./deep//v3.txt", project.url("keep.txt"))])
        _ = try project.run(["clean"])
        #expect(FileManager.default.fileExists(atPath: victim.path))
        #expect(project.exists("src/landscape.jpg"))
        #expect(project.exists("keep.txt"))
        #expect(project.exists("derive.yaml"))
    }

    // MARK: 3: a manifest named like a state file

    @Test(arguments: ["state.sqlite-wal", "state.sqlite", "state.sqlite-journal", "build.lock", "noop-witness"])
    func aManifestNamedLikeAStateFileIsInvalidAndNeverDestroyed(name: String) throws {
        let project = try Project(index: false, manifestName: name)
        defer { project.remove() }
        let text = Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "version: 1\n", with: "version: 1\nstate: .\nlock: own.lock\n")
        try project.write(name, text)
        let validate = try project.run(["validate", name])
        #expect(validate.status == 1, "\(validate.stderr)")
        #expect(validate.stderr.contains("has the name of a file Derive keeps in the state folder"), "\(validate.stderr)")
        #expect(try project.run(["build", name]).status != 0)
        #expect(try String(contentsOf: project.url(name), encoding: .utf8) == text, "the manifest was changed or consumed")
    }

    // MARK: 4: an old output that is now a source

    @Test func anOldOutputThatIsNowASourceIsKeptAndBuiltFrom() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let kept = try Data(contentsOf: project.url("out/t/landscape.jpg"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "from: src/*.jpg", with: "from: out/t/*.jpg").replacingOccurrences(of: "out/{name}.{ext}", with: "out/u/{name}.{ext}"))
        let plan = try project.run(["plan"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(text(plan.stdout).contains("out/t/landscape.jpg is now a source of this manifest"), "\(text(plan.stdout))")
        #expect(text(plan.stdout).contains("5 to create"), "\(text(plan.stdout))")
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(try Data(contentsOf: project.url("out/t/landscape.jpg")) == kept, "the manifest's own source was deleted or changed")
        #expect(project.exists("out/u/landscape.jpg"))
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout))")
        #expect(text(check.stdout).contains("5 outputs"), "\(text(check.stdout))")
    }
}

extension BuildSafetyRound5Tests {
    // MARK: 5: the lock holds when the state folder is deleted and the manifest saved by rename

    @Test func deletingTheStateFolderAndSavingTheManifestByRenameDoesNotBypassTheLock() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        // Slow enough renders that the first build is still running a second later.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "image/resize,w_32", with: "image/resize,w_1200/blur,r_40,s_40"))
        let first = Process()
        first.executableURL = CLI.executable
        first.arguments = ["build", "--jobs", "1", "-q"]
        first.currentDirectoryURL = project.root
        first.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        first.standardError = errors
        try first.run()
        // Wait until the build holds its state folder (2 s were outlasted on a loaded machine:
        // the folder was not there yet to remove), then remove it and replace the manifest.
        let deadline = Date().addingTimeInterval(60)
        while first.isRunning, Date() < deadline, !project.exists(".derive/derive/build.lock") { usleep(20_000) }
        try #require(project.exists(".derive/derive/build.lock"), "the first build never took its lock: \(first.isRunning)")
        // Moved aside in one step, then deleted once the first build ended: a recursive delete
        // racing the running build's own writes into the folder failed (a folder not empty).
        let removed = project.root.deletingLastPathComponent().appendingPathComponent("state-removed-\(UUID().uuidString)")
        #expect(rename(project.url(".derive").path, removed.path) == 0)
        defer { try? FileManager.default.removeItem(at: removed) }
        let saved = project.url("saved.tmp")
        try FileManager.default.copyItem(at: project.url("derive.yaml"), to: saved)
        #expect(rename(saved.path, project.url("derive.yaml").path) == 0)
        let firstWasRunning = first.isRunning
        let second = try project.run(["build", "-q"])
        let firstStillRunning = first.isRunning
        first.waitUntilExit()
        let firstErrors = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if firstWasRunning && firstStillRunning {
            #expect(second.status == 75, "the second build ran while the first held the lock: \(second.stderr)")
        }
        if first.terminationStatus != 0 {
            // The first build lost its state: it says so, in words.
            #expect(firstErrors.contains("was deleted or replaced during the build"), "\(firstErrors)")
            #expect(!firstErrors.contains("SQLite error"), "\(firstErrors)")
        }
    }

    // MARK: 6, 7, 10

    @Test func onlyFilesThatParseAsManifestsAreSiblings() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive", "#!/bin/sh\n# runs derive with our buckets\nexec derive \"$@\"\n")
        try project.write("derive.json", #"{"name": "x"}"#)
        let validate = try project.run(["validate"])
        #expect(validate.status == 0, "\(validate.stderr)")
        // A real sibling still is one.
        try project.write("derive.yml", Project.manifest(outPath: "out2", index: false))
        let shared = try project.run(["validate"])
        #expect(shared.status == 1)
        #expect(shared.stderr.contains("would share the lock derive.lock and the state folder .derive/derive"), "\(shared.stderr)")
    }

    @Test func theSharedStateFolderIsNamedAsThisManifestUsesIt() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "version: 1\n", with: "version: 1\nstate: .derive/derive.YAML\n"))
        try project.write("derive.YAML", Project.manifest(outPath: "out2", index: false).replacingOccurrences(of: "version: 1\n", with: "version: 1\nlock: other.lock\nstate: .derive/derive.YAML\n"))
        let validate = try project.run(["validate", "derive.yaml"])
        #expect(validate.status == 1)
        #expect(validate.stderr.contains("would share the state folder .derive/derive.YAML"), "\(validate.stderr)")
    }

    @Test func zeroJobsOrMemoryIsARangeErrorAndAManifestNamedDotDeriveIsInvalid() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let jobs = try project.run(["build", "--jobs", "0"])
        #expect(jobs.status != 0 && jobs.stderr.contains("--jobs must be from 1 to"), "\(jobs.stderr)")
        let memory = try project.run(["build", "--memory", "0"])
        #expect(memory.status != 0 && memory.stderr.contains("--memory must be from 1 to"), "\(memory.stderr)")
        try FileManager.default.copyItem(at: project.url("derive.yaml"), to: project.url(".derive"))
        let build = try project.run(["build", ".derive"])
        #expect(build.status == 1)
        #expect(!build.stderr.contains("NSCocoaErrorDomain"), "\(build.stderr)")
        #expect(build.stderr.contains("cannot be made"), "\(build.stderr)")
    }
}

extension BuildSafetyRound5Tests {
    // MARK: 8: the plan names the control files the build writes

    @Test func anACLOnlyChangeShowsTheIndexRewriteThatTheBuildDoes() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "src: {path: src}", with: "src: {path: src, acl: public-read}"))
        let plan = try project.run(["plan"])
        #expect(text(plan.stdout).contains("to update"), "\(text(plan.stdout))")
        // The index lists ACLs; the lock records the index's digest, so both are rewritten.
        #expect(text(plan.stdout).contains("rewrite derive.lock, out/index.json"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(text(build.stdout).contains("rewrote derive.lock, out/index.json"), "\(text(build.stdout))")
    }
}
