import Foundation
import Testing
import TestSupport

/// Issue #9, attack 50c's M3 and M8: `derive clean` after a restore. M3: an older `.derive` copied
/// back (its records name the build before the last one's bytes, the lock the last one's): clean
/// warned the output was "not the file Derive wrote there" and the index "changed since", left
/// both, removed derive.lock (their only record) and exited 0; every build then refused them, and
/// `--verify` still refused the index. M8: the whole project restored from a tar backup: the build
/// adopted the outputs as restored copies but never re-recorded the index, so clean left it, removed
/// the lock, exited 0, and the next build refused Derive's own index. A file holding the bytes this
/// manifest's own lock lists for it (the lock and the state agree on the owner) is Derive's: clean
/// removes it; one it leaves keeps the lock as its record, named, and clean exits 1.
@Suite(.ownThreads) struct RestoredStateCleanRound51Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: a}\n  out: {path: out}\nderivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/t/{name}.jpg\nindex: out/index.json\n"

    func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("a/a.jpg"))
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        return folder
    }

    /// Clean leaves nothing of Derive's, exits 0, and a build afterwards starts afresh.
    func expectCleanedAndBuildable(_ folder: URL) throws {
        let clean = try CLI.run(["clean"], in: folder)
        #expect(clean.status == 0, "\(said(clean))")
        for file in ["out/t/a.jpg", "out/index.json", "derive.lock"] {
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file) left: \(said(clean))")
        }
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(said(build))")
    }

    @Test func cleanAfterAnOlderStateRestoredRemovesWhatTheLockProvesDerives() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent(".derive/derive/state.sqlite")
        let backup = try Data(contentsOf: state)
        let manifest = folder.appendingPathComponent("derive.yaml")
        try Data(Self.manifest.replacingOccurrences(of: "w_16", with: "w_12").utf8).write(to: manifest)
        let restyled = try CLI.run(["build", "-q"], in: folder)
        #expect(restyled.status == 0, "\(said(restyled))")
        try backup.write(to: state)   // the older state restored over the file
        try expectCleanedAndBuildable(folder)
    }
}
