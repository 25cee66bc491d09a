import Foundation
import GRDB
import Testing
import TestSupport

/// Attack 30's F5: one output's record edited with sqlite3 (its seal fails). `plan` ended
/// `a build refuses to start and builds nothing`, yet `build` started, rendered the file again,
/// adopted it (the lock lists its bytes) and dropped the record. The plan now says what the
/// build does; both exit 1 once (the ignored record), and the next build is a clean no-op.
@Suite(.ownThreads) struct SealPlanRound30Tests {
    static let manifest = """
    version: 1
    buckets:
      src: {path: src, acl: public-read}
      out: {path: out, acl: public-read}
    derivatives:
      - name: r
        from: src/*.jpg
        process: image/resize,w_16/format,png
        to: out/{name}.png

    """

    func out(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    @Test func planSaysTheBuildRendersAndAdoptsAFileWhoseRecordIsIgnored() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        for name in ["a", "b", "c"] { try copySample("landscape.jpg", to: folder.appendingPathComponent("src/\(name).jpg")) }
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let state = try #require(FileManager.default.enumerator(atPath: folder.appendingPathComponent(".derive").path)?.allObjects
            .compactMap { $0 as? String }.first { $0.hasSuffix("state.sqlite") })
        try DatabaseQueue(path: folder.appendingPathComponent(".derive/" + state).path, configuration: .patientTest).write { db in
            try db.execute(sql: "UPDATE outputs SET pipeline = 'x' WHERE path = 'out/c.png'")
        }

        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 1, "\(out(plan))")
        #expect(!out(plan).contains("to fix: a build refuses to start"), "the plan says the build refuses to start: \(out(plan))")
        #expect(out(plan).contains("1 file only derive.lock lists (above): a build renders it again first and adopts the file if it holds exactly what its rule renders"), "\(out(plan))")
        #expect(out(plan).contains("1 build-state record ignored (above): the build drops it (exit 1)"), "\(out(plan))")

        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 1, "\(out(build))")
        #expect(out(build).contains("adopted 1 from derive.lock, 1 build-state record ignored (dropped), verified 1"), "\(out(build))")
        let again = try CLI.run(["build"], in: folder)
        #expect(again.status == 0 && out(again).contains("Nothing to do: 3 outputs up to date"), "\(out(again))")
        let check = try CLI.run(["check"], in: folder)
        #expect(check.status == 0, "\(out(check))")
    }
}
