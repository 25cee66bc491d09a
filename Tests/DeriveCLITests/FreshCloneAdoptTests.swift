import Foundation
import Planner
import Testing
import TestSupport

/// What a fresh clone (no build state) adopts from `derive.lock` and the index must be true
/// (issue 13, verify 16's M6 and V4), end to end through the binary: the lock's numbers and the
/// index's summaries come from the clone, so they are measured and rendered again, never taken.
@Suite(.ownThreads, .serialized) struct FreshCloneAdoptTests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static let matrixManifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: pic
            from: src/*.jpg
            process: image/resize,w_{w}/format,{f}
            matrix: {w: [100, 200], f: [webp, jpg]}
            to: out/{name}-{w}.{hash}.{f}
        index: out/index.json

        """

    /// A project of `landscape.jpg` (1200x800) built by `manifest`, its state removed afterwards.
    func builtProject(_ manifest: String = Self.matrixManifest, files: [String] = ["landscape.jpg"]) throws -> Project {
        let project = try Project(index: false)
        for name in project.outputs { try? FileManager.default.removeItem(at: project.url("src/\(name)")) }
        for name in files {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: project.url("src/\(name)"))
        }
        try project.write("derive.yaml", manifest)
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        return project
    }

    func lock(_ project: Project) throws -> String { try String(contentsOf: project.url("derive.lock"), encoding: .utf8) }

    /// The file of the 100 px WebP and its lock line edited by `edit`.
    func forgeWebPLine(_ project: Project, _ edit: (String) -> String) throws -> (file: String, bytes: Int) {
        let lines = try lock(project).components(separatedBy: "\n")
        let index = try #require(lines.firstIndex { $0.contains("landscape-100.") && $0.contains(#""format":"webp""#) })
        var edited = lines
        edited[index] = edit(lines[index])
        #expect(edited[index] != lines[index], "the edit changed nothing: \(lines[index])")
        try edited.joined(separator: "\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
        let path = try #require(try FileManager.default.contentsOfDirectory(atPath: project.url("out").path)
            .first { $0.hasPrefix("landscape-100.") && $0.hasSuffix(".webp") })
        let size = try #require(try FileManager.default.attributesOfItem(atPath: project.url("out/" + path).path)[.size] as? Int)
        return (path, size)
    }

    static func forgeDimensions(_ line: String) -> String {
        line.replacingOccurrences(of: #""width":100,"height":67,"bytes":[0-9]+"#, with: #""width":4000,"height":1,"bytes":1"#,
                                  options: .regularExpression)
    }

    func picture(_ project: Project) throws -> [String: Any] {
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: project.url("out/index.json"))) as? [String: Any])
        let sources = try #require(index["sources"] as? [String: Any])
        let source = try #require(sources["src/landscape.jpg"] as? [String: Any])
        return source
    }

    // MARK: M6: a lock line's width, height, bytes and format

    /// Verify 16's M6: a lock line saying `width:4000,height:1,bytes:1` for the 100x67 WebP
    /// (its digest untouched, so the file "matches"; the index not committed) was adopted as it
    /// was: `4000w` in the srcset, the false numbers kept in the rewritten lock, and `check` clean.
    /// Now the numbers come from the file (its header and its size): `check` names the
    /// disagreement, the build writes the true values in the lock and the index.
    @Test func aLockLineWithFalseDimensionsIsCorrectedNotAdopted() throws {
        let project = try builtProject()
        defer { project.remove() }
        let original = try lock(project)
        let webp = try forgeWebPLine(project, Self.forgeDimensions)
        try FileManager.default.removeItem(at: project.url("out/index.json"))   // generated, not committed
        try FileManager.default.removeItem(at: project.url(".derive"))           // a fresh clone

        let check = try project.run(["check"])
        #expect(check.status != 0, "a lock line that disagrees with its file is not up to date: \(text(check.stdout))")
        #expect(text(check.stdout).contains("4000x1") && text(check.stdout).contains("100x67"), "\(text(check.stdout))")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).hasPrefix("built 0,"), "nothing is rendered for it: \(text(build.stdout))")
        let rewritten = try lock(project)
        #expect(rewritten == original, "the lock keeps the false numbers: \(rewritten)")
        let source = try picture(project)
        let derivatives = try #require(source["derivatives"] as? [[String: Any]])
        let entry = try #require(derivatives.first { ($0["path"] as? String)?.hasSuffix(webp.file) == true })
        #expect(entry["width"] as? Int == 100 && entry["height"] as? Int == 67 && entry["bytes"] as? Int == webp.bytes, "\(entry)")
        let html = try #require((source["pictures"] as? [String: Any])?["pic"] as? [String: Any])["html"] as? String
        #expect(html?.contains("4000w") == false && html?.contains("\(webp.file) 100w") == true, "\(html ?? "")")
        let after = try project.run(["check"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
    }

    /// The same line with the index kept as the first build wrote it (the true 100 px): the
    /// index is not refused as a user's file, and it and the lock end as the first build wrote them.
    @Test func aLockLineWithFalseDimensionsBesideTheTrueIndex() throws {
        let project = try builtProject()
        defer { project.remove() }
        let original = try lock(project)
        let index = try Data(contentsOf: project.url("out/index.json"))
        _ = try forgeWebPLine(project, Self.forgeDimensions)
        try FileManager.default.removeItem(at: project.url(".derive"))
        #expect(try project.run(["check"]).status != 0)
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try lock(project) == original)
        #expect(try Data(contentsOf: project.url("out/index.json")) == index)
        #expect(try project.run(["check"]).status == 0)
    }

    /// A lock line naming another format for the file (`png` for a WebP) is corrected as well.
    @Test func aLockLineWithAFalseFormatIsCorrected() throws {
        let project = try builtProject()
        defer { project.remove() }
        let original = try lock(project)
        _ = try forgeWebPLine(project) { $0.replacingOccurrences(of: #""format":"webp""#, with: #""format":"png""#) }
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        let check = try project.run(["check"])
        #expect(check.status != 0 && text(check.stdout).contains("png"), "\(text(check.stdout))")
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(try lock(project) == original)
        #expect(try String(contentsOf: project.url("out/index.json"), encoding: .utf8).contains("\"format\": \"png\"") == false)
    }

    // MARK: V4: the index's colour, placeholder and ThumbHash

    static let placeholderManifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: out/index.json
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}
            placeholder: true

        """

    /// Verify 16's V4: values of Derive's very shape but false (another source's colour,
    /// placeholder and ThumbHash; `#ff0000`), planted in the index with the lock's `indexDigest`
    /// set to the edited bytes, were kept by a fresh clone and `check` said up to date. A fresh
    /// clone now renders each source's summaries again and compares: `check` fails, the build
    /// writes the true values.
    @Test(arguments: ["color", "swap"])
    func aFreshCloneDoesNotTrustTheIndexSummaries(_ forgery: String) throws {
        let project = try builtProject(Self.placeholderManifest, files: ["landscape.jpg", "portrait.jpg"])
        defer { project.remove() }
        let original = try Data(contentsOf: project.url("out/index.json"))
        // Edited as text (a hand edit, a merge): the file stays exactly of Derive's layout.
        let index = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        let sources = try #require(index["sources"] as? [String: [String: Any]])
        let landscape = try #require(sources["src/landscape.jpg"]), portrait = try #require(sources["src/portrait.jpg"])
        var edited = text(original)
        func swap(_ a: String, _ b: String) {
            edited = edited.replacingOccurrences(of: a, with: "\u{1}").replacingOccurrences(of: b, with: a).replacingOccurrences(of: "\u{1}", with: b)
        }
        let colours = (try #require(landscape["color"] as? String), try #require(portrait["color"] as? String))
        #expect(colours.0 != colours.1)
        if forgery == "color" {
            edited = edited.replacingOccurrences(of: "\"color\": \"\(colours.0)\"", with: "\"color\": \"#ff0000\"")
        } else {
            swap("\"color\": \"\(colours.0)\"", "\"color\": \"\(colours.1)\"")
            let a = try #require(landscape["placeholder"] as? [String: String]), b = try #require(portrait["placeholder"] as? [String: String])
            swap(try #require(a["src"]), try #require(b["src"]))
            swap(try #require(a["thumbhash"]), try #require(b["thumbhash"]))
        }
        let forged = Data(edited.utf8)
        #expect(forged != original)
        try forged.write(to: project.url("out/index.json"))
        var lockText = try self.lock(project)
        let digest = try #require(lockText.range(of: #""indexDigest":"[0-9a-f]{64}""#, options: .regularExpression))
        lockText.replaceSubrange(digest, with: #""indexDigest":"\#(ContentDigests.digest(forged))""#)
        try lockText.write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: project.url(".derive"))

        let check = try project.run(["check"])
        #expect(check.status != 0, "an index with false summaries is not up to date: \(text(check.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).hasPrefix("built 0,"), "\(text(build.stdout))")
        let rebuilt = try Data(contentsOf: project.url("out/index.json"))
        #expect(rebuilt == original, "the planted values were kept: \(text(rebuilt))")
        let after = try project.run(["check"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
    }

    /// An untouched fresh clone: `check` renders the summaries, finds the index true and passes;
    /// the build renders no output and leaves the index and the lock byte for byte.
    @Test func anUntouchedFreshCloneIsUpToDate() throws {
        let project = try builtProject(Self.placeholderManifest, files: ["landscape.jpg", "portrait.jpg"])
        defer { project.remove() }
        let index = try Data(contentsOf: project.url("out/index.json"))
        let original = try lock(project)
        try FileManager.default.removeItem(at: project.url(".derive"))
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).hasPrefix("built 0,"), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/index.json")) == index)
        #expect(try lock(project) == original)
    }
}
