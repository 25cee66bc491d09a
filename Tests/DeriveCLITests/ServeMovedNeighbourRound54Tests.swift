import Foundation
import Testing
import TestSupport

/// Attack 53b's 1 (High): a far project g (found by the registry of built projects alone) builds
/// its output into a folder of site.yaml's public bucket, recorded private; g's rule is then made
/// public-read (or its source bucket public, its rule saying no `acl:`) and not rebuilt. In place, serve answers 403 (a rule
/// made public waits for its build). Once g's folder moved (`mv g g2`, `mkdir sub; mv g sub/g`),
/// its `.derive` renamed or removed (lock kept), serve answered the output 200, running or fresh,
/// and validate said nothing: the lock's lines got the rule's ACL, the state being read only at its
/// path and for the manifest path it recorded. Every state of the report's table, one project each.
@Suite(.ownThreads, .serialized) struct ServeMovedNeighbourRound54Tests {
    /// Each case: its project's folder name, and what is done to it once built and made public.
    static let cases: [(name: String, change: String)] = [
        ("g-inplace", "nothing"), ("g-mv", "mv g-mv g-mv2"), ("g-sub", "mkdir sub; mv g-sub sub/g-sub"),
        ("g-dot", "mv g-dot/.derive g-dot/.derive-old"), ("g-rm", "rm -rf g-rm/.derive (lock kept)"),
        ("g-lock", "rm g-lock/g.lock"), ("g-ren", "mv g-ren/g.yaml g-ren/h.yaml"), ("g-bkt", "src bucket made public (the rule has no acl:), mv g-bkt g-bkt2"),
    ]

    static func neighbour(_ name: String, root: URL, ruleACL: String? = nil, srcACL: String = "private") -> String {
        "version: 1\nbuckets:\n  src: {path: src, acl: \(srcACL)}\n  out: {path: \(root.path)/site/www/\(name), acl: private}\n"
            + "derivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_8\n" + (ruleACL.map { "    acl: \($0)\n" } ?? "") + "    to: out/{name}.jpg\n"
    }

    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    @Test func aNeighboursOutputBuiltPrivateStaysPrivateWhereverItsStateOrLockIsFound() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("site/www"), withIntermediateDirectories: true)
        try Data("hi\n".utf8).write(to: root.appendingPathComponent("site/www/hi.txt"))
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("site/site.yaml"))
        for (name, _) in Self.cases {
            let folder = root.appendingPathComponent(name)
            try fm.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
            try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/ceo.jpg"))
            try Data(Self.neighbour(name, root: root).utf8).write(to: folder.appendingPathComponent("g.yaml"))
            let built = try CLI.run(["build", "-q", "g.yaml"], in: folder, environment: environment(root))
            #expect(built.status == 0, "\(name): \(built.stderr)")
            // Made public, not rebuilt: the rule, or (g-bkt) its source bucket, whose ACL a rule without acl: gives.
            let edited = name == "g-bkt" ? Self.neighbour(name, root: root, srcACL: "public-read") : Self.neighbour(name, root: root, ruleACL: "public-read")
            try Data(edited.utf8).write(to: folder.appendingPathComponent("g.yaml"))
        }
        let serve = try ServeSession(in: root.appendingPathComponent("site"), manifest: "site.yaml", environment: environment(root))
        defer { serve.stop() }
        #expect(try serve.get("/www/hi.txt").status == 200)
        for (name, _) in Self.cases { #expect(try serve.get("/www/\(name)/ceo.jpg").status == 403, "\(name) in place") }

        func sh(_ command: String) throws {
            let done = try CLI.run(["-c", command], in: root, executable: "/bin/sh")
            #expect(done.status == 0, "\(command): \(done.stderr)")
        }
        try sh("mv g-mv g-mv2 && mkdir sub && mv g-sub sub/g-sub && mv g-dot/.derive g-dot/.derive-old && rm -rf g-rm/.derive"
               + " && rm g-lock/g.lock && mv g-ren/g.yaml g-ren/h.yaml && mv g-bkt g-bkt2")
        // The running serve, which found each file private a moment ago (it looks again every second).
        usleep(1_500_000)
        for (name, change) in Self.cases {
            let answer = try serve.get("/www/\(name)/ceo.jpg")
            #expect(answer.status == 403, "running serve, \(change): \(answer.status)")
        }
        serve.stop()
        // A fresh serve, and validate, of the same layout.
        let fresh = try ServeSession(in: root.appendingPathComponent("site"), manifest: "site.yaml", environment: environment(root))
        defer { fresh.stop() }
        #expect(try fresh.get("/www/hi.txt").status == 200)
        for (name, change) in Self.cases {
            let answer = try fresh.get("/www/\(name)/ceo.jpg")
            #expect(answer.status == 403, "fresh serve, \(change): \(answer.status)")
            let head = try fresh.get("/www/\(name)/ceo.jpg?x-oss-process=image/info")
            #expect(head.status == 403, "fresh serve, processed, \(change): \(head.status)")
        }
        let list = String(decoding: try fresh.get("/www/?list-type=2").body, as: UTF8.self)
        #expect(list.contains("<Key>hi.txt</Key>"), "\(list)")
        for (name, change) in Self.cases { #expect(!list.contains("<Key>\(name)/ceo.jpg</Key>"), "listed, \(change)") }
        let validate = try CLI.run(["validate", "site/site.yaml"], in: root, environment: environment(root))
        for (name, change) in Self.cases where name != "g-ren" {
            // g-ren's manifest is gone: validate's older warning of a project whose manifest is no longer there says it.
            let line = validate.stderr.split(separator: "\n").first { $0.contains("\(name)/ceo.jpg") } ?? ""
            #expect(line.contains("built as private"), "validate, \(change): \(validate.stderr)")
        }
    }
}
