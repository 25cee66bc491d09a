import Foundation
import Planner
import Testing
import TestSupport

/// A fresh clone (no build state) trusts a lock line's digest for a file at a path today's manifest
/// writes (issues 9 and 13; attack 17's N1, N1b and N5). Outputs are deterministic, so an adopted
/// output is proven by rendering it again: `check --verify` and `build --verify`. Without them the
/// clone's adoption is said (`adopted unverified`); and without a state a lock line replaces or
/// removes a file only when the file's header and digest are the line's.
@Suite(.ownThreads, .serialized) struct FreshCloneVerifyTests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Two widths of one WebP from `landscape.jpg`: `hashed` names them after their bytes.
    static func manifest(hashed: Bool) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: pic
            from: src/*.jpg
            process: image/resize,w_{w}/format,webp
            matrix: {w: [100, 200]}
            to: out/{name}-{w}\(hashed ? ".{hash}" : "").webp
        index: out/index.json

        """
    }

    /// A project built by `manifest(hashed:)`, then made a fresh clone of a repo that commits its
    /// outputs (and the index when `index`): `.derive/` (and `out/index.json`) removed.
    func freshClone(hashed: Bool, index: Bool = false) throws -> Project {
        let project = try Project(index: false)
        for name in project.outputs { try? FileManager.default.removeItem(at: project.url("src/\(name)")) }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: project.url("src/landscape.jpg"))
        try project.write("derive.yaml", Self.manifest(hashed: hashed))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        if !index { try FileManager.default.removeItem(at: project.url("out/index.json")) }
        try FileManager.default.removeItem(at: project.url(".derive"))
        return project
    }

    /// A plain build of the clone (CI that does not commit the index), then its state removed
    /// again: what the next fresh clone of that tree sees.
    func plainBuildThenFreshClone(_ project: Project) throws {
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(text(build.stdout))")
        try FileManager.default.removeItem(at: project.url(".derive"))
    }

    func outputFile(_ project: Project, width: Int) throws -> String {
        try #require(try FileManager.default.contentsOfDirectory(atPath: project.url("out").path)
            .first { $0.hasPrefix("landscape-\(width).") && $0.hasSuffix(".webp") })
    }

    func lockLines(_ project: Project) throws -> [String] {
        try String(contentsOf: project.url("derive.lock"), encoding: .utf8).components(separatedBy: "\n")
    }

    func writeLock(_ project: Project, _ lines: [String]) throws {
        try lines.joined(separator: "\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
    }

    func entry(_ line: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// A pull request's forgery: the 100 px output's file replaced by the 200 px one's bytes (a
    /// real WebP, of another picture than the rule renders) and its lock line given that file's
    /// digest, size and header (`keepNumbers`: the line's width and height left as they were);
    /// `actionKey` replaces the line's action key when given. Returns the forged file's name and bytes.
    @discardableResult
    func forge(_ project: Project, hashed: Bool, keepNumbers: Bool = false, actionKey: String? = nil) throws -> (file: String, bytes: Data) {
        let small = try outputFile(project, width: 100), large = try outputFile(project, width: 200)
        let bytes = try Data(contentsOf: project.url("out/" + large))
        let digest = ContentDigests.digest(bytes)
        var lines = try lockLines(project)
        let index = try #require(lines.firstIndex { $0.contains("\"out/\(small)\"") })
        let largeLine = try entry(try #require(lines.first { $0.contains("\"out/\(large)\"") }))
        var line = try entry(lines[index])
        let name = hashed ? "landscape-100.\(digest.prefix(10)).webp" : small
        line["path"] = "out/" + name
        line["digest"] = digest
        line["bytes"] = bytes.count
        if !keepNumbers { line["width"] = largeLine["width"]; line["height"] = largeLine["height"] }
        if let actionKey { line["actionKey"] = actionKey }
        // The lock's own layout: keys in its order, no spaces.
        let keys = ["path", "actionKey", "digest", "width", "height", "bytes", "format"]
        lines[index] = "{" + keys.compactMap { key -> String? in
            guard let value = line[key] else { return nil }
            return value is String ? "\"\(key)\":\"\(value)\"" : "\"\(key)\":\(value)"
        }.joined(separator: ",") + "}"
        try writeLock(project, lines)
        if hashed { try FileManager.default.removeItem(at: project.url("out/" + small)) }
        try bytes.write(to: project.url("out/" + name))
        return (name, bytes)
    }

    // MARK: N5: a `{hash}` output adopted from a forged line

    /// Attack 17's N5: a line with the rule's real action key naming another picture's WebP
    /// under a `{hash}` name was adopted and `check` said up to date. Plain `check` still trusts
    /// the lock (and now says how many outputs it adopted unverified); `check --verify` renders
    /// them again and names the one that differs; `build --verify` writes the true output and
    /// leaves the forged file (Derive did not write its bytes), after which everything verifies.
    @Test func verifyNamesAForgedHashedOutputAndBuildReplacesIt() throws {
        let project = try freshClone(hashed: true)
        defer { project.remove() }
        let forged = try forge(project, hashed: true)
        try plainBuildThenFreshClone(project)

        let plain = try project.run(["check"])
        #expect(plain.status == 0, "plain check trusts the lock's bytes: \(text(plain.stdout)) \(plain.stderr)")
        #expect(text(plain.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(text(plain.stdout))")

        let check = try project.run(["check", "--verify"])
        #expect(check.status == 1, "\(text(check.stdout)) \(check.stderr)")
        #expect(text(check.stdout).contains("out/\(forged.file)  differs from what rule 'pic' renders from src/landscape.jpg"), "\(text(check.stdout))")
        #expect(!text(check.stdout).contains("landscape-200."), "the true output is not named: \(text(check.stdout))")

        let build = try project.run(["build", "--verify"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "the forged file is not Derive's to delete")
        let rendered = try outputFile(project, width: 100)
        #expect(rendered != forged.file)
        // Dropped as an output; the file is left, so a `left` line keeps it no more public than its rule (round 19's V1).
        #expect(try !lockLines(project).joined().contains(#"{"path":"out/\#(forged.file)""#), "the forged line is dropped")
        let all = try project.run(["check", "--verify-all"])
        #expect(all.status == 0, "\(text(all.stdout)) \(all.stderr)")
        #expect(text(all.stdout).contains("verified 2"), "\(text(all.stdout))")
    }

    // MARK: N1 A: a literal output adopted from a forged line (same action key)

    /// Attack 17's N1 case A: the file at a literal output path replaced (a real WebP of other
    /// bytes) and its line given the file's digest and numbers. `check --verify` names it; `build
    /// --verify` refuses to write over it (Derive did not write those bytes) and says so; with
    /// `--overwrite` it is rendered again.
    @Test func verifyRefusesToOverwriteAForgedLiteralOutputWithoutOverwrite() throws {
        let project = try freshClone(hashed: false)
        defer { project.remove() }
        let original = try Data(contentsOf: project.url("out/landscape-100.webp"))
        let forged = try forge(project, hashed: false)
        try plainBuildThenFreshClone(project)

        #expect(try project.run(["check"]).status == 0)
        let check = try project.run(["check", "--verify", "-j", "2"])
        #expect(check.status == 1)
        #expect(text(check.stdout).contains("out/landscape-100.webp  differs from what rule 'pic' renders from src/landscape.jpg"), "\(text(check.stdout))")

        let build = try project.run(["build", "--verify"])
        #expect(build.status == 1, "\(text(build.stdout))")
        #expect(build.stderr.contains("out/landscape-100.webp") && build.stderr.contains("was not written by Derive")
                && build.stderr.contains("--overwrite"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes)

        let overwrite = try project.run(["build", "--verify", "--overwrite"])
        #expect(overwrite.status == 0, "\(text(overwrite.stdout)) \(overwrite.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == original)
        #expect(try project.run(["check", "--verify-all"]).status == 0)
    }

    /// A forged output a plain build adopted is recorded in the state on the lock's word alone,
    /// marked as adopted: `--verify` and `--verify-all` render it again and name it, and the
    /// build still refuses to write over it without --overwrite (Derive recorded those bytes but
    /// never wrote them).
    @Test func verifyAllNamesAForgedOutputAPlainBuildAdopted() throws {
        let project = try freshClone(hashed: false)
        defer { project.remove() }
        let forged = try forge(project, hashed: false)
        #expect(try project.run(["build", "-q"]).status == 0)
        // The plain build marked both as adopted: `--verify` still renders them again (session 27).
        let verify = try project.run(["check", "--verify"])
        #expect(verify.status == 1 && text(verify.stdout).contains("verified 1 output "), "\(text(verify.stdout))")
        let check = try project.run(["check", "--verify-all"])
        #expect(check.status == 1)
        #expect(text(check.stdout).contains("out/landscape-100.webp  differs from what rule 'pic' renders from src/landscape.jpg"), "\(text(check.stdout))")
        #expect(text(check.stdout).contains("verified 1 output "), "\(text(check.stdout))")
        let build = try project.run(["build", "--verify-all"])
        #expect(build.status == 1, "\(text(build.stdout))")
        #expect(build.stderr.contains("out/landscape-100.webp exists and was not written by Derive: it differs from what rule 'pic' renders"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes)
    }

    /// An untouched fresh clone verifies: every adopted output renders to its file's bytes.
    @Test func anUntouchedFreshCloneVerifies() throws {
        let project = try freshClone(hashed: true, index: true)
        defer { project.remove() }
        let check = try project.run(["check", "--verify"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        #expect(text(check.stdout).contains("verified 2"), "\(text(check.stdout))")
        let build = try project.run(["build", "--verify"])
        #expect(build.status == 0 && text(build.stdout).hasPrefix("built 0,"), "\(text(build.stdout)) \(build.stderr)")
        #expect(!text(build.stdout).contains("unverified"), "\(text(build.stdout))")
    }

    // MARK: N1 B: a forged line with another action key

    /// Attack 17's N1 case B: the line's action key is another (stale), its digest the user's
    /// file's, its width and height left as the rule's. The file's header disagrees with the
    /// line, so it is a user's file: the build refuses to replace it without --overwrite.
    @Test func aStaleLineWhoseHeaderDisagreesDoesNotReplaceTheFile() throws {
        let project = try freshClone(hashed: false)
        defer { project.remove() }
        let forged = try forge(project, hashed: false, keepNumbers: true, actionKey: String(repeating: "0", count: 64))
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout))")
        #expect(build.stderr.contains("out/landscape-100.webp exists and was not written by Derive"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes)
    }

    // The control (a stale line whose header and digest are the file's) is in `GitProofCLITests`:
    // its file is rendered over only when git holds it as it is at HEAD (round 28's H1), refused
    // otherwise.

    // MARK: N1 C: clean without a state

    /// Attack 17's N1 case C: `clean` without a state removed the file a forged line (same key,
    /// the user's digest, the rule's width and height) named. Its header is not the line's: left,
    /// with a warning; Derive's other output is removed.
    @Test func cleanWithoutAStateLeavesAFileWhoseHeaderIsNotTheLines() throws {
        let project = try freshClone(hashed: false)
        defer { project.remove() }
        let forged = try forge(project, hashed: false, keepNumbers: true)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(clean.stderr.contains("out/landscape-100.webp") && clean.stderr.contains("left in place"), "\(clean.stderr)")
        #expect(!project.exists("out/landscape-200.webp"), "Derive's own output is removed")
    }
}
