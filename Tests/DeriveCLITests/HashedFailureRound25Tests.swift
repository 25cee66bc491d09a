import Foundation
import Testing
import TestSupport

/// Attack 25 (issue 13's second finding): a `{hash}` output whose build failed was deleted as an
/// orphan, while a plain-named output in the same situation is kept. The old hashed file, its
/// lock line and its index entry went, so the source's picture left the site. Three triggers:
/// damage inside a source's data (seen only when the build decodes it), a `budget:` breach, and
/// a missing watermark object (which `plan` even called "no longer produced by the manifest").
/// A failed `{hash}` output now keeps its previous file as a plain one does; the next build after
/// the cause is fixed replaces it normally.
@Suite(.ownThreads, .serialized) struct HashedFailureRound25Tests {
    /// One source `src/a.jpg`, a `{hash}` rule and a plain-named rule with the same chain.
    final class Project {
        let root: URL
        init(process: String = "image/resize,w_100/format,webp", budget: String? = nil, watermark: Bool = false) throws {
            root = try CLI.temporaryFolder()
            try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url("src/a.jpg"))
            if watermark {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("logo-alpha.png"), to: url("src/logo.png"))
            }
            try write(process: process, budget: budget)
        }
        deinit { try? FileManager.default.removeItem(at: root) }

        func write(process: String, budget: String? = nil) throws {
            let limit = budget.map { "\n    budget: \($0)" } ?? ""
            try Data("""
            version: 1
            buckets:
              src: {path: src, acl: private}
              site: {path: site, acl: public-read}
            derivatives:
              - name: hashed
                from: src/*.jpg
                process: \(process)
                to: site/hashed/{name}.{hash}.webp
                acl: public-read\(limit)
              - name: plain
                from: src/*.jpg
                process: \(process)
                to: site/plain/{name}.webp
                acl: public-read\(limit)
            index: site/index.json

            """.utf8).write(to: url("derive.yaml"))
        }

        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }
        /// The `{hash}` outputs on disk (`site/hashed/…`), by name.
        var hashed: [String: Data] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url("site/hashed").path)) ?? []
            var found: [String: Data] = [:]
            for name in names where name.hasSuffix(".webp") { found[name] = try? Data(contentsOf: url("site/hashed/" + name)) }
            return found
        }
        var lock: String { (try? String(contentsOf: url("derive.lock"), encoding: .utf8)) ?? "" }
        /// The `path`s the index lists for `src/a.jpg` (empty when the source is not listed).
        var indexed: [String] {
            guard let data = try? Data(contentsOf: url("site/index.json")),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let sources = json["sources"] as? [String: Any], let source = sources["src/a.jpg"] as? [String: Any],
                  let derivatives = source["derivatives"] as? [[String: Any]] else { return [] }
            return derivatives.compactMap { $0["path"] as? String }.sorted()
        }

        /// Built once (exit 0): the one `{hash}` file's name and bytes.
        func built() throws -> (name: String, bytes: Data) {
            let build = try run(["build", "-q"])
            #expect(build.status == 0, "\(build.stderr)")
            let outputs = hashed
            #expect(outputs.count == 1, "\(outputs.keys.sorted())")
            let (name, bytes) = try #require(outputs.first)
            #expect(indexed == ["site/hashed/" + name, "site/plain/a.webp"])
            return (name, bytes)
        }

        /// After a failed build: the old `{hash}` file is there with its bytes, the lock still
        /// lists it, and so does the index, beside the plain-named output (also kept).
        func expectKept(_ old: (name: String, bytes: Data), after build: CLI.Result) {
            #expect(build.status == 1, "\(build.stderr)")
            #expect(hashed == [old.name: old.bytes], "the previous {hash} output was not kept: \(hashed.keys.sorted()); \(build.stderr)")
            #expect(FileManager.default.fileExists(atPath: url("site/plain/a.webp").path))
            #expect(lock.contains("\"path\":\"site/hashed/\(old.name)\""), "the lock dropped it:\n\(lock)")
            #expect(indexed == ["site/hashed/" + old.name, "site/plain/a.webp"], "the index dropped it: \(indexed)")
            #expect(!(text(build.stdout) + build.stderr).contains("deleted"), "\(text(build.stdout))\n\(build.stderr)")
        }
    }

    /// Garbled bytes inside the JPEG scan (header and end-of-image intact): `plan` cannot see it,
    /// the build fails decoding and keeps both old outputs; a good source then replaces the
    /// hashed one under its new name, the old file removed as an orphan.
    @Test func aSourceDamagedInsideItsDataKeepsTheHashedOutput() throws {
        let project = try Project()
        let old = try project.built()
        var bytes = try Data(contentsOf: project.url("src/a.jpg"))
        for index in bytes.count / 2 ..< bytes.count / 2 + 2000 { bytes[index] ^= 0x55 }
        try bytes.write(to: project.url("src/a.jpg"))
        let build = try project.run(["build"])
        #expect(build.stderr.contains("corrupt"), "\(build.stderr)")
        project.expectKept(old, after: build)

        // Fixed with another picture: the new hashed output replaces the kept one.
        try FileManager.default.removeItem(at: project.url("src/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("src/a.jpg"))
        let fixed = try project.run(["build"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let now = project.hashed
        #expect(now.count == 1 && now[old.name] == nil, "\(now.keys.sorted())")
        #expect(project.indexed == ["site/hashed/" + (now.keys.first ?? "?"), "site/plain/a.webp"])
        #expect(!project.lock.contains(old.name))
    }

    /// A watermark object gone missing: `plan` names the failure and deletes nothing (it called
    /// the hashed file "no longer produced by the manifest"), `build` keeps the file, its lock line
    /// and its index entry, `check` does not call it unproduced; the object back, all is up to date.
    @Test func aMissingWatermarkObjectKeepsTheHashedOutput() throws {
        let project = try Project(process: "image/resize,w_200/watermark,image_bG9nby5wbmc,g_se/format,webp", watermark: true)
        let old = try project.built()
        let aside = project.url("logo.aside")
        try FileManager.default.moveItem(at: project.url("src/logo.png"), to: aside)

        let plan = try project.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(planText.contains("the watermark object 'logo.png' does not exist"), "\(planText)")
        #expect(!planText.contains("no longer produced by the manifest"), "\(planText)")
        #expect(!planText.contains("- site/hashed/\(old.name)"), "\(planText)")
        #expect(planText.contains("0 to delete"), "\(planText)")

        let build = try project.run(["build"])
        project.expectKept(old, after: build)

        let check = try project.run(["check"])
        let checkText = text(check.stdout) + check.stderr
        #expect(!checkText.contains("not produced by the manifest"), "\(checkText)")

        try FileManager.default.moveItem(at: aside, to: project.url("src/logo.png"))
        let back = try project.run(["build"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(project.hashed == [old.name: old.bytes])
        #expect(project.indexed == ["site/hashed/" + old.name, "site/plain/a.webp"])
    }

    /// A style change whose render breaks the rule's `budget:`: not written, and the previous
    /// build's file of that output stays as it was, `{hash}` name or not.
    @Test func aBudgetBreachKeepsTheHashedOutput() throws {
        let project = try Project(budget: "{max_bytes: 3000}")
        let old = try project.built()
        try project.write(process: "image/resize,w_400/format,webp", budget: "{max_bytes: 3000}")
        let build = try project.run(["build"])
        #expect(build.stderr.contains("over its budget max_bytes 3000"), "\(build.stderr)")
        project.expectKept(old, after: build)

        // The budget raised: the new render replaces the kept file under its own name.
        try project.write(process: "image/resize,w_400/format,webp", budget: "{max_bytes: 1000000}")
        let fixed = try project.run(["build"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let now = project.hashed
        #expect(now.count == 1 && now[old.name] == nil, "\(now.keys.sorted())")
        #expect(!project.lock.contains(old.name))
    }
}
