import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The twelfth round on build safety (issue 9, attack 11's A1 to A5), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound12Tests {
    typealias Project = BuildSafetyAttackTests.Project

    // MARK: A1: an old index named only by the lock is never deleted in a fresh clone

    /// A user's byte-exact copy of the index (a data file of a site generator, a backup), in a
    /// source-only bucket, the output bucket or a bucket no rule touches: kept by plan, build and
    /// clean, each naming it with how to delete it by hand.
    @Test(arguments: ["src/copy.json", "out/backup/index.json", "meta/site-images.json"])
    func aCopyOfTheIndexTheLockNamesIsKeptAndNamed(_ victim: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone
        try FileManager.default.createDirectory(at: project.url(victim).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: project.url("out/index.json"), to: project.url(victim))
        let bytes = try Data(contentsOf: project.url(victim))
        try pointLockHeader(project, at: victim)
        let plan = try project.run(["plan"])
        let planned = text(plan.stdout)
        #expect(!planned.contains("\(victim)  remove"), "\(planned)")
        #expect(planned.contains("! \(victim)  keep:") && planned.contains("delete it by hand"), "\(planned)")
        let build = try project.run(["build"])
        #expect(try Data(contentsOf: project.url(victim)) == bytes, "the build deleted a copy of the index: \(text(build.stdout))")
        #expect(!text(build.stdout).contains("removed \(victim)"), "\(text(build.stdout))")
        #expect(build.stderr.contains(victim) && build.stderr.contains("delete it by hand"), "\(build.stderr)")
        try FileManager.default.removeItem(at: project.url(".derive"))
        try pointLockHeader(project, at: victim)
        let clean = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url(victim)) == bytes, "clean deleted a copy of the index: \(text(clean.stdout))")
        #expect(!text(clean.stdout).contains("the old index"), "\(text(clean.stdout))")
        #expect((text(clean.stdout) + clean.stderr).contains(victim) && clean.stderr.contains("delete it by hand"), "\(clean.stderr)")
    }
}

extension BuildSafetyRound12Tests {
    /// Builds `manifest`, removes the state (a fresh clone), writes a user's file at each path
    /// and adds a lock line for it with its true digest; returns each file's bytes.
    func freshCloneWithUserFiles(_ project: Project, manifest: String, _ entries: [(path: String, format: String)]) throws -> [String: Data] {
        try project.write("derive.yaml", manifest)
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.removeItem(at: project.url(".derive"))
        var bytes: [String: Data] = [:]
        for (path, _) in entries {
            try FileManager.default.createDirectory(at: project.url(path).deletingLastPathComponent(), withIntermediateDirectories: true)
            bytes[path] = Data("user's \(path)\n".utf8)
            try bytes[path]!.write(to: project.url(path))
        }
        try BuildSafetyRound11Tests().injectLock(project, entries)
        return bytes
    }

    // MARK: A2: a {hash:N} slot holds exactly N lowercase hex digits, the file's own SHA-256's first N

    static let hashed = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: m
            from: src/*.jpg
            process: image/resize,w_{w}/format,{f}
            matrix: {w: [40, 60], f: [webp, jpg]}
            to: out/img/{name}-{w}.{hash:8}.{f}

        """

    @Test func lockLinesInAHashSlotMustHoldTheFilesOwnDigest() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let users = [("out/img/u-40.zzzzzzzz.jpg", "jpg"), ("out/img/u-40.0123abc.jpg", "jpg"), ("out/img/u-40.0123abcd0123.jpg", "jpg"),
                     ("out/img/u-40.holiday-photo.jpg", "jpg"), ("out/img/u-40.x.y.jpg", "jpg"), ("out/img/u-40.0123ABCD.webp", "webp"),
                     ("out/img/u-40.0123abcd.jpg", "jpg")]   // hex of the right length, but not the file's digest
        let bytes = try freshCloneWithUserFiles(project, manifest: Self.hashed, users)
        let plan = try project.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        for (path, _) in users {
            #expect(!planText.contains("- \(path)"), "\(planText)")
            #expect(planText.contains("= \(path)  left: known only from derive.lock"), "\(path) not named: \(planText)")
        }
        let build = try project.run(["build"])
        for (path, _) in users { #expect(try Data(contentsOf: project.url(path)) == bytes[path], "\(path) deleted: \(text(build.stdout))") }
        // Derive's own hashed outputs of a source removed in a fresh clone are known only from the
        // lock too: left and named (attack 16's H2: the lock alone deletes nothing).
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.removeItem(at: project.url("src/cmyk.jpg"))
        let hashedOutputs = try FileManager.default.contentsOfDirectory(atPath: project.url("out/img").path).filter { $0.hasPrefix("cmyk-") }
        #expect(hashedOutputs.count == 4, "\(hashedOutputs)")
        let again = try project.run(["build"])
        #expect(again.status == 0, "\(text(again.stdout)) \(again.stderr)")
        for name in hashedOutputs {
            #expect(project.exists("out/img/\(name)"), "\(name) deleted: \(text(again.stdout)) \(again.stderr)")
            #expect(text(again.stdout).contains("= out/img/\(name)  left: known only from derive.lock"), "\(name) not named: \(text(again.stdout))")
        }
    }

    // MARK: A4: a {name} (or {key}) no source can give: empty, or starting with a dot

    @Test func lockLinesForDotNamesNoSourceCanGiveAreRefused() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let manifest = BuildSafetyRound7Tests.manifest(outputs: "out/sub", index: "out/sub/index.json")
        let keyed = manifest.replacingOccurrences(of: "to: out/sub/{name}.{ext}", with: "to: out/sub/{name}.{ext}\n  - name: k\n    from: src/*.jpg\n    process: image/resize,w_20\n    to: out/k/{key}")
        let users = [("out/sub/._a1.jpg", "jpg"), ("out/sub/.jpg", "jpg"), ("out/k/.hid.jpg", "jpg"), ("out/k/._x.jpg", "jpg")]
        let bytes = try freshCloneWithUserFiles(project, manifest: keyed, users)
        let plan = try project.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        for (path, _) in users {
            #expect(!planText.contains("- \(path)"), "\(planText)")
            #expect(planText.contains("= \(path)  left: known only from derive.lock"), "\(path) not named: \(planText)")
        }
        _ = try project.run(["build"])
        for (path, _) in users { #expect(try Data(contentsOf: project.url(path)) == bytes[path], "build deleted \(path)") }
        try FileManager.default.removeItem(at: project.url(".derive"))
        try BuildSafetyRound11Tests().injectLock(project, users)
        _ = try project.run(["clean"])
        for (path, _) in users { #expect(try Data(contentsOf: project.url(path)) == bytes[path], "clean deleted \(path)") }
    }
}

extension BuildSafetyRound12Tests {
    // MARK: A5: build prints a bad source as plan does, `derive: failure:`

    @Test func buildPrintsPerSourceFailuresAsPlanDoes() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("src/txt.jpg", "not an image\n")
        let plan = try project.run(["plan"])
        #expect(plan.stderr.contains("derive: failure: src/txt.jpg: "), "\(plan.stderr)")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("derive: failure: src/txt.jpg: "), "\(build.stderr)")
        #expect(!build.stderr.contains("derive: error: src/txt.jpg"), "\(build.stderr)")
    }
}

extension BuildSafetyRound12Tests {
    /// `state: st` with `st` a link to a folder holding a user's file: clean names the file it keeps.
    @Test func cleanThroughALinkedStateNamesAUsersFileItKeeps() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("real"), withIntermediateDirectories: true)
        #expect(symlink("real", project.url("st").path) == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "derivatives:", with: "state: st\nderivatives:"))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        try project.write("real/user.txt", "mine\n")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stderr.contains("user.txt"), "the kept file is not named: \(text(clean.stdout)) \(clean.stderr)")
        #expect(project.exists("real/user.txt"))
    }
}
