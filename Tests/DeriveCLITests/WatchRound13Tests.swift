import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Watch mode after the twelfth build-safety attack (issue 9, W1 to W3 and the known link chains):
/// a bucket missing at start, a link above a bucket pointed elsewhere, an output folder moved away.
@Suite(.ownThreads, .serialized) struct WatchRound13Tests {
    static func manifest(source: String, output: String = "out") -> String {
        """
        version: 1
        buckets:
          src: {path: \(source)}
          out: {path: \(output)}
        derivatives:
          - name: small
            from: src/*.jpg
            process: image/resize,w_64
            to: out/sub/{name}.{ext}
        index: out/sub/index.json

        """
    }

    func exists(_ watch: WatchSession, _ path: String) -> Bool {
        FileManager.default.fileExists(atPath: watch.root.appendingPathComponent(path).path)
    }

    func check(_ watch: WatchSession) throws -> (status: Int32, text: String) {
        let result = try CLI.run(["check", watch.manifest.path], in: watch.root)
        return (result.status, String(decoding: result.stdout, as: UTF8.self) + result.stderr)
    }

    // MARK: W1: a source bucket missing when the watch starts is built when it appears

    /// `src` (or `media`, above `media/src`) is not there at start (a mount, a clone or a sync not
    /// done yet), or is a loop of links: the first build fails, and the folder appearing builds.
    @Test(arguments: ["src", "media/src", "media/src (media missing)", "src (a loop of links)"])
    func aSourceBucketMissingAtStartIsBuiltWhenItAppears(_ shape: String) throws {
        let bucket = shape.hasPrefix("media") ? "media/src" : "src"
        let moved = shape.contains("media missing") ? "media" : bucket
        let watch = try WatchSession(manifestText: Self.manifest(source: bucket)) { root in
            try copySample("landscape.jpg", to: root.appendingPathComponent("hold/\(bucket)/a1.jpg"))
            if moved == "media" {
                // media/src comes with its parent.
            } else if bucket == "media/src" {
                try FileManager.default.createDirectory(at: root.appendingPathComponent("media"), withIntermediateDirectories: true)
            }
            if shape.contains("loop") { try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("src").path, withDestinationPath: "src") }
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.lines.last?.contains("not built") ?? false, "\(watch.lines) \(watch.standardError)")
        usleep(300_000)
        if shape.contains("loop") { try FileManager.default.removeItem(at: watch.root.appendingPathComponent("src")) }
        #expect(rename(watch.root.appendingPathComponent("hold/\(moved)").path, watch.root.appendingPathComponent(moved).path) == 0)
        #expect(watch.wait(30) { exists(watch, "out/sub/a1.jpg") }, "the bucket that appeared was not built: \(watch.lines) \(watch.standardError)")
        let lines = watch.lines.count
        usleep(500_000)
        try copySample("portrait.jpg", to: watch.root.appendingPathComponent("\(bucket)/n1.jpg"))
        #expect(watch.wait(30) { exists(watch, "out/sub/n1.jpg") && watch.lines.count > lines },
                "a file added to the bucket that appeared was not built: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        let checked = try check(watch)
        #expect(checked.status == 0, "\(checked.text)")
    }

    // MARK: W2: a link above a source bucket, or in a chain of links to it, pointed elsewhere

    /// `media` → `M1` (bucket `media/src`) repointed to `M2`; and `src` → `s1` → `RA` with `s1`
    /// repointed to `RB`: the new folder is built and followed, the old one is not.
    @Test(arguments: ["a link above the bucket", "a chain of links to the bucket"])
    func aLinkOnTheWayToASourceBucketRepointedIsFollowed(_ shape: String) throws {
        let above = shape.contains("above")
        let watch = try WatchSession(manifestText: Self.manifest(source: above ? "media/src" : "src")) { root in
            let old = above ? "M1/src" : "RA", new = above ? "M2/src" : "RB"
            try copySample("landscape.jpg", to: root.appendingPathComponent("\(old)/a1.jpg"))
            try copySample("landscape.jpg", to: root.appendingPathComponent("\(new)/b1.jpg"))
            if above {
                try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("media").path, withDestinationPath: "M1")
            } else {
                try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("s1").path, withDestinationPath: "RA")
                try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("src").path, withDestinationPath: "s1")
            }
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(exists(watch, "out/sub/a1.jpg"), "\(watch.lines) \(watch.standardError)")
        // ln -sfn: a new link renamed over the old one.
        let link = watch.root.appendingPathComponent(above ? "media" : "s1").path
        try FileManager.default.createSymbolicLink(atPath: link + ".new", withDestinationPath: above ? "M2" : "RB")
        #expect(rename(link + ".new", link) == 0)
        #expect(watch.wait(30) { exists(watch, "out/sub/b1.jpg") && !exists(watch, "out/sub/a1.jpg") },
                "the repointed link was not followed: \(watch.lines) \(watch.standardError)")
        let lines = watch.lines.count
        usleep(500_000)
        try copySample("portrait.jpg", to: watch.root.appendingPathComponent(above ? "M2/src/n1.jpg" : "RB/n1.jpg"))
        #expect(watch.wait(30) { exists(watch, "out/sub/n1.jpg") && watch.lines.count > lines },
                "a file added to the new folder was not built: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        let checked = try check(watch)
        #expect(checked.status == 0, "\(checked.text)")
    }

    // MARK: W3: an output folder moved away, or replaced by a link, is a change

    @Test(arguments: ["mv out/sub out/old-sub", "mv out out.bak"])
    func anOutputFolderMovedAwayIsBuiltAgain(_ move: String) throws {
        let watch = try WatchSession(manifestText: Self.manifest(source: "src")) { root in
            try copySample("landscape.jpg", to: root.appendingPathComponent("src/a1.jpg"))
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(exists(watch, "out/sub/a1.jpg") && exists(watch, "out/sub/index.json"), "\(watch.lines) \(watch.standardError)")
        let parts = move.split(separator: " ").map(String.init)
        #expect(rename(watch.root.appendingPathComponent(parts[1]).path, watch.root.appendingPathComponent(parts[2]).path) == 0)
        #expect(watch.wait(30) { exists(watch, "out/sub/a1.jpg") && exists(watch, "out/sub/index.json") },
                "the outputs moved away were not built again: \(watch.lines) \(watch.standardError)")
        #expect(watch.wait(10) { (try? check(watch).status) == 0 }, "\((try? check(watch).text) ?? "")")
        #expect(watch.terminate() == 0)
    }

    /// `out/sub` swapped for a link to a folder outside the bucket while watching: the build that
    /// follows writes nothing through the link (per-write confinement) and says why.
    @Test func anOutputFolderSwappedForALinkIsNeverWrittenThrough() throws {
        let watch = try WatchSession(manifestText: Self.manifest(source: "src")) { root in
            try copySample("landscape.jpg", to: root.appendingPathComponent("src/a1.jpg"))
            try FileManager.default.createDirectory(at: root.appendingPathComponent("elsewhere"), withIntermediateDirectories: true)
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(exists(watch, "out/sub/a1.jpg"), "\(watch.lines) \(watch.standardError)")
        let lines = watch.lines.count
        #expect(rename(watch.root.appendingPathComponent("out/sub").path, watch.root.appendingPathComponent("out/sub.x").path) == 0)
        try FileManager.default.createSymbolicLink(atPath: watch.root.appendingPathComponent("out/sub").path,
                                                   withDestinationPath: watch.root.appendingPathComponent("elsewhere").path)
        #expect(watch.wait(30) { watch.lines.count > lines }, "the swapped output folder was not seen: \(watch.lines) \(watch.standardError)")
        usleep(500_000)
        try copySample("portrait.jpg", to: watch.root.appendingPathComponent("src/n1.jpg"))
        #expect(watch.wait(30) { watch.lines.count > lines + 1 }, "\(watch.lines) \(watch.standardError)")
        let written = try FileManager.default.contentsOfDirectory(atPath: watch.root.appendingPathComponent("elsewhere").path)
        #expect(written.isEmpty, "a build wrote through the link: \(written)")
        #expect(watch.standardError.contains("symbolic link"), "\(watch.standardError)")
        #expect(watch.terminate() == 0)
    }

    /// The output bucket reached through `L1` → `L2` → `R1`; `L2` pointed at `R2` (holding a
    /// user's file where an output goes): the watch builds into the folder now there, keeps the
    /// user's file, and leaves `R1` as it was.
    @Test func aLinkInAChainAboveTheOutputBucketRepointedIsFollowed() throws {
        let watch = try WatchSession(manifestText: Self.manifest(source: "src", output: "L1/out")) { root in
            try copySample("landscape.jpg", to: root.appendingPathComponent("src/a1.jpg"))
            try FileManager.default.createDirectory(at: root.appendingPathComponent("R1/out"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("R2/out/sub"), withIntermediateDirectories: true)
            try Data("user's\n".utf8).write(to: root.appendingPathComponent("R2/out/sub/a1.jpg"))
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("L2").path, withDestinationPath: "R1")
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("L1").path, withDestinationPath: "L2")
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(exists(watch, "R1/out/sub/a1.jpg"), "\(watch.lines) \(watch.standardError)")
        let lines = watch.lines.count
        let link = watch.root.appendingPathComponent("L2").path
        try FileManager.default.createSymbolicLink(atPath: link + ".new", withDestinationPath: "R2")
        #expect(rename(link + ".new", link) == 0)
        #expect(watch.wait(30) { watch.lines.count > lines }, "the repointed link was not followed: \(watch.lines) \(watch.standardError)")
        #expect(try Data(contentsOf: watch.root.appendingPathComponent("R2/out/sub/a1.jpg")) == Data("user's\n".utf8))
        #expect(watch.standardError.contains("R2/out/sub/a1.jpg") || watch.standardError.contains("out/sub/a1.jpg"), "\(watch.standardError)")
        #expect(watch.terminate() == 0)
    }
}
