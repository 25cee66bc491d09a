import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13's leftovers of round 40: serve's 403 named the missing build state for objects that
/// are private whatever a state says; its Website line named the bucket's root (403) before a
/// first build; a watch started with an absolute manifest path did not notice its project moved;
/// descriptors derive inherited without close-on-exec reached the render worker.
@Suite(.ownThreads) struct SiteLeftoversRound41Tests {
    /// A website bucket a public rule writes into (so the state guards it), with a private folder
    /// (`drafts/`) and a private rule's outputs (`private/`) in it.
    static let manifest = """
        version: 1
        buckets:
          images: {path: p, acl: private}
          site:
            path: _site
            acl: public-read
            website: {index: index.html}
            objects:
              - match: "drafts/**"
                acl: private
          empty: {path: empty, acl: public-read, website: {index: index.html}}
        derivatives:
          - name: thumb
            from: images/*.jpg
            process: image/resize,w_64
            to: site/{name}.jpg
            acl: public-read
          - name: secret
            from: images/*.jpg
            process: image/resize,w_32
            to: site/private/{name}.jpg
            acl: private

        """

    static func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        for sub in ["p", "_site/drafts", "_site/private", "empty"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("p/a.jpg"))
        try Data("<h1>page</h1>".utf8).write(to: folder.appendingPathComponent("_site/index.html"))
        try Data("draft".utf8).write(to: folder.appendingPathComponent("_site/drafts/x.html"))
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    static func text(_ answer: (status: Int, headers: [String: String], body: [UInt8])) -> String {
        "\(answer.status) " + String(decoding: answer.body, as: UTF8.self)
    }

    /// The status and the `<Message>` of an answer (its request id differs each time).
    static func message(_ text: String) -> String {
        guard let start = text.range(of: "<Message>"), let end = text.range(of: "</Message>") else { return text }
        return String(text.prefix(4)) + text[start.upperBound..<end.lowerBound]
    }

    @Test func the403NamesTheMissingStateOnlyWhereTheStateIsWhy() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let serve = try ServeSession(in: folder)
        defer { serve.stop() }
        // Public per the manifest, refused for want of a state: the cause named.
        let page = Self.text(try serve.get("/site/index.html"))
        #expect(page.hasPrefix("403 ") && page.contains("no build state"), "\(page)")
        // Private whatever a state says (an `objects:` rule, a private rule's output): plain OSS.
        let draft = Self.text(try serve.get("/site/drafts/x.html"))
        #expect(draft.hasPrefix("403 ") && draft.contains("because of bucket acl") && !draft.contains("build state"), "\(draft)")
        let secret = Self.text(try serve.get("/site/private/a.jpg"))
        #expect(secret.hasPrefix("403 ") && secret.contains("AccessDenied") && !secret.contains("build state"), "\(secret)")
        // Built: the same private objects answer exactly as before, the page is public.
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        #expect(Self.message(Self.text(try serve.get("/site/drafts/x.html"))) == Self.message(draft))
        let secretAfter = Self.text(try serve.get("/site/private/a.jpg"))
        #expect(secretAfter.hasPrefix("403 ") && !secretAfter.contains("build state"), "\(secretAfter)")
        #expect(try serve.get("/site/index.html").status == 200)
    }

    /// The `Website NAME:` line of `serve`'s output, once printed.
    static func websiteLine(_ bucket: String, in serve: ServeSession) -> String? {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let printed = (try? String(contentsOf: serve.out, encoding: .utf8)) ?? ""
            if let line = printed.split(separator: "\n").first(where: { $0.hasPrefix("Website \(bucket): ") }) { return String(line) }
            usleep(50_000)
        }
        return nil
    }

    @Test func beforeAFirstBuildTheWebsiteLineSaysNoPageIsServedYet() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let serve = try ServeSession(in: folder)
        defer { serve.stop() }
        let root = "http://127.0.0.1:\(serve.port)/site/"
        // The page exists but the state cannot vouch for it: `derive build` is the way.
        let site = try #require(Self.websiteLine("site", in: serve))
        #expect(site.contains("no page is served yet") && site.contains("`derive build`") && site.contains(root), "\(site)")
        #expect(try serve.get("/site/").status == 403)
        // No index document at all: not an address that answers 404.
        let empty = try #require(Self.websiteLine("empty", in: serve))
        #expect(empty.contains("no page is served yet") && empty.contains("index.html"), "\(empty)")
        #expect(!empty.hasPrefix("Website empty: http"), "\(empty)")
    }

    @Test func aWatchNamedByAnAbsolutePathStopsWhenItsProjectMoves() throws {
        let watch = try WatchSession()
        let moved = URL(literalFilePath: watch.root.path + "-moved")
        defer {
            watch.remove()
            try? FileManager.default.removeItem(at: moved)
        }
        #expect(watch.waitForLines(1), "\(watch.lines) \(watch.standardError)")
        try FileManager.default.moveItem(at: watch.root, to: moved)
        // An edit in the moved project, as its user goes on working.
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: moved.appendingPathComponent("photos/src/b.jpg"))
        #expect(watch.wait(20) { !watch.process.isRunning }, "still running: \(watch.lines) \(watch.standardError)")
        let errors = watch.standardError
        #expect(!watch.process.isRunning && watch.process.terminationStatus != 0)
        #expect(errors.hasPrefix("derive: error: ") && errors.contains("moved") && errors.contains(moved.path + "/derive.yaml")
                && errors.contains("derive build --watch"), "\(errors)")
    }

    /// Both ways the worker may be started: posix_spawn closing from fd 4 (glibc 2.34+), and the
    /// fork that closes them itself (older glibc).
    @Test(arguments: [false, true]) func anInheritedDescriptorDoesNotReachTheRenderWorker(byFork: Bool) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The worker: says which descriptors above 3 it holds, then fails its start.
        let worker = folder.appendingPathComponent("worker.sh")
        let seen = folder.appendingPathComponent("seen")
        try Data("""
            #!/bin/sh
            for n in 7 9; do [ -e /proc/$$/fd/$n ] && printf 'fd%s ' "$n" >> "\(seen.path)"; done
            printf 'checked\\n' >> "\(seen.path)"
            exit 127

            """.utf8).write(to: worker)
        #expect(chmod(worker.path, 0o755) == 0)
        // A parent holding files open without close-on-exec (a shell's `exec 7>file`) runs derive.
        let process = Process()
        process.executableURL = URL(literalFilePath: "/bin/sh")
        process.arguments = ["-c", "exec 7>\"$1/held\" 9<\"$1/held\"; exec \"$2\" --version", "sh", folder.path, CLI.executable.path]
        var environment = ProcessInfo.processInfo.environment.merging(["DERIVE_RENDER_WORKER": worker.path, "XDG_STATE_HOME": CLI.userStateHome.path]) { $1 }
        environment["DERIVE_TEST_SPAWN_BY_FORK"] = byFork ? "1" : nil
        process.environment = environment
        let output = folder.appendingPathComponent("version.out")
        #expect(FileManager.default.createFile(atPath: output.path, contents: nil))
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let report = (try? String(contentsOf: seen, encoding: .utf8)) ?? ""
        #expect(report == "checked\n", "the worker held: \(report)")
        // The worker ran and its ending was said as before.
        let said = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(said.contains("did not start (exited with status 127)"), "\(said)")
    }
}
