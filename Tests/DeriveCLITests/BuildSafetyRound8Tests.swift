import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The eighth round on build safety (issue 9), end to end through the binary: an index moved
/// while the state is lost, the manifest-path lock files, the plan's control files, messages.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound8Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// The derive.yaml of `Project` with the index at `index` and a third bucket `meta`.
    static func manifest(index: String, width: Int = 32, acl: String? = nil) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
          meta: {path: meta}
        index: \(index)
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: out/{name}.{ext}
        \(acl.map { "    acl: \($0)\n" } ?? "")
        """
    }

    func lockHeader(_ project: Project) throws -> [String: Any] {
        let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        let first = String(lock.prefix { $0 != "\n" })
        return try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any] ?? [:]
    }

    // MARK: 1: an index moved while the state is lost

    @Test func theLockRecordsTheIndexPathAndDigest() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let header = try lockHeader(project)
        let index = try Data(contentsOf: project.url("out/index.json"))
        #expect(header["index"] as? String == "out/index.json", "\(header)")
        let digest = SHA256Hex.of(index)
        #expect(header["indexDigest"] as? String == digest, "\(header)")
        #expect(try project.run(["check"]).status == 0)
    }

    /// `index:` moved (within its bucket, or to another bucket) after the state folder was
    /// deleted: the old index is named by the lock only, which is untrusted (round 11, A1: a copy
    /// of the index is byte-identical to it), so it is kept and named, with how to delete it by
    /// hand; the new index is written and check is clean.
    @Test(arguments: ["out/idx2.json", "meta/index.json"])
    func anIndexMovedWithoutTheStateKeepsAndNamesTheOldIndex(_ moved: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Self.manifest(index: moved))
        let plan = try project.run(["plan"])
        #expect(plan.status == 0, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(text(plan.stdout).contains("! out/index.json  keep:") && text(plan.stdout).contains("rm out/index.json"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!text(build.stdout).contains("removed out/index.json"), "\(text(build.stdout))")
        #expect(build.stderr.contains("out/index.json") && build.stderr.contains("delete it by hand"), "\(build.stderr)")
        #expect(project.exists("out/index.json"), "the old index named only by the lock was deleted")
        #expect(project.exists(moved))
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    /// Round 10, N1: the lock's first line is untrusted. A fresh clone whose lock names a user's
    /// file (in a source bucket, or any bucket) as the old index, with that file's true digest,
    /// deletes nothing: plan, build and clean keep it.
    @Test(arguments: ["src/notes.txt", "out/uploads/contract.json", "meta/data.json"])
    func aLockNamingAUsersFileAsItsOldIndexDeletesNothing(_ victim: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.createDirectory(at: project.url(victim).deletingLastPathComponent(), withIntermediateDirectories: true)
        try project.write(victim, "{\"mine\": true}\n")
        let bytes = try Data(contentsOf: project.url(victim))
        func inject() throws {
            var lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).components(separatedBy: "\n")
            // Keys keep their order (a lock's first line starts with its format), so the lock is still Derive's.
            lock[0] = lock[0].replacingOccurrences(of: #""index":"[^"]*","indexDigest":"[0-9a-f]*""#,
                                                   with: #""index":"\#(victim)","indexDigest":"\#(SHA256Hex.of(bytes))""#, options: .regularExpression)
            try lock.joined(separator: "\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
        }
        try inject()
        let plan = try project.run(["plan"])
        #expect(!text(plan.stdout).contains("remove \(victim)"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(!build.stderr.contains("is not a Derive lock"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url(victim)) == bytes, "the build deleted a user's file the lock named")
        try? FileManager.default.removeItem(at: project.url(".derive"))
        try inject()
        _ = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url(victim)) == bytes, "clean deleted a user's file the lock named")
    }

    /// The same with a user's file at the old index path (the old index edited, or replaced): kept and said.
    @Test func aUsersFileAtTheOldIndexPathIsKeptAndReported() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("out/index.json", "{\"mine\": true}\n")
        try project.write("derive.yaml", Self.manifest(index: "out/idx2.json"))
        let plan = text(try project.run(["plan"]).stdout)
        #expect(plan.contains("out/index.json") && plan.contains("it is kept"), "\(plan)")
        #expect(!plan.contains("remove out/index.json"), "\(plan)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("out/index.json") && build.stderr.contains("it is kept"), "\(build.stderr)")
        #expect(try String(contentsOf: project.url("out/index.json"), encoding: .utf8) == "{\"mine\": true}\n")
        #expect(project.exists("out/idx2.json"))
    }

    /// `clean` without a state keeps the old index the lock records, and names it.
    @Test func cleanWithoutTheStateKeepsTheOldIndexTheLockRecords() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Self.manifest(index: "out/idx2.json"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(!text(clean.stdout).contains("the old index out/index.json"), "\(text(clean.stdout))")
        #expect(clean.stderr.contains("out/index.json") && clean.stderr.contains("delete it by hand"), "\(clean.stderr)")
        #expect(project.exists("out/index.json") && !project.exists("derive.lock"))
    }

    /// A lock (untrusted: a pull request) naming a source as its index never gets it deleted.
    @Test func aLockNamingASourceAsItsIndexDeletesNothing() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        let source = try Data(contentsOf: project.url("src/landscape.jpg"))
        var lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        let header = try lockHeader(project)
        lock = lock.replacingOccurrences(of: "\"index\":\"out/index.json\",\"indexDigest\":\"\(header["indexDigest"] as? String ?? "")\"",
                                         with: "\"index\":\"src/landscape.jpg\",\"indexDigest\":\"\(SHA256Hex.of(source))\"")
        try project.write("derive.lock", lock)
        _ = try project.run(["build"])
        _ = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url("src/landscape.jpg")) == source)
    }

    // MARK: 2: the manifest-path lock files

    /// N builds of N manifests leave no file in the lock folder (a private XDG_RUNTIME_DIR).
    @Test func lockFilesAreRemovedWhenEachCommandEnds() throws {
        let runtime = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: runtime) }
        chmod(runtime.path, 0o700)
        let environment = ["XDG_RUNTIME_DIR": runtime.path]
        var projects: [Project] = []
        defer { projects.forEach { $0.remove() } }
        for _ in 0..<4 {
            let project = try Project(index: false)
            projects.append(project)
            for command in [["build", "-q"], ["clean"], ["build", "-q"]] {
                let result = try CLI.run(command, in: project.root, environment: environment)
                #expect(result.status == 0, "\(command): \(result.stderr)")
            }
        }
        let folder = runtime.appendingPathComponent("derive-locks").path
        var info = stat()
        #expect(lstat(folder, &info) == 0, "the lock folder was not used")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? ["?"]).isEmpty,
                "left: \((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])")
    }

    /// Two commands racing on one manifest: never both building (one waits out as busy, 75),
    /// and the lock folder is empty after.
    @Test func racingCommandsNeverBothHoldTheLock() throws {
        let runtime = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: runtime) }
        chmod(runtime.path, 0o700)
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try CLI.run(["build", "-q"], in: project.root, environment: ["XDG_RUNTIME_DIR": runtime.path]).status == 0)
        for round in 0..<3 {
            try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 20 + round))
            let results = Box2<[Int32]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                let status = (try? CLI.run(["build", "-q"], in: project.root, environment: ["XDG_RUNTIME_DIR": runtime.path]).status) ?? -1
                results.update { $0.append(status) }
            }
            let statuses = results.value.sorted()
            #expect(statuses == [0, 0] || statuses == [0, 75], "\(statuses)")
            #expect(try CLI.run(["check"], in: project.root).status == 0)
        }
        let folder = runtime.appendingPathComponent("derive-locks").path
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty)
    }

    // MARK: 3: plan lists exactly the control files the build writes

    /// Over creates, rebuilds, a re-render of a deleted output, an ACL-only change, deletions,
    /// an output kept as a source, recovery without the state and with a corrupt state: the
    /// files the plan lists to write or remove are exactly those the build changes.
    @Test func planListsExactlyTheControlFilesTheBuildChanges() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let round6 = BuildSafetyRound6Tests()
        let candidates = ["derive.lock": project.url("derive.lock"), "out/index.json": project.url("out/index.json"),
                          "out/idx2.json": project.url("out/idx2.json")]
        func step(_ name: String, expected: Set<String>, _ change: () throws -> Void) throws {
            try change()
            let output = try round6.planMatchesBuild(in: project.root, candidates: candidates, expected: expected)
            #expect(try project.run(["check"]).status == 0, "after \(name): \(output)")
        }
        let both: Set<String> = ["derive.lock", "out/index.json"]
        try step("first build", expected: both) { try project.write("derive.yaml", Self.manifest(index: "out/index.json")) }
        try step("no-op", expected: []) {}
        try step("rebuild (restyle)", expected: both) { try project.write("derive.yaml", Self.manifest(index: "out/index.json", width: 28)) }
        try step("create (new source)", expected: both) {
            try FileManager.default.copyItem(at: project.url("src/landscape.jpg"), to: project.url("src/new.jpg"))
        }
        try step("re-render a deleted output", expected: []) { try FileManager.default.removeItem(at: project.url("out/new.jpg")) }
        try step("ACL only", expected: both) { try project.write("derive.yaml", Self.manifest(index: "out/index.json", width: 28, acl: "public-read")) }
        try step("delete (source removed)", expected: both) { try FileManager.default.removeItem(at: project.url("src/new.jpg")) }
        try step("recovery (state deleted)", expected: []) { try FileManager.default.removeItem(at: project.url(".derive")) }
        try step("recovery with a missing output", expected: []) {
            try FileManager.default.removeItem(at: project.url(".derive"))
            try FileManager.default.removeItem(at: project.url("out/cmyk.jpg"))
        }
        try step("recovery with a restyle", expected: both) {
            // Committed: without the state, the restyle renders over the outputs on git's proof.
            try GitProofCLITests.commitAll(project.root)
            try FileManager.default.removeItem(at: project.url(".derive"))
            try project.write("derive.yaml", Self.manifest(index: "out/index.json", width: 24, acl: "public-read"))
        }
        try step("corrupt state", expected: []) {
            let state = project.url(".derive/derive/state.sqlite")
            try Data(repeating: 0x41, count: 4096).write(to: state)
        }
        try step("index moved", expected: ["derive.lock", "out/index.json", "out/idx2.json"]) {
            try project.write("derive.yaml", Self.manifest(index: "out/idx2.json", width: 24, acl: "public-read"))
        }
        // Without the state the old index is named only by the lock: kept (round 11, A1).
        try step("index moved back without the state", expected: both) {
            try FileManager.default.removeItem(at: project.url(".derive"))
            try project.write("derive.yaml", Self.manifest(index: "out/index.json", width: 24, acl: "public-read"))
        }
    }

    /// An old output now read as a source: the lock and index are rewritten for records dropped,
    /// and the plan says so (not "lists outputs the build deletes").
    @Test func aKeptSourcePlanDoesNotSayTheBuildDeletes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "from: src/*.jpg", with: "from: out/t/*.jpg").replacingOccurrences(of: "out/{name}.{ext}", with: "out/u/{name}.{ext}"))
        let plan = text(try project.run(["plan"]).stdout)
        #expect(!plan.contains("the build deletes"), "\(plan)")
        #expect(plan.contains("5 kept in place (record dropped)"), "\(plan)")
    }

    // MARK: 4: messages

    /// A lock line through a symbolic link is named once by check, never a deletion (without a
    /// state the lock authorises nothing: the file is left; attack 16's V3). Check exits 1 only
    /// for the lock the build rewrites without that line.
    @Test func checkNamesALockLineThroughALinkOnceAsLeft() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let elsewhere = project.url("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: project.url("out/landscape.jpg"), to: elsewhere.appendingPathComponent("a.jpg"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/link").path, withDestinationPath: elsewhere.path)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try BuildSafetyRound5Tests().injectLock(project, entries: [("out/link/a.jpg", elsewhere.appendingPathComponent("a.jpg"))])
        let check = try project.run(["check"])
        // Named once as left; the lock the build rewrites without its line is check's one problem
        // (attack 39a's F1: check agrees with `plan --detailed-exitcode`).
        let lines = text(check.stdout).split(separator: "\n").filter { $0.contains("out/link/a.jpg") && !$0.hasPrefix("derive.lock: ") }
        #expect(check.status == 1 && text(check.stdout).contains("derive.lock: lists 1 output the manifest does not produce"), "\(text(check.stdout))")
        #expect(lines.count == 1, "\(text(check.stdout))")
        #expect(lines.first?.contains("= out/link/a.jpg  left: known only from derive.lock") == true && lines.first?.contains(": delete:") == false, "\(lines)")
        #expect(FileManager.default.fileExists(atPath: elsewhere.appendingPathComponent("a.jpg").path))
    }

    /// The index's write error names the index, not derive.lock (a folder holding the new
    /// index is a symbolic link: refused by plan and build alike, nothing written through it).
    @Test func anIndexBehindALinkIsNamedAsTheIndexAndNothingIsRemovedSilently() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let victim = project.url("victim")
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: project.url("out/sub").path, withDestinationPath: "../victim")
        try project.write("derive.yaml", Self.manifest(index: "out/sub/index.json"))
        let plan = try project.run(["plan"])
        #expect(plan.status != 0, "\(text(plan.stdout))")
        #expect((text(plan.stdout) + plan.stderr).contains("out/sub/index.json leads through a symbolic link (out/sub)"), "\(text(plan.stdout)) \(plan.stderr)")
        let build = try project.run(["build"])
        #expect(build.status != 0)
        #expect(build.stderr.contains("out/sub/index.json") && !build.stderr.contains("derive.lock:"), "\(build.stderr)")
        #expect(project.exists("out/index.json"), "the old index was removed by a refused build")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: victim.path)) ?? ["?"]).isEmpty)
    }

    /// An index that cannot be written (its folder is a user's file): the error names the index,
    /// not derive.lock, and the outputs still count as built.
    @Test func anIndexWriteErrorIsNamedAsTheIndex() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("out"), withIntermediateDirectories: true)
        try project.write("out/f", "a user's file where the index's folder would be\n")
        try project.write("derive.yaml", Self.manifest(index: "out/f/index.json"))
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("error: out/f/index.json: cannot write"), "\(build.stderr)")
        #expect(!build.stderr.contains("derive.lock:"), "\(build.stderr)")
        #expect(text(build.stdout).contains("lock or index not written"), "\(text(build.stdout))")
        #expect(try String(contentsOf: project.url("out/f"), encoding: .utf8).hasPrefix("a user's file"))
    }

    /// A user's symbolic link where Derive wrote the index: clean keeps it, says so, exits 0.
    @Test func cleanKeepsAUsersLinkAtTheIndexPath() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("mine.json", "{}\n")
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/index.json").path, withDestinationPath: "../mine.json")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(clean.stderr.contains("out/index.json is not the file Derive wrote as the index (a symbolic link); left in place"), "\(clean.stderr)")
        var info = stat()
        #expect(lstat(project.url("out/index.json").path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK)
        #expect(try String(contentsOf: project.url("mine.json"), encoding: .utf8) == "{}\n")
        #expect(!project.exists("out/landscape.jpg"))
    }
}

/// SHA-256 in lowercase hex (what the lock records), through sha256sum-free Foundation-only code.
enum SHA256Hex {
    static func of(_ data: Data) -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try? data.write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try? process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: out, as: UTF8.self).prefix { $0 != " " })
    }
}

final class Box2<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func update(_ change: (inout T) -> Void) { lock.withLock { change(&stored) } }
}
