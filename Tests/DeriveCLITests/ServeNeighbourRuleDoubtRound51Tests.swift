import Foundation
import Testing
import TestSupport

/// Attack 50b's H1 and H6: a.yaml narrows `w=960` of an 800 px source to `portrait-h51-800.webp`
/// (public-read), and b.yaml beside it took that name over with `--overwrite` (its private q40
/// render). `derive serve a.yaml` must never answer b's file to anonymous readers:
/// - H1: once b's lock and state are gone while b.yaml still loads, b's rule still writes that
///   name: the file is in doubt, as the build calls it, and answered privately.
/// - H6: with b's `lock:` and `state:` moved (`meta/`), b.yaml caught half-saved (`lock: meta/he`)
///   still has its lock and state where it last loaded with them: a running serve keeps that view,
///   and a serve started then finds them as builds do (b.yaml is no project to discovery then: its
///   lock's first line and its state's owner record name it, as for a gone one).
@Suite(.ownThreads, .serialized) struct ServeNeighbourRuleDoubtRound51Tests {
    static let buckets = "buckets:\n  src: {path: src, acl: private}\n  out: {path: out, acl: private}\n"

    /// The set whose `w=960` narrows to the source's 800 px (a name no other test's project gives).
    static let a = "version: 1\n" + buckets + """
        derivatives:
          - {name: set, from: src/portrait.jpg, process: "image/resize,w_{w}/format,webp", matrix: {w: [480, 960]}, to: "out/{name}-h51-{w}.webp", acl: public-read}

        """

    /// The hero writing that very name privately; `moved`: its lock and state under `meta/`.
    static func b(moved: Bool) -> String {
        "version: 1\n" + (moved ? "lock: meta/hero.lock\nstate: meta/st\n" : "") + buckets + """
            derivatives:
              - {name: hero, from: src/portrait.jpg, process: "image/resize,w_800/quality,q_40/format,webp", to: "out/{name}-h51-800.webp", acl: private}

            """
    }

    static let taken = "/out/portrait-h51-800.webp"

    /// a.yaml built, then b.yaml built over its narrowed output with `--overwrite`.
    func takenOver(moved: Bool) throws -> URL {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: root.appendingPathComponent("src/portrait.jpg"))
        try Data(Self.a.utf8).write(to: root.appendingPathComponent("a.yaml"))
        let first = try CLI.run(["build", "-q", "a.yaml"], in: root)
        #expect(first.status == 0, "\(said(first))")
        try Data(Self.b(moved: moved).utf8).write(to: root.appendingPathComponent("b.yaml"))
        let takeOver = try CLI.run(["build", "-q", "--overwrite", "b.yaml"], in: root)
        #expect(takeOver.status == 0, "\(said(takeOver))")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("out/portrait-h51-800.webp").path))
        return root
    }

    /// Serve looks at its neighbours again at most every second: a request after that sees the change.
    func afterServeLooksAgain() { usleep(1_500_000) }

    /// H1: b's lock and state removed, b.yaml loading: its rule writes the name, so a running
    /// serve and one started then answer the file privately (GET and a render of it), while a's
    /// own output stays public; the build keeps the file in doubt, naming b's rule.
    @Test func aNeighboursOutputStaysPrivateOnceItsLockAndStateAreGone() throws {
        let root = try takenOver(moved: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let running = try ServeSession(in: root, manifest: "a.yaml")
        defer { running.stop() }
        #expect(try running.get(Self.taken).status == 403)
        #expect(try running.get("/out/portrait-h51-480.webp").status == 200)
        try FileManager.default.removeItem(at: root.appendingPathComponent("b.lock"))
        try FileManager.default.removeItem(at: root.appendingPathComponent(".derive/b"))
        afterServeLooksAgain()
        #expect(try running.get(Self.taken).status == 403, "b's private output answered to anyone by a running serve")
        #expect(try running.get(Self.taken + "?x-oss-process=image/resize,w_10").status == 403)
        #expect(try running.get("/out/portrait-h51-480.webp").status == 200)
        running.stop()   // one serve of a manifest at a time
        let fresh = try ServeSession(in: root, manifest: "a.yaml")
        defer { fresh.stop() }
        #expect(try fresh.get(Self.taken).status == 403, "b's private output answered to anyone by a serve started then")
        #expect(try fresh.get("/out/portrait-h51-480.webp").status == 200)
    }

    /// L5: a clone of the project in a sibling folder, its b.yaml deleted and b.lock kept (with
    /// out/ committed: its own copy of b's file lies there), lists the key with the same bytes. Its
    /// line is its own copy's record: serve's log names why the served file is private (b.yaml's
    /// rule here), never that unrelated clone.
    @Test func serveDoesNotNameAnUnrelatedCloneAsTheOwner() throws {
        let root = try takenOver(moved: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let clone = root.deletingLastPathComponent().appendingPathComponent("clone")
        defer { try? FileManager.default.removeItem(at: clone) }
        try FileManager.default.createDirectory(at: clone, withIntermediateDirectories: false)
        for name in ["src", "out", "a.yaml", "a.lock", "b.lock"] {
            try FileManager.default.copyItem(at: root.appendingPathComponent(name), to: clone.appendingPathComponent(name))
        }
        try FileManager.default.removeItem(at: root.appendingPathComponent("b.lock"))
        try FileManager.default.removeItem(at: root.appendingPathComponent(".derive/b"))
        let log = root.appendingPathComponent("serve.log")
        let serve = try ServeSession(in: root, manifest: "a.yaml", errors: log)
        defer { serve.stop() }
        #expect(try serve.get(Self.taken).status == 403)
        serve.stop()
        let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(!said.contains("/clone/"), "an unrelated clone named: \(said)")
        #expect(said.contains("b.yaml's rule 'hero' writes that name"), "\(said)")
    }

    /// L1: plan, check and explain tell what the build does with the file b took over: kept (b's
    /// lock and state there), then left in place in doubt, naming b's rule (b's lock and state
    /// gone): never "delete" or "will be deleted".
    @Test func planCheckAndExplainSayTheFileStaysAndWhyItIsInDoubt() throws {
        let root = try takenOver(moved: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let file = "out/portrait-h51-800.webp"
        let kept = try CLI.run(["explain", file, "--manifest", "a.yaml"], in: root)
        #expect(said(kept).contains("\(file): kept in place") && !said(kept).contains("will be deleted"), "\(said(kept))")
        try FileManager.default.removeItem(at: root.appendingPathComponent("b.lock"))
        try FileManager.default.removeItem(at: root.appendingPathComponent(".derive/b"))
        let doubt = "in doubt: b.yaml's rule 'hero' writes that name"
        let plan = try CLI.run(["plan", "a.yaml"], in: root)
        #expect(said(plan).contains("\(file)  left: ") && said(plan).contains(doubt), "\(said(plan))")
        let check = try CLI.run(["check", "a.yaml"], in: root)
        #expect(check.status == 1 && said(check).contains("\(file): left: ") && !said(check).contains("\(file): delete"), "\(said(check))")
        #expect(said(check).contains(doubt), "\(said(check))")
        let explain = try CLI.run(["explain", file, "--manifest", "a.yaml"], in: root)
        #expect(said(explain).contains("\(file): left in place: ") && said(explain).contains(doubt), "\(said(explain))")
        #expect(!said(explain).contains("will be deleted"), "\(said(explain))")
        let build = try CLI.run(["build", "a.yaml"], in: root)
        #expect(build.status == 0 && said(build).contains(doubt), "\(said(build))")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(file).path))
    }

    /// H6: b.yaml (lock and state under `meta/`) caught half-saved after `lock: meta/he`: the
    /// running serve keeps the lock and state b last loaded with, and a serve started then finds
    /// them where builds find them (`plan a.yaml` still says the file is b's): private either way.
    @Test func aNeighbourHalfSavedWithItsLockAndStateMovedKeepsItsOutputPrivate() throws {
        let root = try takenOver(moved: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let running = try ServeSession(in: root, manifest: "a.yaml")
        defer { running.stop() }
        #expect(try running.get(Self.taken).status == 403)
        try Data("version: 1\nlock: meta/he".utf8).write(to: root.appendingPathComponent("b.yaml"))
        afterServeLooksAgain()
        #expect(try running.get(Self.taken).status == 403, "b's private output answered to anyone while b.yaml was half-saved")
        #expect(try running.get("/out/portrait-h51-480.webp").status == 200)
        running.stop()   // one serve of a manifest at a time
        let fresh = try ServeSession(in: root, manifest: "a.yaml")
        defer { fresh.stop() }
        #expect(try fresh.get(Self.taken).status == 403, "answered to anyone by a serve started while b.yaml was half-saved")
        #expect(try fresh.get("/out/portrait-h51-480.webp").status == 200)
    }
}
