import Foundation
import Testing
import TestSupport
import Builder
import Imaging

/// End to end on the real disk with the real engine: the demo manifest copied into a fresh folder.
struct DemoCopy {
    let root: URL
    var manifest: String { root.appendingPathComponent("Manifests/site.yaml").path }
    var site: URL { root.appendingPathComponent(".build/demo/site") }
    var state: URL { root.appendingPathComponent(".build/demo/state") }

    init() throws {
        root = try CLI.temporaryFolder()
        let project = CLI.samples.deletingLastPathComponent()
        try FileManager.default.copyItem(at: project.appendingPathComponent("Samples"), to: root.appendingPathComponent("Samples"))
        // The pictures README's demo builds beside the page (Manifests/page.yaml) are not sources:
        // a copy starts without them, as a fresh clone does (its builds would find them unowned).
        try? FileManager.default.removeItem(at: root.appendingPathComponent("Samples/site/pictures"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("Manifests"), withIntermediateDirectories: true)
        for name in ["site.yaml", "styles.yaml"] {
            try FileManager.default.copyItem(at: project.appendingPathComponent("Manifests/\(name)"),
                                             to: root.appendingPathComponent("Manifests/\(name)"))
        }
    }

    func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }

    /// Every file below `folder`, relative path → bytes.
    func files(under folder: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { return result }
        for case let url as URL in enumerator {
            guard let data = FileManager.default.contents(atPath: url.path), !url.hasDirectoryPath else { continue }
            result[String(url.standardizedFileURL.path.dropFirst(folder.standardizedFileURL.path.count))] = data
        }
        return result
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

@Suite(.ownThreads, .serialized) struct BuildTests {
    @Test func buildThenNothingToDo() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let first = try demo.run(["build", demo.manifest])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(String(decoding: first.stdout, as: UTF8.self).contains("built 35"))
        // Progress lines count successes as successes (it once called every output failed).
        #expect(first.stderr.contains("built 35/35") && !first.stderr.contains("failed"), "\(first.stderr)")
        let second = try demo.run(["build", demo.manifest])
        #expect(String(decoding: second.stdout, as: UTF8.self).contains("Nothing to do: 35 outputs up to date."))
        let plan = try demo.run(["plan", demo.manifest, "--detailed-exitcode"])
        #expect(plan.status == 0)
        #expect(try demo.run(["check", demo.manifest]).status == 0)
        // Real images with the right sizes.
        let thumb = try Raster.decode(try Data(contentsOf: demo.site.appendingPathComponent("thumbs/landscape.thumb.jpg")))
        #expect(thumb.width == 240 && thumb.height == 160)
        // The watermarked style read logo-alpha.png from the samples bucket: the logo's orange
        // ring sits in the bottom-right corner, where the photo is green.
        let stamped = try Raster.decode(try Data(contentsOf: demo.site.appendingPathComponent("stamped/landscape.webp")))
        #expect(stamped.width == 640)
        let corner = (stamped.width - 60..<stamped.width - 10).flatMap { x in (stamped.height - 60..<stamped.height - 10).map { stamped.pixel(x, $0) } }
        #expect(corner.filter { $0[0] > 180 && $0[1] < 140 }.count > 100)
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: demo.site.appendingPathComponent("derive-index.json"))) as? [String: Any]
        let landscape = (index?["sources"] as? [String: Any])?["samples/landscape.jpg"] as? [String: Any]
        let srcset = (landscape?["pictures"] as? [String: Any])?["srcset"] as? [String: Any]
        let webp = (srcset?["formats"] as? [[String: Any]])?.first
        #expect(webp?["srcset"] as? String == "/srcset/landscape-320.webp 320w, /srcset/landscape-640.webp 640w, /srcset/landscape-960.webp 960w")
        #expect(landscape?["width"] as? Int == 1200 && landscape?["height"] as? Int == 800)
        // portrait.jpg is 800 px wide: its 960 px member is one output at 800 px, not a copy.
        #expect(FileManager.default.fileExists(atPath: demo.site.appendingPathComponent("srcset/portrait-800.webp").path))
        #expect(!FileManager.default.fileExists(atPath: demo.site.appendingPathComponent("srcset/portrait-960.webp").path))
    }

    @Test func noOpBuildNeverStartsLibvips() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let environment = ["DERIVE_TRACE_VIPS": "1"]
        let first = try CLI.run(["build", demo.manifest, "--quiet"], in: demo.root, environment: environment)
        #expect(first.stderr.contains("libvips started"))
        let second = try CLI.run(["build", demo.manifest, "--quiet"], in: demo.root, environment: environment)
        #expect(String(decoding: second.stdout, as: UTF8.self).contains("Nothing to do"))
        // A render worker may be started to describe the engine when something fontconfig reads
        // changed (other tests' fonts, under a full run): that renders nothing. Nothing else may.
        #expect(Self.pixelStarts(second.stderr).isEmpty, "\(second.stderr)")
        // With no engine cache every command describes the engine: still no pixel work.
        let uncached = try CLI.run(["build", demo.manifest, "--quiet"], in: demo.root,
                                   environment: environment.merging(["DERIVE_ENGINE_CACHE": "off"]) { $1 })
        #expect(String(decoding: uncached.stdout, as: UTF8.self).contains("Nothing to do"))
        #expect(uncached.stderr.contains("derive-render-worker: libvips started to describe the engine"), "\(uncached.stderr)")
        #expect(Self.pixelStarts(uncached.stderr).isEmpty, "\(uncached.stderr)")
    }

    /// The traced libvips starts that may do pixel work: all but a worker describing the engine.
    static func pixelStarts(_ stderr: String) -> [Substring] {
        stderr.split(separator: "\n").filter { $0.contains("libvips started") && !$0.hasSuffix("to describe the engine") }
    }

    @Test func editsShowInPlanAndCheck() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        _ = try demo.run(["build", demo.manifest, "--quiet"])
        let styles = demo.root.appendingPathComponent("Manifests/styles.yaml")
        let text = try String(contentsOf: styles, encoding: .utf8).replacingOccurrences(of: "w_240,h_160", with: "w_300,h_200")
        try Data(text.utf8).write(to: styles)
        let plan = try demo.run(["plan", demo.manifest, "--detailed-exitcode"])
        #expect(plan.status == 2)
        let output = String(decoding: plan.stdout, as: UTF8.self)
        #expect(output.contains("~ site/thumbs/landscape.thumb.jpg  rebuild: style 'thumb': resize,w_240,h_160 → resize,w_300,h_200"))
        // Rebuilds change the lock's entries and the index's sizes: both listed, as the build rewrites both.
        #expect(output.contains("Plan: 0 to create, 9 to rebuild, 0 to delete, 26 up to date; rewrite site.lock, "), "\(output)")
        #expect(output.contains("~ site.lock  rewrite: lists the outputs this build changes (9 rebuilt)"), "\(output)")
        let check = try demo.run(["check", demo.manifest])
        #expect(check.status == 1)
        let json = try demo.run(["plan", demo.manifest, "--json"])
        let report = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        #expect((report?["summary"] as? [String: Int])?["rebuild"] == 9)
        let explain = try demo.run(["explain", ".build/demo/site/thumbs/landscape.thumb.jpg", "--manifest", demo.manifest])
        #expect(String(decoding: explain.stdout, as: UTF8.self).contains("recorded: image/resize,m_fill,w_240,h_160"))
    }

    /// Two clean builds in different folders give the same bytes and the same derive.lock.
    @Test func reproducible() throws {
        let a = try DemoCopy(), b = try DemoCopy()
        defer { a.remove(); b.remove() }
        #expect(try a.run(["build", a.manifest, "--quiet", "--jobs", "2"]).status == 0)
        #expect(try b.run(["build", b.manifest, "--quiet", "--jobs", "1"]).status == 0)
        let filesA = a.files(under: a.root.appendingPathComponent(".build/demo")).filter { !$0.key.contains("/state/") }
        let filesB = b.files(under: b.root.appendingPathComponent(".build/demo")).filter { !$0.key.contains("/state/") }
        #expect(filesA.count == 36)
        #expect(filesA == filesB)
        let lockA = try Data(contentsOf: a.root.appendingPathComponent("Manifests/site.lock"))
        let lockB = try Data(contentsOf: b.root.appendingPathComponent("Manifests/site.lock"))
        #expect(lockA == lockB)
    }

    /// A copy without the state (a fresh clone with committed outputs and derive.lock) hashes
    /// once and builds nothing.
    @Test func freshCloneBuildsNothing() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        _ = try demo.run(["build", demo.manifest, "--quiet"])
        let clone = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: clone) }
        let copy = clone.appendingPathComponent("copy")
        try FileManager.default.copyItem(at: demo.root, to: copy)
        try FileManager.default.removeItem(at: copy.appendingPathComponent(".build/demo/state"))
        let manifest = copy.appendingPathComponent("Manifests/site.yaml").path
        let plan = try CLI.run(["plan", manifest, "--detailed-exitcode"], in: copy)
        #expect(plan.status == 0, "\(String(decoding: plan.stdout, as: UTF8.self))")
        let build = try CLI.run(["build", manifest], in: copy)
        #expect(String(decoding: build.stdout, as: UTF8.self).contains("built 0, adopted 35 from site.lock"))
        #expect(String(decoding: try CLI.run(["build", manifest], in: copy).stdout, as: UTF8.self).contains("Nothing to do"))
    }

    @Test func secondBuildExitsNamingTheHolder() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let lock = try BuildLock(folder: demo.state.path)
        let result = try demo.run(["build", demo.manifest])
        #expect(result.status == BuildLock.busyExitCode)
        #expect(result.stderr.contains("another derive command holds the lock on this state (pid \(getpid())"))
        // Each path once (attack 46's low "cc": "(pid 7 on vm, building M), M").
        for path in [demo.manifest, demo.state.path, lock.path] {
            #expect(result.stderr.components(separatedBy: path).count <= 2, "\(path) named twice: \(result.stderr)")
        }
        withExtendedLifetime(lock) {}
    }

    /// A second build while a first one runs: the refusal names the manifest once (attack 46's
    /// low "cc": "(pid 7 on vm, building /w/derive.yaml), /w/derive.yaml").
    @Test func aSecondBuildDuringABuildNamesTheManifestOnce() throws {
        var images: [String: String] = [:]
        for index in 1...16 { images["images/s\(index).jpg"] = "landscape.jpg" }
        let site = try SiteRound11Tests.Site(images, manifest: """
            version: 1
            buckets:
              images: {path: images}
              site: {path: site}
            derivatives:
              - name: slow
                from: images/*.jpg
                process: image/resize,w_{w}/format,avif
                matrix: {w: [480, 960, 1100]}
                to: site/{name}-{w}.avif

            """)
        defer { site.remove() }
        let first = Process()
        first.executableURL = CLI.executable
        first.arguments = ["build", "--quiet", "--jobs", "1"]
        first.currentDirectoryURL = site.root
        first.environment = ProcessInfo.processInfo.environment.merging(["XDG_STATE_HOME": CLI.userStateHome.path]) { $1 }
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) }; first.waitUntilExit() }
        // Until the first build has written its line in the state's build.lock.
        let line = site.url(".derive/derive/build.lock").path
        for _ in 0..<200 where ((try? String(contentsOfFile: line, encoding: .utf8)) ?? "").isEmpty { usleep(20_000) }
        let second = try site.run(["build"])
        try #require(first.isRunning, "the first build ended before the second started")
        #expect(second.status == BuildLock.busyExitCode, "\(said(second))")
        #expect(second.stderr.contains("another derive command holds the lock on this state (pid \(first.processIdentifier)"), "\(second.stderr)")
        #expect(second.stderr.components(separatedBy: "derive.yaml").count == 2, "the manifest named other than once: \(second.stderr)")
    }

    @Test func heldLockMessageNamesThePathOnce() {
        let held = BuildLock.Held(holder: "pid 7 on vm, building /w/derive.yaml", path: "/w/derive.yaml")
        #expect(held.description == "another derive command holds the lock on this state (pid 7 on vm, building /w/derive.yaml); wait for it to finish")
        let other = BuildLock.Held(holder: "pid 7 on vm", path: "/w/.derive/derive/build.lock")
        #expect(other.description == "another derive command holds the lock on this state (pid 7 on vm), /w/.derive/derive/build.lock; wait for it to finish")
    }

    /// Builds killed at random points resume with no partial files and a consistent state.
    @Test func killedBuildsResume() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        var generator = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["build", demo.manifest, "--quiet", "--jobs", "2"]
            process.currentDirectoryURL = demo.root
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32.random(in: 20_000...250_000, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if round == 3 {
                // Make some work left for later rounds.
                try? FileManager.default.removeItem(at: demo.site.appendingPathComponent("srcset"))
            }
        }
        let final = try demo.run(["build", demo.manifest, "--quiet"])
        #expect(final.status == 0, "\(final.stderr)")
        let leftovers = demo.files(under: demo.root.appendingPathComponent(".build/demo")).keys.filter { $0.hasSuffix(".derive-tmp") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        let check = try demo.run(["check", demo.manifest])
        #expect(check.status == 0, "\(String(decoding: check.stdout, as: UTF8.self))")
    }

    /// A build killed while it takes the lock never leaves an empty `build.lock` (which, beside no
    /// state database, the next build must refuse as possibly a user's file).
    @Test func aBuildKilledAtItsStartNeverLeavesAnEmptyLock() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let lock = demo.state.appendingPathComponent("build.lock").path
        for delay in stride(from: 0, through: 180_000, by: 12_000) {
            try? FileManager.default.removeItem(at: demo.state)
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["build", demo.manifest, "--quiet"]
            process.currentDirectoryURL = demo.root
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32(delay))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if let data = FileManager.default.contents(atPath: lock) {
                #expect(data.starts(with: Data("pid ".utf8)), "after a kill at \(delay / 1000) ms: \(data.count) bytes")
            }
        }
        let final = try demo.run(["build", demo.manifest, "--quiet"])
        #expect(final.status == 0, "\(final.stderr)")
    }

    /// Taking a lock whose old holder's line was longer leaves exactly the new holder's line.
    @Test func aLockOverALongerLineHoldsExactlyTheNewLine() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("build.lock").path
        try Data(("pid 1 on " + String(repeating: "h", count: 300) + ", since 2020-01-01T00:00:00Z\n").utf8).write(to: URL(fileURLWithPath: path))
        let lock = try BuildLock(folder: folder.path)
        let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        #expect(text.hasPrefix("pid \(getpid()) on "))
        #expect(text.hasSuffix("Z\n") && text.filter { $0 == "\n" }.count == 1 && !text.contains("hhhh"), "\(text)")
        withExtendedLifetime(lock) {}
    }

    @Test func cleanRemovesOnlyWhatItBuilt() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        _ = try demo.run(["build", demo.manifest, "--quiet"])
        let keep = demo.site.appendingPathComponent("thumbs/mine.txt")
        try Data("not Derive's".utf8).write(to: keep)
        let result = try demo.run(["clean", demo.manifest])
        #expect(result.status == 0)
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("Removed 35 outputs"))
        #expect(FileManager.default.fileExists(atPath: keep.path))
        #expect(!FileManager.default.fileExists(atPath: demo.site.appendingPathComponent("thumbs/landscape.thumb.jpg").path))
        #expect(!FileManager.default.fileExists(atPath: demo.root.appendingPathComponent("Manifests/site.lock").path))
        #expect(FileManager.default.fileExists(atPath: demo.root.appendingPathComponent("Samples/landscape.jpg").path))
        #expect(demo.files(under: demo.state).isEmpty)
    }

    @Test func failuresAreReportedAndOthersBuilt() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let broken = demo.root.appendingPathComponent("Samples/broken.jpg")
        let bytes = try Data(contentsOf: demo.root.appendingPathComponent("Samples/portrait.jpg"))
        try bytes.prefix(bytes.count / 3).write(to: broken)
        let result = try demo.run(["build", demo.manifest, "--quiet"])
        #expect(result.status == 1)
        // One line for the source (#13: errors grouped by source), which names its outputs (up to
        // three: attack 53c's F4), each on a line of its own with --verbose.
        #expect(result.stderr.contains("derive: failure: samples/broken.jpg: ") && result.stderr.contains(", 2 derivatives not built: "), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").filter { $0.contains("previews/preview/broken.png") }.count == 1, "\(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("built 35"))
        let verbose = try demo.run(["build", demo.manifest, "--quiet", "--verbose"])
        // Cut short, it fails when planned (round 11, N5): one line for the source, counting its outputs.
        #expect(verbose.status == 1 && verbose.stderr.contains("samples/broken.jpg: the source image is corrupt or truncated: "), "\(verbose.stderr)")
        #expect(!FileManager.default.fileExists(atPath: demo.root.appendingPathComponent(".build/demo/previews/preview/broken.png").path))
    }
}
