import Builder
import Foundation
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The second attack on build safety (issue 9), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyAttackTests {
    /// A small project: `src/` with five sample images, one rule writing `out/`, an index.
    struct Project {
        let root: URL
        init(index: Bool = true, outPath: String = "out", manifestName: String = "derive.yaml") throws {
            root = try CLI.temporaryFolder()
            let src = root.appendingPathComponent("src")
            try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
            for name in ["landscape.jpg", "orientation-1.jpg", "orientation-2.jpg", "orientation-3.jpg", "cmyk.jpg"] {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: src.appendingPathComponent(name))
            }
            try write(manifestName, Self.manifest(outPath: outPath, index: index))
        }
        static func manifest(outPath: String, index: Bool, width: Int = 32) -> String {
            """
            version: 1
            buckets:
              src: {path: src}
              out:
                path: \(outPath)
            \(index ? "index: out/index.json\n" : "")derivatives:
              - name: thumbs
                from: src/*.jpg
                process: image/resize,w_\(width)
                to: out/{name}.{ext}

            """
        }
        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: root.appendingPathComponent(name))
        }
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: url(path).path) }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }
        func remove() { try? FileManager.default.removeItem(at: root) }
        static let outputs = ["landscape.jpg", "orientation-1.jpg", "orientation-2.jpg", "orientation-3.jpg", "cmyk.jpg"]
        var outputs: [String] { Self.outputs }
    }

    // MARK: H1: a bucket reached through a symbolic link

    @Test func aBucketRenamedToALinkToItsFolderKeepsEveryOutput() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.createSymbolicLink(atPath: project.url("outlink").path, withDestinationPath: "out")
        try project.write("derive.yaml", Project.manifest(outPath: "outlink", index: true))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!text(build.stdout).contains("deleted"), "\(text(build.stdout))")
        #expect(!text(build.stdout).contains("built 5"), "a folder named through a link is not a move: \(text(build.stdout))")
        for name in project.outputs { #expect(project.exists("out/\(name)"), "\(name) was deleted") }
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout))")
        // And back: the same folder again, nothing rendered, nothing deleted.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true))
        #expect(try project.run(["build", "-q"]).status == 0)
        for name in project.outputs { #expect(project.exists("out/\(name)")) }
    }

    @Test func aManifestReachedThroughALinkedFolderKeepsEveryOutput() throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let project = try Project()
        defer { project.remove() }
        let m2 = outer.appendingPathComponent("m2")
        try FileManager.default.moveItem(at: project.root, to: m2)
        try FileManager.default.createSymbolicLink(atPath: outer.appendingPathComponent("m2link").path, withDestinationPath: "m2")
        #expect(try CLI.run(["build", "-q", "m2/derive.yaml"], in: outer).status == 0)
        let second = try CLI.run(["build", "-q", "m2link/derive.yaml"], in: outer)
        #expect(second.status == 0, "\(second.stderr)")
        for name in project.outputs {
            #expect(FileManager.default.fileExists(atPath: m2.appendingPathComponent("out/\(name)").path), "\(name) was deleted")
        }
        #expect(try CLI.run(["check", "m2/derive.yaml"], in: outer).status == 0)
    }

    // MARK: H2: the index after adoption

    @Test func theIndexIsAdoptedWithTheLockAndRewritten() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        // Committed: without the state, the restyle renders over the outputs on git's proof.
        try GitProofCLITests.commitAll(project.root)
        let before = try Data(contentsOf: project.url("out/index.json"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 40))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let after = try Data(contentsOf: project.url("out/index.json"))
        #expect(after != before)
        #expect(text(after).contains("\"width\": 40"))
        #expect(try project.run(["check"]).status == 0)
    }

    @Test func anIndexNotDerivesIsReplacedOnlyWithOverwrite() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try Data("{\"mine\": true}\n".utf8).write(to: project.url("out/index.json"))
        let refused = try project.run(["build", "-q"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("out/index.json"), "\(refused.stderr)")
        #expect(text(try Data(contentsOf: project.url("out/index.json"))).contains("mine"))
        let forced = try project.run(["build", "-q", "--overwrite"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(text(try Data(contentsOf: project.url("out/index.json"))).contains("\"sources\""))
    }

    // MARK: H3: one writer at a time

    /// The lock survives the process reading the lock file (an fcntl lock did not).
    @Test func theBuildLockIsNotDroppedWhenTheFileIsReadAgain() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let state = project.url(".derive/derive").path
        let held = try BuildLock(folder: state)
        try StateOwnership.check(folder: state)   // opens and closes build.lock
        _ = FileManager.default.contents(atPath: state + "/build.lock")
        let clean = try project.run(["clean"])
        #expect(clean.status == BuildLock.busyExitCode, "\(clean.stderr)")
        #expect(clean.stderr.contains("pid \(getpid())"), "\(clean.stderr)")
        for name in project.outputs { #expect(project.exists("out/\(name)")) }
        let build = try project.run(["build", "-q", "--overwrite"])
        #expect(build.status == BuildLock.busyExitCode, "\(build.stderr)")
        withExtendedLifetime(held) {}
    }

    @Test func cleanDuringABuildExitsAtOnceAndTheBuildFinishes() throws {
        let project = try Project()
        defer { project.remove() }
        // Enough work to be running when clean starts.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true) + """
              - name: big
                from: src/*.jpg
                process: image/resize,w_1600/sharpen,200
                to: out/big/{name}.png
              - name: big2
                from: src/*.jpg
                process: image/resize,w_1500/blur,r_20,s_20
                to: out/big2/{name}.png

            """)
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["build", "-q", "--jobs", "1"]
        process.currentDirectoryURL = project.root
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let lockFile = project.url(".derive/derive/build.lock").path
        var waited = 0
        while (FileManager.default.contents(atPath: lockFile).map { text($0).hasPrefix("pid ") } ?? false) == false, waited < 400 {
            usleep(10_000); waited += 1
        }
        let clean = try project.run(["clean"])
        let second = try project.run(["build", "-q"])
        process.waitUntilExit()
        let buildErrors = text(errors.fileHandleForReading.readDataToEndOfFile())
        #expect(process.terminationStatus == 0, "\(buildErrors)")
        #expect(clean.status == BuildLock.busyExitCode, "clean ran during the build: \(clean.stderr)")
        #expect(clean.stderr.contains("pid \(process.processIdentifier)"), "\(clean.stderr)")
        #expect(second.status == BuildLock.busyExitCode, "\(second.stderr)")
        for name in project.outputs { #expect(project.exists("out/\(name)")) }
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: M2: two manifests in one folder

    @Test func aYmlBesideAYamlIsRefusedAtValidation() throws {
        let project = try Project()
        defer { project.remove() }
        try project.write("derive.yml", Project.manifest(outPath: "out2", index: false))
        let validate = try project.run(["validate", "derive.yml"])
        #expect(validate.status == 1)
        #expect(validate.stderr.contains("would share the lock derive.lock"), "\(validate.stderr)")
        let build = try project.run(["build", "-q", "derive.yml"])
        #expect(build.status == 1)
        #expect(!project.exists("out2"))
        #expect(!project.exists("derive.lock"))
    }

    @Test func aLockNamingANeighboursLockIsRefused() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = try Data(contentsOf: project.url("derive.lock"))
        #expect(text(lock).hasPrefix(#"{"format":"derive.lock/2","manifest":"derive.yaml""#))
        try project.write("site.yaml", Project.manifest(outPath: "site-out", index: false) + "lock: derive.lock\n")
        let validate = try project.run(["validate", "site.yaml"])
        #expect(validate.status == 1)
        #expect(validate.stderr.contains("is the lock of derive.yaml"), "\(validate.stderr)")
        #expect(try project.run(["build", "-q", "site.yaml"]).status == 1)
        #expect(try Data(contentsOf: project.url("derive.lock")) == lock)
        // At run time too: a lock whose first line names another manifest, still there, is not
        // ours (`other.yaml`: no manifest the validator would compare, but a file of that name).
        try FileManager.default.removeItem(at: project.url("derive.yaml"))
        try project.write("other.yaml", "notes\n")
        let others = Data(text(lock).replacingOccurrences(of: #""manifest":"derive.yaml""#, with: #""manifest":"other.yaml""#).utf8)
        try others.write(to: project.url("derive.lock"))
        try project.write("site.yaml", Project.manifest(outPath: "site-out", index: false) + "lock: derive.lock\n")
        let build = try project.run(["build", "-q", "site.yaml"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("derive.lock is the lock of other.yaml"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("derive.lock")) == others)
        let clean = try project.run(["clean", "site.yaml"])
        #expect(try Data(contentsOf: project.url("derive.lock")) == others, "\(clean.stderr)")
        // Once that manifest is gone from this folder (renamed: attack 31's F8), its lock passes to this one.
        try FileManager.default.removeItem(at: project.url("other.yaml"))
        let taken = try project.run(["build", "-q", "site.yaml"])
        #expect(taken.status == 0 && taken.stderr.contains("other.yaml") && taken.stderr.contains("takes it over"), "\(taken.stderr)")
        #expect(text(try Data(contentsOf: project.url("derive.lock"))).hasPrefix(#"{"format":"derive.lock/2","manifest":"site.yaml""#))
    }

    // MARK: M3: clean without a state

    @Test func cleanWithoutAStateRemovesTheLocksOutputs() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Data("mine".utf8).write(to: project.url("out/notes.txt"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(text(clean.stdout).contains("Removed 5 outputs"), "\(text(clean.stdout))")
        for name in project.outputs { #expect(!project.exists("out/\(name)")) }
        #expect(!project.exists("out/index.json"))
        #expect(!project.exists("derive.lock"))
        #expect(project.exists("out/notes.txt"))
        #expect(!project.exists(".derive"), "clean left an empty .derive/")
    }

    @Test func cleanKeepsAChangedOutputAndSaysSo() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try Data("edited".utf8).write(to: project.url("out/cmyk.jpg"))
        let clean = try project.run(["clean"])
        #expect(clean.stderr.contains("out/cmyk.jpg was changed since Derive wrote it"), "\(clean.stderr)")
        #expect(project.exists("out/cmyk.jpg"))
        #expect(!project.exists("out/landscape.jpg"))
    }

    // MARK: L11, L12: clean goes on past an odd output, and leaves no empty .derive/

    @Test func cleanLeavesAFolderAtAnOutputPathAndGoesOn() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("out/cmyk.jpg"))
        try FileManager.default.createDirectory(at: project.url("out/cmyk.jpg"), withIntermediateDirectories: true)
        let clean = try project.run(["clean"])
        #expect(clean.status == 1)
        #expect(clean.stderr.contains("out/cmyk.jpg"), "\(clean.stderr)")
        for name in project.outputs where name != "cmyk.jpg" { #expect(!project.exists("out/\(name)"), "\(name) was left") }
        #expect(project.exists("out/cmyk.jpg"))
    }

    @Test func cleanOfANeverBuiltProjectLeavesNoDeriveFolder() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["clean"]).status == 0)
        #expect(!project.exists(".derive"))
    }

    // MARK: M4, M5: check writes nothing and compares the lock by bytes

    @Test func checkWritesNothingEvenWithACorruptState() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let database = project.url(".derive/derive/state.sqlite")
        try Data(repeating: 0x41, count: 8192).write(to: database)
        try? FileManager.default.removeItem(at: project.url(".derive/derive/noop-witness"))
        let before = try FileManager.default.contentsOfDirectory(atPath: project.url(".derive/derive").path).sorted()
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        #expect(check.stderr.contains("derive: warning: the build state"), "\(check.stderr)")
        #expect(!check.stderr.contains("error"), "\(check.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: project.url(".derive/derive").path).sorted() == before)
        #expect(try Data(contentsOf: database) == Data(repeating: 0x41, count: 8192))
        // Without a state folder at all, check does not create one.
        try FileManager.default.removeItem(at: project.url(".derive"))
        #expect(try project.run(["check"]).status == 0)
        #expect(!project.exists(".derive"))
    }

    @Test func checkRejectsALockThatBuildWouldRewrite() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = text(try Data(contentsOf: project.url("derive.lock")))
        var lines = lock.split(separator: "\n").map(String.init)
        let edits: [String] = [
            ([lines[0], lines[2], lines[1]] + lines.dropFirst(3)).joined(separator: "\n") + "\n",   // swapped
            (lines + [lines[1]]).joined(separator: "\n") + "\n",                                      // repeated
            ([lines[0], ""] + lines.dropFirst()).joined(separator: "\n") + "\n",                      // blank line
            lock.replacingOccurrences(of: "\"width\":", with: "\"width\": "),                        // spacing
            lock.replacingOccurrences(of: "\"format\":\"jpg\"}", with: "\"format\":\"jpg\",\"extra\":1}"),   // extra key
        ]
        for edited in edits {
            #expect(edited != lock)
            try Data(edited.utf8).write(to: project.url("derive.lock"))
            let check = try project.run(["check"])
            #expect(check.status == 1, "check accepted:\n\(edited)")
            #expect(try project.run(["build", "-q"]).status == 0)
            #expect(text(try Data(contentsOf: project.url("derive.lock"))) == lock)
        }
        lines.removeAll()
    }

    // MARK: L3: recovery is a warning

    @Test func recoveryIsAWarningNotAnError() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        // Committed: with the state corrupt, the restyle renders over the outputs on git's proof.
        try GitProofCLITests.commitAll(project.root)
        try Data(repeating: 0x41, count: 8192).write(to: project.url(".derive/derive/state.sqlite"))
        try? FileManager.default.removeItem(at: project.url(".derive/derive/noop-witness"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 33))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0)
        #expect(build.stderr.contains("derive: warning: the build state was corrupt"), "\(build.stderr)")
        #expect(!build.stderr.contains("derive: error"), "\(build.stderr)")
    }

    // MARK: L5: index errors are labelled with the index, counted apart

    @Test func anIndexErrorNamesTheIndexAndIsNotAFailedDerivative() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Data("{\"mine\": 1}\n".utf8).write(to: project.url("out/index.json"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 30))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("derive: error: out/index.json exists and was not written by Derive"), "\(build.stderr)")
        #expect(!build.stderr.contains("derive.lock:"), "\(build.stderr)")
        #expect(!text(build.stdout).contains("failed"), "\(text(build.stdout))")
        // A plan with errors builds nothing (round 7 #2).
        #expect(!text(build.stdout).contains("built 5"), "\(text(build.stdout))")
        #expect(build.stderr.contains("nothing was built"), "\(build.stderr)")
    }

    // MARK: L6: stale temporaries of the lock and the index

    @Test func staleLockAndIndexTemporariesOfDeadWritersAreRemoved() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        // A pid that is not running.
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = [".derive.lock.\(dead).17.derive-tmp", "out/.index.json.\(dead).9.derive-tmp"]
        let kept = [".derive.lock.\(getpid()).1.derive-tmp", "out/.other.json.\(dead).9.derive-tmp", ".notes.\(dead).1.derive-tmp"]
        // Derive's bytes (copies of the lock and the index as they are): removed. A user's bytes
        // at such a name are kept (attack 15's F1; BuildSafetyRound15Tests).
        try Data(contentsOf: project.url("derive.lock")).write(to: project.url(stale[0]))
        try Data(contentsOf: project.url("out/index.json")).write(to: project.url(stale[1]))
        for name in kept { try Data("x".utf8).write(to: project.url(name)) }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 31))
        #expect(try project.run(["build", "-q"]).status == 0)
        for name in stale { #expect(!project.exists(name), "\(name) was left") }
        for name in kept { #expect(project.exists(name), "\(name) was removed") }
    }

    // MARK: L7: states moved aside get unique names, the newest three are kept

    @Test func statesMovedAsideDoNotCollideAndDoNotPileUp() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let folder = project.url(".derive/derive")
        for round in 0..<5 {
            try Data(repeating: UInt8(0x41 + round), count: 8192).write(to: folder.appendingPathComponent("state.sqlite"))
            try? FileManager.default.removeItem(at: folder.appendingPathComponent("noop-witness"))
            #expect(try project.run(["build", "-q"]).status == 0)
        }
        let aside = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("state.sqlite.corrupt-") }
        // Each its own bytes. None is pruned: a file that is not an SQLite database with Derive's
        // tables may be anyone's (attack 18's S6), so only states Derive can recognise are pruned
        // to the newest three (StateTrustRound18Tests).
        let firsts = Set(try aside.map { try Data(contentsOf: folder.appendingPathComponent($0)).first! })
        #expect(aside.count == 5 && firsts == [0x41, 0x42, 0x43, 0x44, 0x45], "\(aside) \(firsts)")
    }

    // MARK: M6: a copy sharing a bucket folder outside its tree

    @Test func aCopySharingAnOutsideBucketDoesNotAdoptTheOriginalsOutputs() throws {
        let (outer, original, copy) = try copiedProject()
        defer { try? FileManager.default.removeItem(at: outer) }
        let build = try CLI.run(["build", "-q"], in: copy)
        #expect(build.status == 1)
        #expect(build.stderr.contains("is an output of \(original.path)"), "\(build.stderr)")
        // The copy then drops its rule: nothing of the original's is deleted.
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out:\n    path: ../shared-out\nderivatives: []\n".utf8)
            .write(to: copy.appendingPathComponent("derive.yaml"))
        _ = try CLI.run(["build", "-q"], in: copy)
        _ = try CLI.run(["clean"], in: copy)
        for name in Project.outputs {
            #expect(FileManager.default.fileExists(atPath: outer.appendingPathComponent("shared-out/\(name)").path), "\(name) was deleted")
        }
        #expect(try CLI.run(["check"], in: original).status == 0)
    }
}
