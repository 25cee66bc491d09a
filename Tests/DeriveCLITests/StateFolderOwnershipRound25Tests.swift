import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Planner
import Testing
import TestSupport

/// Attack round 25 (attack 9's findings 1, 2, 5 and 6): with `state: .` (or `state:` naming a
/// user's folder) the state folder holds the user's files too, so a name Derive uses there
/// proves nothing. Derive deletes a file there only when it can prove it wrote it: a kept render
/// by its seal, the clock stamp by being empty, SQLite's side files by their SQLite headers, a
/// serve cache entry by the MD5 its header states. Everything else is kept and named (or, before
/// SQLite would delete it, refused with an error naming it).
@Suite(.ownThreads, .serialized) struct StateFolderOwnershipRound25Tests {
    typealias Site = SiteRound11Tests.Site

    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_40
            to: out/t/{name}.jpg
        state: .

        """

    /// 64 hex digits, the shape of a kept render's (and serve cache entry's) name.
    static let hexName = HexDigest.sha256(Data("x".utf8)).text

    func site(_ manifest: String = Self.manifest) throws -> Site {
        try Site(["src/a.jpg": "landscape.jpg"], manifest: manifest)
    }

    func put(_ site: Site, _ path: String, _ text: String) throws {
        let url = site.url(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func contents(_ site: Site, _ path: String) -> String? {
        FileManager.default.contents(atPath: site.url(path).path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Runs derive, killing it after `seconds` (a FIFO opened without O_NONBLOCK hangs it forever):
    /// nil when it had to be killed.
    func run(_ site: Site, _ arguments: [String], seconds: Double = 30) throws -> CLI.Result? {
        let process = Process()
        process.environment = ProcessInfo.processInfo.environment.merging(["XDG_STATE_HOME": CLI.userStateHome.path]) { $1 }
        process.executableURL = CLI.executable
        process.arguments = arguments
        process.currentDirectoryURL = site.root
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        guard !process.isRunning else {
            process.terminate()
            process.waitUntilExit()
            return nil
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        return CLI.Result(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: stderr, as: UTF8.self))
    }

    // MARK: 1 (High): build-renders/<64 hex> that Derive did not write

    @Test func aUsersFileNamedLikeAKeptRenderSurvivesBuildAndCleanAndIsNamed() throws {
        let site = try site()
        defer { site.remove() }
        try put(site, "build-renders/\(Self.hexName)", "my precious notes\n")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(contents(site, "build-renders/\(Self.hexName)") == "my precious notes\n")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(contents(site, "build-renders/\(Self.hexName)") == "my precious notes\n")
        #expect(said(clean).contains("build-renders") && said(clean).contains(Self.hexName), "\(said(clean))")
    }

    @Test func aUsersFileNamedLikeAKeptRenderSurvivesAHashedBuild() throws {
        // With a `{hash}` rule the kept renders are read and written: still never the user's file.
        let site = try site(Self.manifest.replacingOccurrences(of: "out/t/{name}.jpg", with: "out/t/{name}.{hash}.jpg"))
        defer { site.remove() }
        try put(site, "build-renders/\(Self.hexName)", "my precious notes\n")
        try put(site, "build-renders/.\(Self.hexName).1.2.tmp", "my other notes\n")
        for _ in 0..<2 {
            let build = try site.run(["build"])
            #expect(build.status == 0, "\(said(build))")
        }
        #expect(contents(site, "build-renders/\(Self.hexName)") == "my precious notes\n")
        #expect(contents(site, "build-renders/.\(Self.hexName).1.2.tmp") == "my other notes\n")
    }

    @Test func anIncludeInsideBuildRendersIsAValidationError() throws {
        let site = try site()
        defer { site.remove() }
        try put(site, "build-renders/\(Self.hexName)", "version: 1\nstyles:\n  s1: image/resize,w_40\n")
        try site.write("""
            version: 1
            include: [build-renders/\(Self.hexName)]
            buckets:
              src: {path: src}
              out: {path: out}
            derivatives:
              - name: t
                from: src/*.jpg
                styles: [s1]
                to: out/t/{name}.jpg
            state: .

            """)
        let validate = try site.run(["validate"])
        #expect(validate.status != 0, "\(said(validate))")
        #expect(said(validate).contains("has the name of a file Derive keeps in the state folder"), "\(said(validate))")
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(said(build))")
        #expect(site.exists("build-renders/\(Self.hexName)"))
    }

    // MARK: 2 (High): clock-stamp holding a user's text

    @Test func cleanKeepsANonEmptyClockStampAndNamesIt() throws {
        let site = try site()
        defer { site.remove() }
        try put(site, "clock-stamp", "my clock notes\n")
        #expect(try site.run(["build", "-q"]).status == 0)
        #expect(contents(site, "clock-stamp") == "my clock notes\n")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(contents(site, "clock-stamp") == "my clock notes\n")
        #expect(said(clean).contains("clock-stamp"), "\(said(clean))")
    }

    @Test func cleanStillRemovesDerivesOwnEmptyClockStamp() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        #expect(contents(site, "clock-stamp") == "")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(!site.exists("clock-stamp") && !site.exists("state.sqlite"))
    }

    // MARK: 6 (Medium): SQLite's side files and serve's files that are the user's

    @Test func aUsersFilesNamedLikeSQLiteJournalsAreRefusedNotDeleted() throws {
        let site = try site()
        defer { site.remove() }
        try put(site, "state.sqlite-wal", "user wal notes\n")
        try put(site, "state.sqlite-journal", "user journal notes\n")
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(said(build))")
        #expect(build.stderr.contains("state.sqlite-journal") || build.stderr.contains("state.sqlite-wal"), "\(build.stderr)")
        #expect(build.stderr.contains("is not a file SQLite wrote"), "\(build.stderr)")
        #expect(contents(site, "state.sqlite-wal") == "user wal notes\n")
        #expect(contents(site, "state.sqlite-journal") == "user journal notes\n")
        for command in ["plan", "check", "clean"] {
            let result = try site.run([command])
            #expect(result.status != 0 && result.stderr.contains("is not a file SQLite wrote"), "\(command): \(said(result))")
        }
        #expect(contents(site, "state.sqlite-wal") == "user wal notes\n")
        #expect(contents(site, "state.sqlite-journal") == "user journal notes\n")
    }

    @Test func aUsersShmAndWalBesideAnExistingStateAreRefusedNotDeleted() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try put(site, "state.sqlite-wal", "user wal notes\n")
        try put(site, "state.sqlite-shm", "user shm notes\n")
        // Something to build: another source picture.
        try FileManager.default.removeItem(at: site.url("src/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("src/a.jpg"))
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(said(build))")
        #expect(build.stderr.contains("state.sqlite-"), "\(build.stderr)")
        #expect(contents(site, "state.sqlite-wal") == "user wal notes\n")
        #expect(contents(site, "state.sqlite-shm") == "user shm notes\n")
        // Moved away, the build goes on from the state as it was.
        try FileManager.default.removeItem(at: site.url("state.sqlite-wal"))
        try FileManager.default.removeItem(at: site.url("state.sqlite-shm"))
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(said(again))")
    }

    @Test func cleanKeepsUsersFilesShapedLikeServesAndNamesThem() throws {
        let site = try site()
        defer { site.remove() }
        try put(site, "serve-cache/2d/\(Self.hexName)", "my notes\n")
        try put(site, "serve-uploads/append-abc", "my notes\n")
        try put(site, "serve-appendable.json", "{}")
        #expect(try site.run(["build", "-q"]).status == 0)
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(contents(site, "serve-cache/2d/\(Self.hexName)") == "my notes\n")
        #expect(contents(site, "serve-uploads/append-abc") == "my notes\n")
        #expect(contents(site, "serve-appendable.json") == "{}")
        let text = said(clean)
        #expect(text.contains(Self.hexName) && text.contains("append-abc") && text.contains("serve-appendable.json"), "\(text)")
    }

    @Test func cleanRemovesACacheEntryServeWrote() throws {
        let site = try site()
        defer { site.remove() }
        // serve's shape: `<content type> <MD5 of the body>\n<body>`.
        let body = Data("pretend png".utf8)
        let md5 = try #require(MD5Sum.hex(body))
        let key = "ab" + String(repeating: "0", count: 62)
        try put(site, "serve-cache/ab/\(key)", "image/png \(md5)\n" + String(decoding: body, as: UTF8.self))
        #expect(try site.run(["build", "-q"]).status == 0)
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(!site.exists("serve-cache"), "\(said(clean))")
    }

    // MARK: 5 (Medium): a FIFO at the database or a journal

    @Test(arguments: ["state.sqlite", "state.sqlite-journal", "state.sqlite-wal"])
    func aFIFOAtTheDatabaseOrAJournalIsAnErrorNotAHang(_ name: String) throws {
        let site = try site(Self.manifest.replacingOccurrences(of: "state: .\n", with: ""))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let path = site.url(".derive/derive/\(name)").path
        if name == "state.sqlite" { try FileManager.default.removeItem(atPath: path) }
        #expect(mkfifo(path, 0o600) == 0)
        for command in ["check", "plan", "build", "clean"] {
            let result = try #require(try run(site, [command], seconds: 20), "derive \(command) hung on a FIFO at \(name)")
            #expect(result.status != 0, "\(command): \(said(result))")
            #expect(result.stderr.contains(name + " is a FIFO"), "\(command): \(result.stderr)")
        }
        var info = stat()
        #expect(lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
    }
}

enum MD5Sum {
    /// The MD5 of `data` in lower-case hex, from `md5sum` (the tests do not link swift-crypto).
    static func hex(_ data: Data) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["md5sum"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        guard (try? process.run()) != nil else { return nil }
        input.fileHandleForWriting.write(data)
        try? input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.split(separator: " ").first.map(String.init)
    }
}
