import Foundation
import GRDB
import Testing
import TestSupport

/// Attack round 31's F5: a state made before v11 records no owner place (`owner.place` empty),
/// and the shared-state refusal skipped it: `b/derive.yaml` naming the `state:` folder of
/// `a/derive.yaml` (another folder) claimed a's state, moving it aside with every record, so a's
/// outputs were no longer a's and a was refused from then on. An empty place is claimed only
/// when nothing says the state is another's: a state this user's Derive sealed at this path,
/// recorded for another manifest that is still there, is that manifest's, and is refused
/// without writing, naming both and the fix.
@Suite(.ownThreads, .serialized) struct EmptyOwnerPlaceRound31Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Gaps28 = StateSharedAcrossFoldersGaps28Tests

    func contents(_ folder: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            result[name] = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) ?? Data()
        }
        return result
    }

    /// The state as Derive before v11 left it: no place recorded for its owner.
    static func clearPlace(_ database: URL) throws -> String? {
        let queue = try DatabaseQueue(path: database.path, configuration: .patientTest)
        defer { try? queue.close() }
        return try queue.write { db in
            try db.execute(sql: "UPDATE owner SET place = ''")
            return try String.fetchOne(db, sql: "SELECT manifest FROM owner")
        }
    }

    static func place(_ database: URL) throws -> String? {
        let queue = try DatabaseQueue(path: database.path, configuration: .patientTest)
        defer { try? queue.close() }
        return try queue.read { db in try String.fetchOne(db, sql: "SELECT place FROM owner") }
    }

    @Test func anotherFoldersManifestCannotClaimAStateWithoutAPlace() throws {
        let site = try Site(["a/src/a.jpg": "landscape.jpg", "b/src/b.jpg": "landscape.jpg"], manifest: nil)
        defer { site.remove() }
        try Data(Gaps28.manifest(out: "out", state: "../st").utf8).write(to: site.url("a/derive.yaml"))
        try Data(Gaps28.manifest(out: "out", state: "../st").utf8).write(to: site.url("b/derive.yaml"))
        let a = site.url("a"), b = site.url("b")
        #expect(try CLI.run(["build", "-q"], in: a).status == 0)
        let owner = try Self.clearPlace(site.url("st/state.sqlite"))
        #expect(owner?.hasSuffix("/a/derive.yaml") == true, "\(owner ?? "none")")
        let before = contents(site.url("st"))
        let output = try #require(FileManager.default.contents(atPath: site.url("a/out/a.jpg").path))
        for command in [["build", "-q"], ["plan"], ["check"], ["clean"], ["build"]] {
            let result = try CLI.run(command, in: b)
            #expect(result.status == 1, "\(command): \(said(result))")
            let text = said(result)
            #expect(text.contains("/b/derive.yaml") && text.contains("/a/derive.yaml") && text.contains("'state:'"), "\(command): \(text)")
            #expect(contents(site.url("st")) == before, "\(command): \(contents(site.url("st")).keys.sorted())")
            #expect(FileManager.default.contents(atPath: site.url("a/out/a.jpg").path) == output, "\(command)")
            #expect(!FileManager.default.fileExists(atPath: site.url("b/out/b.jpg").path), "\(command)")
        }
        // a's state is still a's: its build answers from its records, and records its place.
        let again = try CLI.run(["build"], in: a)
        #expect(again.status == 0 && String(decoding: again.stdout, as: UTF8.self).contains("up to date"), "\(said(again))")
        #expect(!said(again).contains("moved"), "\(said(again))")
        #expect(try Self.place(site.url("st/state.sqlite")) == "../a/derive.yaml")
    }

    /// The state's own manifest claims its empty place as before: nothing says it is another's.
    @Test func itsOwnManifestClaimsAnEmptyPlace() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Gaps28.manifest(out: "out", state: nil))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        _ = try Self.clearPlace(site.url(".derive/derive/state.sqlite"))
        let build = try site.run(["build"])
        #expect(build.status == 0 && String(decoding: build.stdout, as: UTF8.self).contains("up to date"), "\(said(build))")
        #expect(try Self.place(site.url(".derive/derive/state.sqlite")) == "../../derive.yaml")
    }
}
