import Foundation
import Testing
import TestSupport

/// A leftover of atk37b (issue #13): `derive init` named a leftover derive.lock but not the
/// `.derive/derive` state folder an earlier project here left, whose records the first build of
/// the new manifest would take for its own. init names it, says what to do, and writes nothing.
@Suite(.ownThreads) struct InitLeftoverStateRound38Tests {
    @Test func aLeftoverStateFolderIsNamedAndInitWritesNothing() throws {
        let (folder, _) = try InitFirstBuildRound37bTests.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        // An earlier project here: built, then started over without removing its state folder.
        let initialised = try CLI.run(["init", "photos"], in: folder)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(built.stderr)\(text(built.stdout))")
        for name in ["derive.yaml", "derive.lock", "_site"] { try FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
        let state = folder.appendingPathComponent(".derive/derive/state.sqlite")
        let before = try Data(contentsOf: state)

        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status != 0, "\(text(result.stdout))")
        #expect(result.stderr.contains(".derive/derive is here"), "\(result.stderr)")
        #expect(result.stderr.contains("earlier Derive project"), "\(result.stderr)")
        #expect(result.stderr.contains("rm -r .derive/derive"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path), "init wrote a manifest")
        #expect(try Data(contentsOf: state) == before, "init changed the old state")

        // Doing what it says lets init (and the first build) run.
        try FileManager.default.removeItem(at: folder.appendingPathComponent(".derive/derive"))
        let again = try CLI.run(["init", "photos"], in: folder)
        #expect(again.status == 0, "\(again.stderr)")
        let rebuilt = try CLI.run(["build", "-q"], in: folder)
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)\(text(rebuilt.stdout))")
    }

    /// Another manifest's state folder under .derive (site.yaml's .derive/site) is no leftover.
    @Test func anotherManifestsStateFolderIsNoLeftover() throws {
        let (folder, _) = try InitFirstBuildRound37bTests.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(".derive/site"), withIntermediateDirectories: true)
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
    }
}
