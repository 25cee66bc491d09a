import Builder
import Foundation
import GRDB
import Manifest
import Planner
import Testing
import TestSupport

/// Issue 9/15 leftovers (round 39): an unnamed rule was called `rule at FILE:LINE` with FILE the
/// manifest's path as typed, so `derive build /abs/derive.yaml` then `derive plan derive.yaml`
/// called every record's rule renamed and rewrote them all (3 998 of 4 000). Its name is now its
/// file relative to the manifest's folder, whatever the spelling, and an older Derive's records
/// (a name holding the path as it was typed then) are read as the rule's name of now.
@Suite(.ownThreads, .serialized) struct UnnamedRuleNamesRound39Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: out/index.json
        include: rules/more.yaml
        derivatives:
          - from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}

        """
    static let included = """
        derivatives:
          - from: src/*.jpg
            process: image/resize,w_24
            to: out/small/{name}.{ext}

        """

    /// A project in `outer/site` (the manifest beside `src/`, one rule in it and one in an
    /// include) and `outer/link`, a symbolic link to `site`.
    struct Site {
        let outer: URL
        var root: URL { outer.appendingPathComponent("site") }
        init() throws {
            outer = try CLI.temporaryFolder()
            let root = outer.appendingPathComponent("site")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("rules"), withIntermediateDirectories: true)
            for name in ["landscape.jpg", "orientation-1.jpg", "cmyk.jpg"] {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: root.appendingPathComponent("src/" + name))
            }
            try Data(UnnamedRuleNamesRound39Tests.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
            try Data(UnnamedRuleNamesRound39Tests.included.utf8).write(to: root.appendingPathComponent("rules/more.yaml"))
            try FileManager.default.createSymbolicLink(atPath: outer.appendingPathComponent("link").path, withDestinationPath: "site")
        }
        func remove() { try? FileManager.default.removeItem(at: outer) }
        var database: String { root.appendingPathComponent(".derive/derive/state.sqlite").path }

        /// Every outputs row as stored, whole (every column), by path: a record rewritten changes.
        func rows() throws -> [String] {
            try DatabaseQueue(path: database, configuration: .patientTest).read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM outputs ORDER BY path").map { row in
                    row.columnNames.map { "\($0)=\(row[$0] as DatabaseValue)" }.joined(separator: " ")
                }
            }
        }
        func rules() throws -> [String] {
            try DatabaseQueue(path: database, configuration: .patientTest).read { db in try String.fetchAll(db, sql: "SELECT rule FROM outputs ORDER BY path") }
        }
        func index() throws -> String { try String(contentsOf: root.appendingPathComponent("out/index.json"), encoding: .utf8) }
    }

    static let names = ["rule at derive.yaml:8", "rule at rules/more.yaml:2"]

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Built by its absolute path, the project is up to date by every other spelling: the
    /// manifest's name from its folder, `./derive.yaml`, a relative path from elsewhere, a path
    /// through a linked folder, and `derive plan` with no manifest named.
    @Test func everySpellingOfTheManifestNamesTheSameRules() throws {
        let site = try Site()
        defer { site.remove() }
        let absolute = site.root.appendingPathComponent("derive.yaml").path
        let build = try CLI.run(["build", "-q", absolute], in: site.outer)
        #expect(build.status == 0, "\(build.stderr)")
        let built = try site.rules()
        #expect(Set(built) == Set(Self.names) && built.count == 6, "\(built)")
        let rows = try site.rows()
        let index = try site.index()
        #expect(index.contains("\"rule\": \"rule at derive.yaml:8\""), "\(index)")
        let spellings: [(folder: URL, manifest: [String])] = [
            (site.root, ["derive.yaml"]), (site.root, ["./derive.yaml"]), (site.root, []),
            (site.outer, ["site/derive.yaml"]), (site.outer, ["./site/../site/derive.yaml"]),
            (site.outer, ["link/derive.yaml"]), (site.outer.appendingPathComponent("link"), ["derive.yaml"]),
        ]
        for (folder, manifest) in spellings {
            let plan = try CLI.run(["plan", "--detailed-exitcode"] + manifest, in: folder)
            #expect(plan.status == 0, "\(manifest) in \(folder.lastPathComponent): \(text(plan.stdout)) \(plan.stderr)")
            #expect(!text(plan.stdout).contains("update"), "\(manifest): \(text(plan.stdout))")
            let json = try CLI.run(["plan", "--json"] + manifest, in: folder)
            let object = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
            let items = object?["items"] as? [[String: Any]] ?? []
            let summary = object?["summary"] as? [String: Any] ?? [:]
            #expect(json.status == 0 && !items.contains { $0["kind"] as? String == "update" }, "\(manifest): \(text(json.stdout))")
            for kind in ["create", "rebuild", "update", "delete"] { #expect(summary[kind] as? Int == 0, "\(manifest): \(kind) in \(summary)") }
            let again = try CLI.run(["build"] + manifest, in: folder)
            #expect(again.status == 0, "\(manifest): \(again.stderr)")
            #expect(!text(again.stdout).contains("updated"), "\(manifest): \(text(again.stdout))")
            let check = try CLI.run(["check"] + manifest, in: folder)
            #expect(check.status == 0, "\(manifest): \(text(check.stdout)) \(check.stderr)")
            // No record rewritten, the index as it was.
            #expect(try site.rows() == rows, "\(manifest) rewrote records")
            #expect(try site.index() == index, "\(manifest) rewrote the index")
        }
    }

    /// A state an older Derive wrote, its unnamed rules named by the manifest's path as typed then
    /// (absolute, `./`, through a linked folder): the same rules, nothing to update or render,
    /// nothing orphaned, no reason given; the index lists today's names.
    @Test(arguments: [
        ["SITE/derive.yaml", "SITE/rules/more.yaml"],
        ["./derive.yaml", "./rules/more.yaml"],
        ["LINK/derive.yaml", "LINK/rules/../rules/more.yaml"],
        ["../site/derive.yaml", "rules/more.yaml"],
    ])
    func anOlderDerivesNamesAreTheSameRules(typed: [String]) throws {
        let site = try Site()
        defer { site.remove() }
        #expect(try CLI.run(["build", "-q"], in: site.root).status == 0)
        let typed = typed.map {
            $0.replacingOccurrences(of: "SITE", with: site.root.path).replacingOccurrences(of: "LINK", with: site.outer.appendingPathComponent("link").path)
        }
        // The records as an older Derive wrote them (sealed by this user's Derive, as it sealed them).
        let manifestPath = site.root.appendingPathComponent("derive.yaml").path
        do {
            let store = try StateStore(folder: site.root.appendingPathComponent(".derive/derive").path, owner: BuildSession.ownerName(manifestPath))
            for var record in try store.allOutputs().values {
                record.rule = record.rule == Self.names[0] ? "rule at \(typed[0]):8" : "rule at \(typed[1]):2"
                try store.updateOutput(record)
            }
        }
        let older = try site.rules()
        #expect(Set(older) == Set(["rule at \(typed[0]):8", "rule at \(typed[1]):2"]), "\(older)")
        let rows = try site.rows()
        let plan = try CLI.run(["plan", "--detailed-exitcode"], in: site.root)
        #expect(plan.status == 0, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(!text(plan.stdout).contains("rule '"), "\(text(plan.stdout))")
        let build = try CLI.run(["build", manifestPath], in: site.outer)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!text(build.stdout).contains("built"), "\(text(build.stdout))")
        #expect(!text(build.stdout).contains("updated") && !text(build.stdout).contains("deleted"), "\(text(build.stdout))")
        #expect(try site.rows() == rows, "the records are read as today's names, not rewritten")
        let check = try CLI.run(["check"], in: site.root)
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        let index = try site.index()
        #expect(!index.contains(site.root.path), "\(index)")
        for name in Self.names { #expect(index.contains("\"rule\": \"\(name)\""), "\(index)") }
    }

    /// The names read through `RecordedRuleNames`: an older spelling of a rule's place is that
    /// rule's; another line, another file, or a place two rules fit alike is not.
    @Test func olderSpellingsReadAsTheRuleOfNow() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("rules"), withIntermediateDirectories: true)
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try Data(Self.included.utf8).write(to: folder.appendingPathComponent("rules/more.yaml"))
        var loader = ManifestLoader()
        loader.crossChecks = false
        let loaded = loader.load(folder.appendingPathComponent("derive.yaml").path)
        let manifest = try #require(loaded.manifest, "\(loaded.diagnostics.all)")
        #expect(Set(manifest.rules.map(\.planName)) == Set(Self.names))
        let names = RecordedRuleNames(manifest.rules)
        #expect(names.current("rule at /x/y/derive.yaml:8") == Self.names[0])
        #expect(names.current("rule at derive.yaml:8") == Self.names[0])
        #expect(names.current("rule at ./derive.yaml:8") == Self.names[0])
        #expect(names.current("rule at ../site/./derive.yaml:8") == Self.names[0])
        #expect(names.current("rule at /x/site/rules/more.yaml:2") == Self.names[1])
        #expect(names.current("rule at site/rules/x/../more.yaml:2") == Self.names[1])
        #expect(names.current("rule at /x/derive.yaml:9") == "rule at /x/derive.yaml:9")
        #expect(names.current("rule at /x/other.yaml:8") == "rule at /x/other.yaml:8")
        #expect(names.current("rule at /x/more.yaml:2") == "rule at /x/more.yaml:2")
        #expect(names.current("thumbs") == "thumbs")
    }
}
