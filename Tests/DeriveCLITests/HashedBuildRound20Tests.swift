import Foundation
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 20 (static) on `{hash}` builds, end to end through the binary.
/// - C1: a Ctrl-C, crash or OOM kill while a `{hash}` site was rendered threw away every finished
///   render (nothing is written until all are rendered, to refuse a name that is another
///   output's), so the next build started from zero. The renders are now kept in the state
///   folder as they finish; the hook `DERIVE_TEST_AFTER_RENDERS` stops the build at a known point.
/// - D2: a full disk while the build recorded an output (SQLite "database or disk is full") left
///   the `{hash}` file unrecorded, and every later build refused it as "not written by Derive".
///   Now a failed record removes the file just written (hook `DERIVE_TEST_FAIL_RECORD`), and a
///   build adopts a file at a `{hash}` name holding exactly the bytes it renders for that name.
@Suite(.ownThreads, .serialized) struct HashedBuildRound20Tests {
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Six photos, two widths each, every name `{hash}`: 12 outputs and an index.
    final class Site {
        let root: URL
        static let photos = ["landscape.jpg", "portrait.jpg", "orientation-1.jpg", "orientation-3.jpg", "orientation-6.jpg", "cmyk.jpg"]
        init() throws {
            root = try CLI.temporaryFolder()
            try FileManager.default.createDirectory(at: root.appendingPathComponent("photos"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("site"), withIntermediateDirectories: true)
            for photo in Self.photos {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(photo), to: root.appendingPathComponent("photos/" + photo))
            }
            try Data("""
            version: 1
            buckets:
              photos: {path: photos}
              site: {path: site, url: /site}
            derivatives:
              - name: responsive
                from: photos/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [48, 64]}
                to: site/{name}-{w}.{hash}.webp
            index: site/index.json

            """.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        }
        deinit { try? FileManager.default.removeItem(at: root) }

        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Result {
            try CLI.run(arguments, in: root, environment: environment)
        }
        /// The `{hash}` outputs on disk, by name.
        var outputs: [String: Data] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url("site").path)) ?? []
            var found: [String: Data] = [:]
            for name in names where name.hasSuffix(".webp") { found[name] = try? Data(contentsOf: url("site/" + name)) }
            return found
        }
        /// Built (exit 0), then the state and the lock removed, and the index (the outputs kept)
        /// or the whole `site/` (made again, empty): what a build that died recording leaves.
        /// Returns the outputs as built, by name.
        @discardableResult
        func builtThenForgotten(keepingOutputs: Bool = true) throws -> [String: Data] {
            let build = try run(["build", "-q"])
            #expect(build.status == 0, "\(build.stderr)")
            let built = outputs
            #expect(built.count == 12)
            try FileManager.default.removeItem(at: url(".derive"))
            try FileManager.default.removeItem(at: url("derive.lock"))
            if keepingOutputs {
                try FileManager.default.removeItem(at: url("site/index.json"))
            } else {
                try FileManager.default.removeItem(at: url("site"))
                try FileManager.default.createDirectory(at: url("site"), withIntermediateDirectories: true)
            }
            return built
        }
        var renders: URL { URL(fileURLWithPath: RealFolder.of(url(".derive/derive").path)).appendingPathComponent("build-renders") }
        var kept: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: renders.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        }

        /// Starts `derive build --jobs 1` stopped by the hook after `renders` renders, then
        /// interrupts it with `signal` once it is there.
        func interruptedBuild(after renders: Int, signal: Int32) throws {
            let marker = url("rendered.marker")
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["build", "--jobs", "1", "--quiet"]
            process.currentDirectoryURL = root
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["XDG_STATE_HOME": CLI.userStateHome.path, "DERIVE_TEST_AFTER_RENDERS": "\(renders)=\(marker.path)"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
            let deadline = Date().addingTimeInterval(300)
            while !FileManager.default.fileExists(atPath: marker.path), process.isRunning, Date() < deadline { usleep(20_000) }
            #expect(FileManager.default.fileExists(atPath: marker.path),
                    "the build was not stopped after \(renders) renders (it \(process.isRunning ? "still runs" : "ended with \(process.terminationStatus)"))")
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal, "derive did not stop at the signal: \(process.terminationStatus)")
        }
    }

    /// A name ends `.<first 10 hex of SHA-256 of its bytes>.webp`.
    static func nameHoldsItsDigest(_ name: String, _ bytes: Data) -> Bool {
        let digest = ContentDigests.digest(bytes)
        return name.hasSuffix("." + digest.prefix(10) + ".webp")
    }

    /// What a reader sees after an interruption: no half-written file, and an index (if any)
    /// naming only files that are there.
    static func expectConsistent(_ site: Site) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: site.url("site").path)) ?? []
        #expect(!names.contains { $0.hasSuffix(".derive-tmp") }, "\(names)")
        if let index = try? Data(contentsOf: site.url("site/index.json")), let text = String(data: index, encoding: .utf8) {
            let listed = text.split(whereSeparator: { $0 == "\"" || $0 == "/" || $0 == " " }).map(String.init)
                .filter { $0.hasSuffix(".webp") && !$0.contains("{") }   // not the logical names (`{hash}`)
            for name in Set(listed) { #expect(names.contains(name), "the index names \(name), which is not there") }
        }
    }

    // MARK: C1: an interrupted `{hash}` build keeps its finished renders

    /// Attack 20's C1 (`c2-ctrlc-build.sh`, `c1-ctrlc.sh`): Ctrl-C (SIGINT) or a kill (SIGKILL)
    /// after 5 of 12 renders. Before: the next build rendered all 12 again. Now it renders the 7
    /// left and takes the 5 from the state folder; the names still match their bytes, and the
    /// kept renders are gone once written.
    @Test(arguments: [SIGINT, SIGKILL])
    func anInterruptedHashedBuildKeepsItsFinishedRenders(signal: Int32) throws {
        let site = try Site()
        try site.interruptedBuild(after: 5, signal: signal)
        try Self.expectConsistent(site)
        #expect(site.kept.count == 5, "renders kept in the state folder: \(site.kept)")
        let check = try site.run(["check"])
        #expect(check.status == 1, "\(Self.text(check.stdout))")
        let build = try site.run(["build", "--jobs", "1"])
        let said = Self.text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(said)")
        #expect(said.contains("built 12 (5 rendered by an earlier build, kept in the state folder)"), "\(said)")
        let outputs = site.outputs
        #expect(outputs.count == 12, "\(outputs.keys.sorted())")
        for (name, bytes) in outputs { #expect(Self.nameHoldsItsDigest(name, bytes), "\(name)") }
        #expect(site.kept.isEmpty, "renders left after a complete build: \(site.kept)")
        let after = try site.run(["check"])
        #expect(after.status == 0, "\(Self.text(after.stdout)) \(after.stderr)")
    }

    /// The same bytes whether kept or not: a build interrupted and resumed writes exactly the
    /// files an uninterrupted build writes (names and bytes).
    @Test func aResumedBuildWritesWhatAnUninterruptedBuildWrites() throws {
        let plain = try Site()
        #expect(try plain.run(["build", "-q"]).status == 0)
        let resumed = try Site()
        try resumed.interruptedBuild(after: 7, signal: SIGKILL)
        #expect(try resumed.run(["build", "-q"]).status == 0)
        #expect(plain.outputs == resumed.outputs, "\(plain.outputs.keys.sorted()) vs \(resumed.outputs.keys.sorted())")
    }

    /// A kept render is used only when its seal (the user's secret) and its digest hold: one
    /// whose bytes were changed, or another derivative's entry moved under its name (a planted
    /// `.derive/` cannot put its bytes under a `{hash}` name), is rendered again. The changed one
    /// (its seal holds for its name) is removed; the moved ones are not (round 25: with `state: .`
    /// a file without the seal for its own name may be the user's, so it is never deleted).
    @Test func aKeptRenderWhoseBytesOrNameWereChangedIsRenderedAgain() throws {
        let site = try Site()
        try site.interruptedBuild(after: 4, signal: SIGKILL)
        let kept = site.kept
        try #require(kept.count == 4, "\(kept)")
        // One entry's last byte flipped.
        var edited = try Data(contentsOf: site.renders.appendingPathComponent(kept[0]))
        edited[edited.count - 1] ^= 0xFF
        try edited.write(to: site.renders.appendingPathComponent(kept[0]))
        // Two entries swapped: each sealed, but for the other's action key.
        let second = try Data(contentsOf: site.renders.appendingPathComponent(kept[1]))
        let third = try Data(contentsOf: site.renders.appendingPathComponent(kept[2]))
        try third.write(to: site.renders.appendingPathComponent(kept[1]))
        try second.write(to: site.renders.appendingPathComponent(kept[2]))
        let build = try site.run(["build", "--jobs", "1"])
        let said = Self.text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(said)")
        #expect(said.contains("built 12 (1 rendered by an earlier build"), "\(said)")
        let plain = try Site()
        #expect(try plain.run(["build", "-q"]).status == 0)
        #expect(plain.outputs == site.outputs)
        #expect(site.kept == [kept[1], kept[2]].sorted(), "\(site.kept)")
    }

    /// `derive clean` removes the kept renders with the rest of the state.
    @Test func cleanRemovesTheKeptRenders() throws {
        let site = try Site()
        try site.interruptedBuild(after: 3, signal: SIGKILL)
        #expect(site.kept.count == 3)
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(Self.text(clean.stdout)) \(clean.stderr)")
        #expect(!FileManager.default.fileExists(atPath: site.renders.path), "\(site.kept)")
    }

    // MARK: D2: a full disk while recording never wedges the site

    /// Attack 20's D2 (`d2-diskfull-state.sh`), later half: a `{hash}` file holding exactly the
    /// bytes the build renders for that name, with no record and no lock line (the build that
    /// wrote it could not record it). Before: every later build refused it ("exists and was not
    /// written by Derive ... pass --overwrite"), for good. Now the build adopts it (the name is
    /// the digest of those bytes: nothing is lost), and `check` is up to date.
    @Test func aHashedFileHoldingExactlyTheRenderedBytesIsAdopted() throws {
        let site = try Site()
        let before = try site.builtThenForgotten()
        let build = try site.run(["build"])
        let said = Self.text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(said)")
        #expect(!said.contains("not written by Derive"), "\(said)")
        #expect(site.outputs == before)
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(Self.text(check.stdout)) \(check.stderr)")
    }

    /// The other half of that rule: a file at a `{hash}` name with other bytes is still the
    /// user's, refused and left as it is.
    @Test func aHashedFileWithOtherBytesIsStillRefused() throws {
        let site = try Site()
        let name = try #require(try site.builtThenForgotten().keys.sorted().first)
        let mine = Data("my own file, not Derive's\n".utf8)
        try mine.write(to: site.url("site/" + name))
        let build = try site.run(["build"])
        let said = Self.text(build.stdout) + build.stderr
        #expect(build.status == 1, "\(said)")
        #expect(said.contains("site/\(name) exists and was not written by Derive"), "\(said)")
        #expect((try? Data(contentsOf: site.url("site/" + name))) == mine)
    }

    /// Attack 20's D2, first half: the state cannot record an output just moved into place
    /// (SQLite "database or disk is full", stood for by the hook). Before: the file stayed,
    /// unrecorded, and wedged every later build. Now the build removes it (it is the very file
    /// it wrote, with those bytes), says why, and the next build completes.
    @Test func anOutputWhoseRecordFailsIsRemovedAndTheNextBuildCompletes() throws {
        let site = try Site()
        let name = try #require(try site.builtThenForgotten(keepingOutputs: false).keys.sorted().first)
        let failed = try site.run(["build"], environment: ["DERIVE_TEST_FAIL_RECORD": name])
        let said = Self.text(failed.stdout) + failed.stderr
        #expect(failed.status == 1, "\(said)")
        #expect(said.contains("site/\(name) could not be recorded in the build state") && said.contains("the file just written was removed"), "\(said)")
        #expect(!FileManager.default.fileExists(atPath: site.url("site/" + name).path), "the unrecorded file was left")
        #expect(site.outputs.count == 11)
        try Self.expectConsistent(site)
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(Self.text(again.stdout)) \(again.stderr)")
        #expect(site.outputs.count == 12)
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(Self.text(check.stdout)) \(check.stderr)")
    }

    /// Round 22's V4: two outputs with one action key (two rules rendering the same pipeline into
    /// two folders) in a first build: the second took the first's render from the state folder and
    /// the build said "1 rendered by an earlier build". Only what an earlier build kept counts.
    @Test func aFirstBuildSaysNothingWasRenderedByAnEarlierBuild() throws {
        let site = try Site()
        try Data("""
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site, url: /site}
        derivatives:
          - name: one
            from: photos/landscape.jpg
            process: image/resize,w_48/format,webp
            to: site/a/{name}.{hash}.webp
          - name: two
            from: photos/landscape.jpg
            process: image/resize,w_48/format,webp
            to: site/b/{name}.{hash}.webp

        """.utf8).write(to: site.url("derive.yaml"))
        let build = try site.run(["build", "--jobs", "1"])
        let out = Self.text(build.stdout)
        #expect(build.status == 0, "\(out) \(build.stderr)")
        #expect(out.contains("built 2") && !out.contains("rendered by an earlier build"), "\(out)")
    }
}
