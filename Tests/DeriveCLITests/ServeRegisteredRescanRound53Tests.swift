import Foundation
import Testing
import TestSupport

/// Attack 52b's 1 and 2 (issue #13): b/b.yaml writes private outputs into `pub`, which a/a.yaml
/// serves public-read; b is no neighbour a's search finds (only the registry of built projects
/// names it). A serve of a.yaml started while b.yaml was emptied (mid-edit) never looked at b
/// again: 2, b.yaml saved whole again made validate (and a fresh serve) refuse a.yaml while the
/// running serve went on answering; 1, with b's lock and state gone too, it handed b's private
/// output to anyone. The running serve now looks at what validate's registry check reads, and
/// reaches validate's verdict: 503, the log naming b's file. And where validate accepts the
/// layout (b's lock and state removed, b.yaml still empty: b is no project any more), a file the
/// serve knew as b's private output stays private while it holds the same bytes.
@Suite(.ownThreads, .serialized) struct ServeRegisteredRescanRound53Tests {
    static let a = "version: 1\nbuckets:\n  www: {path: ../pub, acl: public-read}\n"
    static let b = "version: 1\nbuckets:\n  img: {path: img}\n  out: {path: ../pub}\nderivatives:\n  - {from: img/*.jpg, process: \"image/resize,w_8\", to: \"out/{name}.{ext}\"}\n"

    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    /// The layout with b built and then emptied; a serve of a.yaml started in it.
    func servedWithNeighbourMidEdit() throws -> (root: URL, serve: ServeSession, log: URL) {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        for folder in ["pub", "a", "b/img"] { try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true) }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("b/img/s.jpg"))
        try Data("hi\n".utf8).write(to: root.appendingPathComponent("pub/hi.txt"))
        try Data(Self.a.utf8).write(to: root.appendingPathComponent("a/a.yaml"))
        try Data(Self.b.utf8).write(to: root.appendingPathComponent("b/b.yaml"))
        let built = try CLI.run(["build", "-q", "b/b.yaml"], in: root, environment: environment(root))
        #expect(built.status == 0, "\(built.stderr)")
        try Data().write(to: root.appendingPathComponent("b/b.yaml"))
        let log = root.appendingPathComponent("serve.log")
        let serve = try ServeSession(in: root.appendingPathComponent("a"), manifest: "a.yaml", errors: log, environment: environment(root))
        return (root, serve, log)
    }

    /// Serve looks at its neighbours again at most every second.
    func afterServeLooksAgain() { usleep(1_500_000) }

    func logged(_ log: URL) -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    @Test func aRegisteredNeighbourSavedWholeAgainStopsARunningServeAsValidateRefuses() throws {
        let (root, serve, log) = try servedWithNeighbourMidEdit()
        defer { serve.stop(); try? FileManager.default.removeItem(at: root) }
        #expect(try serve.get("/www/hi.txt").status == 200)
        #expect(try serve.get("/www/s.jpg").status == 403)
        try Data(Self.b.utf8).write(to: root.appendingPathComponent("b/b.yaml"))
        let validate = try CLI.run(["validate", "a/a.yaml"], in: root, environment: environment(root))
        #expect(validate.status != 0, "validate accepts the layout, so this test proves nothing: \(validate.stderr)")
        afterServeLooksAgain()
        let answer = try serve.get("/www/hi.txt")
        #expect(answer.status == 503, "validate refuses a.yaml, the running serve answered \(answer.status)")
        let line = logged(log).split(separator: "\n").first { $0.contains("does not load") } ?? ""
        #expect(line.contains("b/b.yaml") && line.contains("another project"), "\(logged(log))")
    }

    @Test func anOutputKnownPrivateStaysPrivateWhenItsProjectsRecordsGo() throws {
        let (root, serve, _) = try servedWithNeighbourMidEdit()
        defer { serve.stop(); try? FileManager.default.removeItem(at: root) }
        #expect(try serve.get("/www/s.jpg").status == 403)
        let fm = FileManager.default
        try fm.removeItem(at: root.appendingPathComponent("b/.derive"))
        try fm.removeItem(at: root.appendingPathComponent("b/b.lock"))
        let validate = try CLI.run(["validate", "a/a.yaml"], in: root, environment: environment(root))
        #expect(validate.status == 0, "\(validate.stderr)")
        afterServeLooksAgain()
        #expect(try serve.get("/www/hi.txt").status == 200, "serving as validate accepts")
        let get = try serve.get("/www/s.jpg")
        #expect(get.status == 403, "b's private output, known so, answered \(get.status)")
        let list = String(decoding: try serve.get("/www/?list-type=2").body, as: UTF8.self)
        #expect(list.contains("<Key>hi.txt</Key>") && !list.contains("<Key>s.jpg</Key>"), "\(list)")
    }

    @Test func aRegisteredNeighbourBackWithoutItsLockAndStateNeverHasItsOutputServed() throws {
        let (root, serve, log) = try servedWithNeighbourMidEdit()
        defer { serve.stop(); try? FileManager.default.removeItem(at: root) }
        #expect(try serve.get("/www/s.jpg").status == 403)
        let fm = FileManager.default
        try fm.removeItem(at: root.appendingPathComponent("b/.derive"))
        try fm.removeItem(at: root.appendingPathComponent("b/b.lock"))
        try Data(Self.b.utf8).write(to: root.appendingPathComponent("b/b.yaml"))
        afterServeLooksAgain()
        let get = try serve.get("/www/s.jpg")
        #expect(get.status != 200, "b's private output answered to anyone: \(get.status)")
        #expect(get.status == 503, "validate refuses a.yaml, the running serve answered \(get.status)")
        let list = try serve.get("/www/?list-type=2")
        #expect(!String(decoding: list.body, as: UTF8.self).contains("<Key>s.jpg</Key>"), "listed")
        #expect(logged(log).contains("b/b.yaml"), "\(logged(log))")
    }
}
