import Foundation
import Testing
import TestSupport

/// Issues #13/#9: validate, serve and init read the registry of built projects, as builds do.
/// - Attack 51b's H1: p.yaml writes private outputs into `shared/`, its lock and state moved
///   (`lock: locks/p.lock`, `state: st/p`); q.yaml serves `shared/` public-read. With p.yaml
///   half-saved, emptied, cut mid-rule or without its `lock:`/`state:` lines, q.yaml validated and
///   serve answered p's private output to anyone, though the registry records p's lock, state and
///   bucket folders.
/// - Attack 51a's 3b: a far project (outside the bounded neighbour search) took a file of this
///   manifest's public bucket over, privately: validate said valid, serve answered it 200.
/// - Attack 51b's M1: init wrote a project into another's public bucket while its manifest was
///   mid-edit, emptied or renamed, or when the bucket was a sibling folder (`../shared`).
/// Every test keeps its registry in its own `XDG_STATE_HOME`.
@Suite(.ownThreads, .serialized) struct RegisteredProjectsRound52Tests {
    static let p = """
        version: 1
        buckets:
          src: {path: src, acl: private}
          out: {path: shared, acl: private}
        derivatives:
          - {name: t, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg"}
        lock: locks/p.lock
        state: st/p

        """
    static let q = "version: 1\nbuckets:\n  www: {path: shared, acl: public-read}\n"

    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    /// GET `target` from a serve of `manifest` started now, and whether the listing of `www`
    /// names `a.jpg`; nil when serve does not start.
    func servedStatus(_ target: String, manifest: String, in root: URL) -> (get: Int, listed: Bool)? {
        guard let serve = try? ServeSession(in: root, manifest: manifest, environment: environment(root)) else { return nil }
        defer { serve.stop() }
        let get = (try? serve.get(target).status) ?? -1
        let list = (try? serve.get("/www/?list-type=2")).map { String(decoding: $0.body, as: UTF8.self) } ?? ""
        return (get, list.contains("<Key>a.jpg</Key>"))
    }

    @Test func aNeighbourHalfSavedBeforeItsLockAndStateLinesKeepsItsPrivateOutputsPrivate() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data(Self.p.utf8).write(to: root.appendingPathComponent("p.yaml"))
        try Data(Self.q.utf8).write(to: root.appendingPathComponent("q.yaml"))
        let built = try CLI.run(["build", "-q", "p.yaml"], in: root, environment: environment(root))
        #expect(built.status == 0, "\(said(built))")
        let lines = Self.p.split(separator: "\n", omittingEmptySubsequences: false)
        let variants = [
            "first three lines": lines.prefix(3).joined(separator: "\n") + "\n",
            "emptied": "",
            "cut mid-rule": lines.prefix(6).joined(separator: "\n") + "\n  - {name: t, from: \"src/*.jpg\", to: out/{na",
            "neither lock nor state": lines.prefix(4).joined(separator: "\n") + "\n",
        ]
        for (variant, text) in variants.sorted(by: { $0.key < $1.key }) {
            try Data(text.utf8).write(to: root.appendingPathComponent("p.yaml"))
            let validated = try CLI.run(["validate", "q.yaml"], in: root, environment: environment(root))
            #expect(validated.status == 0 && validated.stderr.contains("p.yaml, another project") && validated.stderr.contains("locks/p.lock")
                    && validated.stderr.contains("no more publicly than they were built"), "\(variant): \(said(validated))")
            let served = try #require(servedStatus("/www/a.jpg", manifest: "q.yaml", in: root), "\(variant): serve did not start")
            #expect(served.get == 403 && !served.listed, "\(variant): p's private output answered \(served.get), listed \(served.listed)")
        }
        // p.yaml whole again and built: its layout is refused as before, and only that way.
        try Data(Self.p.utf8).write(to: root.appendingPathComponent("p.yaml"))
        let whole = try CLI.run(["validate", "q.yaml"], in: root, environment: environment(root))
        #expect(whole.status == 1 && whole.stderr.contains("shares files with bucket 'out'") && !whole.stderr.contains("registry"), "\(said(whole))")
    }

    /// 3b: the far taker's private file in the original's public bucket: a running serve of the
    /// original answers it privately once the taker is built, and validate (so a serve started
    /// then) refuses the layout, naming the taker.
    @Test func aFarProjectFoundOnlyByTheRegistryKeepsItsOutputPrivate() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let proj = root.appendingPathComponent("proj"), far = root.appendingPathComponent("far/a/b")
        for folder in [proj.appendingPathComponent("src"), far] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: proj.appendingPathComponent("src/a.jpg"))
        try Data("""
            version: 1
            buckets:
              src: {path: src}
              pub: {path: pub, acl: public-read}
            derivatives:
              - {from: "src/*.jpg", process: "image/resize,w_8", to: "pub/n/{name}.jpg", acl: public-read}

            """.utf8).write(to: proj.appendingPathComponent("derive.yaml"))
        try Data("""
            version: 1
            buckets:
              src: {path: \(proj.path)/src}
              out: {path: \(proj.path)/pub/n}
            derivatives:
              - {from: "src/*.jpg", process: "image/resize,w_9", to: "out/{name}.jpg"}

            """.utf8).write(to: far.appendingPathComponent("n.yaml"))
        let built = try CLI.run(["build", "-q"], in: proj, environment: environment(root))
        #expect(built.status == 0, "\(said(built))")
        let running = try ServeSession(in: proj, environment: environment(root))
        defer { running.stop() }
        #expect(try running.get("/pub/n/a.jpg").status == 200)
        let taken = try CLI.run(["build", "-q", "--overwrite", far.appendingPathComponent("n.yaml").path], in: proj, environment: environment(root))
        #expect(taken.status == 0, "\(said(taken))")
        usleep(1_500_000)   // serve looks at its neighbours again every second
        // Validate refuses the layout now (below), and the running serve reaches its verdict as
        // the registry changed: 503 (attack 52b's 1/2); it answered 403 before round 53.
        #expect(try running.get("/pub/n/a.jpg").status == 503, "the far project's private output answered, or validate's verdict not reached")
        running.stop()
        let validated = try CLI.run(["validate"], in: proj, environment: environment(root))
        #expect(validated.status == 1 && validated.stderr.contains("far/a/b/n.yaml, another project found by the registry of built projects"), "\(said(validated))")
    }

    static let outer = "version: 1\nbuckets:\n  src: {path: images}\n  site: {path: _site, acl: public-read}\n"
        + "derivatives:\n  - {name: t, from: src/*.jpg, process: \"image/resize,w_8\", to: \"site/{name}.jpg\", acl: public-read}\n"

    /// M1 (a): the outer project's manifest mid-edit, emptied or renamed: init in its bucket
    /// still refuses, naming it, and writes nothing.
    @Test func initRefusesTheBucketOfAProjectWhoseManifestDoesNotLoad() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("images"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("images/a.jpg"))
        try Data(Self.outer.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: root, environment: environment(root))
        #expect(built.status == 0, "\(said(built))")
        let blog = root.appendingPathComponent("_site/blog")
        try fm.createDirectory(at: blog.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: blog.appendingPathComponent("photos/b.jpg"))
        let manifest = root.appendingPathComponent("derive.yaml")
        for variant in ["mid-edit", "emptied", "renamed"] {
            try? fm.removeItem(at: root.appendingPathComponent("derive.yaml.off"))
            try Data(Self.outer.utf8).write(to: manifest)
            switch variant {
            case "mid-edit": try Data("version: 1\nbuckets: {{\n".utf8).write(to: manifest)
            case "emptied": try Data().write(to: manifest)
            default: try fm.moveItem(at: manifest, to: root.appendingPathComponent("derive.yaml.off"))
            }
            let run = try CLI.run(["init", "photos"], in: blog, environment: environment(root))
            #expect(run.status == 1 && run.stderr.contains(manifest.path) && run.stderr.contains("bucket 'site'"), "\(variant): \(said(run))")
            let written = try fm.contentsOfDirectory(atPath: blog.path).filter { $0 != "photos" }
            #expect(written.isEmpty, "\(variant): init wrote \(written)")
        }
    }

    /// M1 (b): a bucket in a sibling folder (`../shared`), which the look upward never meets.
    @Test func initRefusesASiblingBucketTheRegistryRecords() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let p = root.appendingPathComponent("p"), photos = root.appendingPathComponent("shared/photos")
        for folder in [p.appendingPathComponent("src"), photos] { try fm.createDirectory(at: folder, withIntermediateDirectories: true) }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: p.appendingPathComponent("src/a.jpg"))
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("b.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../shared, acl: public-read}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\", acl: public-read}\n".utf8)
            .write(to: p.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: p, environment: environment(root))
        #expect(built.status == 0, "\(said(built))")
        let shared = root.appendingPathComponent("shared")
        let run = try CLI.run(["init", "photos"], in: shared, environment: environment(root))
        #expect(run.status == 1 && run.stderr.contains(p.appendingPathComponent("derive.yaml").path) && run.stderr.contains("bucket 'out'"), "\(said(run))")
        let written = try fm.contentsOfDirectory(atPath: shared.path).filter { !["photos", "a.jpg"].contains($0) }
        #expect(written.isEmpty, "init wrote \(written)")
        let again = try CLI.run(["build", "-q"], in: p, environment: environment(root))
        #expect(again.status == 0, "\(said(again))")
    }
}
