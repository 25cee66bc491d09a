import Foundation
import Testing
import TestSupport

/// Gaps 28, 1: two manifests in different folders whose `state:` folders are one folder
/// (`a/derive.yaml` and `b/derive.yaml` both with `state: ../st`, or one through a link to
/// it). The validator finds only neighbours in one folder (and the manifest whose default
/// state folder another names), so
/// each build moved the other's state aside as foreign, for ever (its records lost, the witness
/// and renders shared). The state records where its manifest lies relative to the state folder:
/// a state recorded for a manifest at another place, while that manifest is still there, is
/// refused, naming both, before anything is written. A project moved or copied with its state
/// keeps working.
@Suite(.ownThreads) struct StateSharedAcrossFoldersGaps28Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(out: String, state: String?) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(out)}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_40
            to: out/{name}.jpg

        """ + (state.map { "state: \($0)\n" } ?? "")
    }

    /// The state folder's names and each file's bytes.
    func contents(_ folder: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            result[name] = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) ?? Data()
        }
        return result
    }

    /// `a/derive.yaml` with `state: ../st`, `b/derive.yaml` naming the same folder (`state`
    /// spells it: `../st`, or `../lnk` through a link to it): neither manifest's folder tells
    /// the validator of the other.
    func project(state: String) throws -> Site {
        let site = try Site(["a/src/a.jpg": "landscape.jpg", "b/src/b.jpg": "landscape.jpg"], manifest: nil)
        try Data(Self.manifest(out: "out", state: "../st").utf8).write(to: site.url("a/derive.yaml"))
        try Data(Self.manifest(out: "out", state: state).utf8).write(to: site.url("b/derive.yaml"))
        try FileManager.default.createSymbolicLink(atPath: site.url("lnk").path, withDestinationPath: "st")
        return site
    }

    @Test(arguments: ["../st", "../lnk", "../st/../st"])
    func aStateFolderSharedAcrossFoldersIsRefusedNamingBothAndWritingNothing(state: String) throws {
        let site = try project(state: state)
        defer { site.remove() }
        let a = site.url("a"), b = site.url("b")
        let first = try CLI.run(["build", "-q"], in: a)
        #expect(first.status == 0, "\(said(first))")
        let stateFolder = site.url("st")
        let before = contents(stateFolder)
        #expect(before["state.sqlite"] != nil, "\(before.keys.sorted())")
        for command in [["build", "-q"], ["plan"], ["check"], ["clean"]] {
            let result = try CLI.run(command, in: b)
            #expect(result.status == 1, "\(command): \(said(result))")
            let text = said(result)
            #expect(text.contains("/b/derive.yaml") && text.contains("/a/derive.yaml") && text.contains("state:"), "\(command): \(text)")
            #expect(contents(stateFolder) == before, "\(command): \(contents(stateFolder).keys.sorted())")
            #expect(!FileManager.default.fileExists(atPath: site.url("b/out/b.jpg").path))
        }
        // The manifest the state belongs to goes on as before.
        let again = try CLI.run(["build"], in: a)
        #expect(again.status == 0, "\(said(again))")
        #expect(!said(again).contains("moved"), "\(said(again))")
        #expect(!contents(stateFolder).keys.contains { $0.contains("foreign") })
    }

    /// Moved or copied with its state (a state folder inside the project): the same manifest at
    /// the same place beside its state, so it builds as before.
    @Test(arguments: [false, true])
    func aProjectMovedOrCopiedWithItsStateStillBuilds(copied: Bool) throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(out: "out", state: nil))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let moved = try CLI.temporaryFolder().appendingPathComponent("moved")
        defer { try? FileManager.default.removeItem(at: moved.deletingLastPathComponent()) }
        if copied {
            try FileManager.default.copyItem(at: site.root, to: moved)
        } else {
            try FileManager.default.moveItem(at: site.root, to: moved)
        }
        let build = try CLI.run(["build"], in: moved)
        #expect(build.status == 0, "\(said(build))")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: moved.appendingPathComponent("src/c.jpg"))
        let next = try CLI.run(["build"], in: moved)
        #expect(next.status == 0, "\(said(next))")
        #expect(FileManager.default.fileExists(atPath: moved.appendingPathComponent("out/c.jpg").path))
        #expect(try CLI.run(["check"], in: moved).status == 0)
    }

    /// A state folder outside the project, the project moved (its old manifest gone): not shared,
    /// so the state is moved aside as before and the build adopts from the lock.
    @Test func aProjectMovedAwayFromAnOutsideStateFolderStillBuilds() throws {
        let outside = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outside) }
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(out: "out", state: outside.appendingPathComponent("st").path))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let moved = try CLI.temporaryFolder().appendingPathComponent("moved")
        defer { try? FileManager.default.removeItem(at: moved.deletingLastPathComponent()) }
        try FileManager.default.moveItem(at: site.root, to: moved)
        let build = try CLI.run(["build"], in: moved)
        #expect(build.status == 0, "\(said(build))")
        #expect(try CLI.run(["check"], in: moved).status == 0)
    }
}
