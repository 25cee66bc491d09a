import Foundation
import Planner
import Testing
import TestSupport

/// Attack 36's F6: for an orphan edited by hand, `plan --json` said `"kind": "delete"` and counted
/// it in `summary.delete` while the build keeps the file and writes a `left` line for it. Each
/// deletion's kind says what the build then does: `delete` (the file goes), `dropRecord` (the file
/// was already gone), `left` (changed since Derive wrote it: left, with a `left` line), `keep`.
@Suite(.ownThreads, .serialized) struct PlanMatchesBuildRound36Tests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test func everyDeletionKindIsWhatTheBuildDoes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Data("mine".utf8).write(to: project.url("out/landscape.jpg"))   // edited by hand
        try FileManager.default.removeItem(at: project.url("out/cmyk.jpg"))   // already gone
        // out/orientation-3.jpg is Derive's as written: really deleted.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "from: src/*.jpg", with: "from: src/orientation-{1,2}.jpg"))
        let before = try PathBytes(project, ["out/landscape.jpg", "out/orientation-3.jpg"])

        let planned = try project.run(["plan", "--json"])
        let json = try JSONSerialization.jsonObject(with: planned.stdout) as? [String: Any]
        let items = (json?["items"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String != "up-to-date" }
        var kinds: [String: String] = [:]
        for item in items { kinds[item["output"] as? String ?? ""] = item["kind"] as? String }
        #expect(kinds == ["out/landscape.jpg": "left", "out/cmyk.jpg": "dropRecord", "out/orientation-3.jpg": "delete"], "\(items)")
        let summary = json?["summary"] as? [String: Any] ?? [:]
        #expect(summary["delete"] as? Int == 1 && summary["dropRecord"] as? Int == 1 && summary["left"] as? Int == 1, "\(summary)")
        let text = String(decoding: try project.run(["plan"]).stdout, as: UTF8.self)
        #expect(text.contains("= out/landscape.jpg  left: "), "\(text)")
        #expect(text.contains("1 to delete, 1 record to drop (file already gone), 1 left in place"), "\(text)")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        let lock = (try? String(contentsOf: project.url("derive.lock"), encoding: .utf8)) ?? ""
        for (output, kind) in kinds {
            let there = project.exists(output)
            switch kind {
            case "delete": #expect(!there, "\(output): planned as deleted, still there")
            case "dropRecord": #expect(!there && !lock.contains(output), "\(output): \(lock)")
            case "left":
                #expect(there && (try? Data(contentsOf: project.url(output))) == before.bytes[output], "\(output): planned as left, not kept as it was")
                #expect(lock.contains("\"\(output)\""), "\(output): planned as left, no left line: \(lock)")
            default: Issue.record("\(output): unexpected kind \(kind)")
            }
        }
        #expect(String(decoding: build.stdout, as: UTF8.self).contains("deleted 1"), "\(String(decoding: build.stdout, as: UTF8.self))")
    }

    // MARK: round 37 (attack 36c M1, M2, L4, L5): one decision for plan and build

    /// The project with its outputs in `out/t/` (a folder of their own), built; then the rule
    /// renamed to write `out/u/`, so every `out/t/` file is an orphan.
    func orphanedProject() throws -> Project {
        let project = try Project(index: false)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/u/{name}.{ext}"))
        return project
    }

    /// What `plan --json` says of the old outputs below `prefix`: each item's kind, the `left`
    /// list's outputs, and the summary; every count agrees with its list.
    func planned(_ result: CLI.Result, prefix: String = "out/t/") throws -> (kinds: [String: String], left: [String], summary: [String: Int]) {
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        let items = json?["items"] as? [[String: Any]] ?? []
        var kinds: [String: String] = [:]
        for item in items where (item["output"] as? String ?? "").hasPrefix(prefix) { kinds[item["output"] as? String ?? ""] = item["kind"] as? String }
        let listed = json?["left"] as? [[String: Any]] ?? []
        let left = listed.compactMap { $0["output"] as? String }
        let summary = json?["summary"] as? [String: Int] ?? [:]
        // Every list and its count: each kind in the summary counts the items and the `left`
        // entries of that kind (a file left in place is counted wherever it is listed).
        for kind in ["delete", "deleteIfRenderMatches", "dropRecord", "keep", "left"] {
            let count = (items + listed).filter { $0["kind"] as? String == kind }.count
            #expect(summary[kind] == count, "\(kind): \(summary) \(items) \(listed)")
        }
        return (kinds, left, summary)
    }

    /// The files below `folder` (relative to the project), name → bytes.
    func files(_ project: Project, _ folder: String) -> [String: Data] {
        var found: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: project.url(folder).path)) ?? [] {
            if let data = FileManager.default.contents(atPath: project.url(folder + "/" + name).path) { found[name] = data }
        }
        return found
    }

    /// M1: `out/t` a mount point of a user's folder (copies of Derive's bytes): the build cannot
    /// reach Derive's files there and leaves them, their records kept. The plan said `dropRecord`
    /// ("file already gone") of files that are there.
    @Test(.enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
    func anOrphanBehindAMountPointIsPlannedAsLeftAsTheBuildLeavesIt() throws {
        let project = try orphanedProject()
        defer { project.remove() }
        let mine = project.url("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        for (name, data) in files(project, "out/t") { try data.write(to: mine.appendingPathComponent(name)) }
        try Data("mine".utf8).write(to: mine.appendingPathComponent("notes.txt"))
        let before = files(project, "mine")
        let plan = try planned(try BindMounts.run(["plan", "--json"], in: project.root, mounting: mine.path, at: "out/t"))
        // As behind a symbolic link (attack 37b's finding 7): no item, each listed as left, once.
        let orphans = project.outputs.map { "out/t/" + $0 }
        #expect(plan.kinds.isEmpty && Set(plan.left) == Set(orphans), "\(plan.kinds) \(plan.left)")
        #expect(plan.summary["dropRecord"] == 0 && plan.summary["delete"] == 0, "\(plan.summary)")
        let text = String(decoding: try BindMounts.run(["plan"], in: project.root, mounting: mine.path, at: "out/t").stdout, as: UTF8.self)
        #expect(!text.contains("already gone") && text.contains("= out/t/landscape.jpg  kept: out/t/landscape.jpg is behind a mount point (out/t)"), "\(text)")
        let build = try BindMounts.run(["build"], in: project.root, mounting: mine.path, at: "out/t")
        #expect(build.status == 0, "\(build.stderr)")
        #expect(String(decoding: build.stdout, as: UTF8.self).contains("out/t/landscape.jpg is behind a mount point (out/t)"), "\(String(decoding: build.stdout, as: UTF8.self))")
        #expect(files(project, "mine") == before, "the user's folder changed")
        // The records kept: the lock still lists each (tried again next build).
        let lock = (try? String(contentsOf: project.url("derive.lock"), encoding: .utf8)) ?? ""
        for orphan in orphans { #expect(lock.contains("\"\(orphan)\""), "\(orphan): \(lock)") }
    }

    /// M2: an orphan replaced by a copy of itself (same bytes, another inode) is not the file
    /// Derive wrote: the build leaves it, so the plan says `left`; the others are deleted.
    @Test func anOrphanReplacedByACopyOfItselfIsPlannedAsLeft() throws {
        let project = try orphanedProject()
        defer { project.remove() }
        let copy = try Data(contentsOf: project.url("out/t/landscape.jpg"))
        try FileManager.default.removeItem(at: project.url("out/t/landscape.jpg"))
        try copy.write(to: project.url("out/t/landscape.jpg"))
        let plan = try planned(try project.run(["plan", "--json"]))
        var expected = Dictionary(uniqueKeysWithValues: project.outputs.map { ("out/t/" + $0, "delete") })
        expected["out/t/landscape.jpg"] = "left"
        #expect(plan.kinds == expected, "\(plan.kinds)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect((try? Data(contentsOf: project.url("out/t/landscape.jpg"))) == copy, "the copy was not left as it was")
        for name in project.outputs where name != "landscape.jpg" { #expect(!project.exists("out/t/" + name), "\(name): planned as deleted, still there") }
    }

    /// M2: Derive's folder `out/t` replaced by a copy (the user's folder, Derive's bytes): nothing
    /// in it is Derive's; the build leaves every file, so the plan says `left` for each.
    @Test func anOrphanInAFolderReplacedByACopyIsPlannedAsLeft() throws {
        let project = try orphanedProject()
        defer { project.remove() }
        try FileManager.default.moveItem(at: project.url("out/t"), to: project.url("out/treal"))
        try FileManager.default.createDirectory(at: project.url("out/t"), withIntermediateDirectories: true)
        for (name, data) in files(project, "out/treal") { try data.write(to: project.url("out/t/" + name)) }
        let before = files(project, "out/t")
        let plan = try planned(try project.run(["plan", "--json"]))
        #expect(plan.kinds == Dictionary(uniqueKeysWithValues: project.outputs.map { ("out/t/" + $0, "left") }), "\(plan.kinds)")
        #expect(plan.summary["delete"] == 0, "\(plan.summary)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(files(project, "out/t") == before, "a file planned as left was not left as it was")
    }

    /// M2: an output adopted from the lock unverified whose source was deleted, in a project no
    /// git repository holds: nothing can prove the file Derive's (its recipe cannot be rendered
    /// again, git holds nothing), so the build leaves it; the plan runs the same check.
    @Test func anAdoptedOrphanNothingCanProveIsPlannedAsLeft() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        let adopt = try project.run(["build"])
        #expect(String(decoding: adopt.stdout, as: UTF8.self).contains("adopted from derive.lock unverified"), "\(String(decoding: adopt.stdout, as: UTF8.self))")
        let bytes = try Data(contentsOf: project.url("out/landscape.jpg"))
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        let plan = try planned(try project.run(["plan", "--json"]), prefix: "out/")
        #expect(plan.kinds.filter { $0.value != "up-to-date" } == ["out/landscape.jpg": "left"], "\(plan.kinds)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect((try? Data(contentsOf: project.url("out/landscape.jpg"))) == bytes, "planned as left, not left as it was")
        let lock = (try? String(contentsOf: project.url("derive.lock"), encoding: .utf8)) ?? ""
        #expect(lock.contains("\"out/landscape.jpg\""), "planned as left, no left line: \(lock)")
    }

    /// L4: orphans kept behind a symbolic link are listed in `left`, and counted.
    @Test func orphansBehindALinkAreCountedAsTheyAreListed() throws {
        let project = try orphanedProject()
        defer { project.remove() }
        try FileManager.default.moveItem(at: project.url("out/t"), to: project.url("out/treal"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/t").path, withDestinationPath: "treal")
        let before = files(project, "out/treal")
        let plan = try planned(try project.run(["plan", "--json"]))
        #expect(Set(plan.left) == Set(project.outputs.map { "out/t/" + $0 }), "\(plan.left)")
        #expect(plan.summary["left"] == project.outputs.count, "\(plan.summary)")
        #expect(try project.run(["build"]).status == 0)
        #expect(files(project, "out/treal") == before)
    }

    /// L5: `clean` with Derive's folder now a mount point: the files cannot be reached and are
    /// left; clean removes the state, so no record is "kept, tried again next build": the lock is.
    @Test(.enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
    func cleanSaysTheLockKeepsWhatItCouldNotReach() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let mine = project.url("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        for (name, data) in files(project, "out/t") { try data.write(to: mine.appendingPathComponent(name)) }
        let clean = try BindMounts.run(["clean"], in: project.root, mounting: mine.path, at: "out/t")
        #expect(clean.status == 1, "\(clean.stderr)")
        #expect(clean.stderr.contains("out/t/landscape.jpg could not be reached where Derive wrote it"), "\(clean.stderr)")
        #expect(!clean.stderr.contains("record kept") && !clean.stderr.contains("tried again next build"), "\(clean.stderr)")
        #expect(clean.stderr.contains("derive.lock is kept as its record"), "\(clean.stderr)")
        #expect(project.exists("derive.lock"))
    }

    // MARK: round 37b (attack 37b's findings 2 and 7)

    /// Finding 2: an orphan adopted from the lock unverified whose recipe can still be rendered:
    /// the build renders it and deletes the file only if it holds those bytes. Here it does not
    /// (a lock line vouched for other bytes): the plan said `delete` (counted in `summary.delete`),
    /// the build left the file and said "kept … in place". The plan names it apart, and the
    /// build says what it did: left in place.
    @Test func anAdoptedOrphanIsPlannedAsDeletedOnlyIfItsRenderMatches() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        // Other bytes at out/t/landscape.jpg, and the lock line vouching for them; the state lost.
        let other = try Data(contentsOf: project.url("src/landscape.jpg"))
        try other.write(to: project.url("out/t/landscape.jpg"))
        let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        let vouched = lock.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard line.contains("\"path\":\"out/t/landscape.jpg\"") else { return String(line) }
            return line.replacingOccurrences(of: #""digest":"[0-9a-f]{64}""#, with: "\"digest\":\"\(HexDigest.sha256(other))\"", options: .regularExpression)
                .replacingOccurrences(of: #""bytes":[0-9]+"#, with: "\"bytes\":\(other.count)", options: .regularExpression)
        }
        try project.write("derive.lock", vouched.joined(separator: "\n"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        let adopt = try project.run(["build"])
        #expect(String(decoding: adopt.stdout, as: UTF8.self).contains("adopted from derive.lock unverified"), "\(String(decoding: adopt.stdout, as: UTF8.self))")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/u/{name}.{ext}"))

        let plan = try planned(try project.run(["plan", "--json"]))
        // Every old output was adopted unverified (the whole state was lost): only a render tells.
        #expect(plan.kinds == Dictionary(uniqueKeysWithValues: project.outputs.map { ("out/t/" + $0, "deleteIfRenderMatches") }), "\(plan.kinds)")
        #expect(plan.summary["delete"] == 0 && plan.summary["deleteIfRenderMatches"] == project.outputs.count, "\(plan.summary)")
        let text = String(decoding: try project.run(["plan"]).stdout, as: UTF8.self)
        #expect(text.contains("0 to delete, \(project.outputs.count) to delete only if a render matches"), "\(text)")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect((try? Data(contentsOf: project.url("out/t/landscape.jpg"))) == other, "the file a render did not match was not left as it was")
        for name in project.outputs where name != "landscape.jpg" { #expect(!project.exists("out/t/" + name), "\(name): planned as deleted, still there") }
        let summary = String(decoding: build.stdout, as: UTF8.self)
        #expect(summary.contains("deleted \(project.outputs.count - 1)") && summary.contains("left 1 in place (not proven Derive's"), "\(summary)")
        #expect(!summary.contains("kept 1 in place"), "\(summary)")
    }

    /// Finding 7: old outputs whose folder became a mount point, after a build that did all it
    /// could: `check` exited 1 calling them "delete: … left in place, its record kept", and
    /// `plan --detailed-exitcode` exited 2 for as long as the mount stayed (through a symbolic
    /// link: 0). Settled as the link case: nothing to do while the mount stays, never "delete".
    @Test(.enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
    func orphansBehindAMountPointAreNoPendingWorkOnceTheBuildLeftThem() throws {
        let project = try orphanedProject()
        defer { project.remove() }
        let mine = project.url("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        for (name, data) in files(project, "out/t") { try data.write(to: mine.appendingPathComponent(name)) }
        let before = files(project, "mine")
        #expect(try BindMounts.run(["build", "-q"], in: project.root, mounting: mine.path, at: "out/t").status == 0)
        let plan = try BindMounts.run(["plan", "--detailed-exitcode"], in: project.root, mounting: mine.path, at: "out/t")
        #expect(plan.status == 0, "\(String(decoding: plan.stdout, as: UTF8.self)) \(plan.stderr)")
        let check = try BindMounts.run(["check"], in: project.root, mounting: mine.path, at: "out/t")
        let said = String(decoding: check.stdout, as: UTF8.self) + check.stderr
        #expect(check.status == 0, "\(said)")
        #expect(!said.contains("delete:") && said.contains("= out/t/landscape.jpg  kept: out/t/landscape.jpg is behind a mount point (out/t)"), "\(said)")
        #expect(files(project, "mine") == before, "the user's folder changed")
    }

    struct PathBytes {
        var bytes: [String: Data] = [:]
        init(_ project: Project, _ paths: [String]) throws {
            for path in paths { bytes[path] = try Data(contentsOf: project.url(path)) }
        }
    }
}
