import Foundation
import Testing
import TestSupport

/// Attack 49c's finding 2: an older `state.sqlite` copied back (a backup restored). Its records
/// name the bytes of the build before the last, the lock the last one's. `plan` and `check` said
/// `out/a.webp was changed since Derive wrote it; move it or pass --overwrite` and that a build
/// refuses to start, while `build` rendered the file again, found it what its rule renders and
/// succeeded; with an `index:` the build refused the index the last build wrote, so the project
/// stayed stuck. Plan and check now say what the build does (one rule: the file holds what the
/// lock lists), and the index the lock this user's Derive wrote records is Derive's.
@Suite(.ownThreads) struct RestoredOlderStateRound49Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src, acl: private}
          out: {path: out, acl: private}
        derivatives:
          - name: r
            from: src/*.jpg
            process: image/resize,w_16/format,webp
            to: out/{name}.webp
        index: out/index.json
        state: .derive

        """

    @Test func planAndCheckSayWhatTheBuildDoesAndTheBuildTakesItsOwnIndex() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("src/a.jpg"))
        try copySample("portrait.jpg", to: folder.appendingPathComponent("src/b.jpg"))
        let state = folder.appendingPathComponent(".derive/state.sqlite"), backup = folder.appendingPathComponent("state.backup")
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        try FileManager.default.copyItem(at: state, to: backup)
        // The source edited and built: the lock and index now list the new output.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("src/a.jpg"))
        try copySample("orientation-1.jpg", to: folder.appendingPathComponent("src/a.jpg"))
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let built = try Data(contentsOf: folder.appendingPathComponent("out/a.webp"))
        // The backup restored over the state, as `cp` does (the same file, older bytes).
        try Data(contentsOf: backup).write(to: state)

        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 1, "\(said(plan))")
        #expect(!said(plan).contains("was changed since Derive wrote it"), "\(said(plan))")
        #expect(!said(plan).contains("was not written by Derive as the index"), "\(said(plan))")
        #expect(!said(plan).contains("to fix: a build refuses to start"), "\(said(plan))")
        #expect(said(plan).contains("out/a.webp holds what derive.lock lists for it, not what the build state records"), "\(said(plan))")
        #expect(said(plan).contains("a build renders it again first and adopts the file if it holds exactly what its rule renders"), "\(said(plan))")
        let check = try CLI.run(["check"], in: folder)
        #expect(!said(check).contains("was changed since Derive wrote it") && !said(check).contains("not written by Derive as the index"), "\(said(check))")
        #expect(said(check).contains("a build renders it again first"), "\(said(check))")

        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(said(build))")
        #expect(try Data(contentsOf: folder.appendingPathComponent("out/a.webp")) == built)
        let again = try CLI.run(["plan", "--detailed-exitcode"], in: folder)
        #expect(again.status == 0, "\(said(again))")
        #expect(try CLI.run(["check"], in: folder).status == 0)
    }
}
