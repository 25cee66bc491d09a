import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 17's N3, end to end through the binary: a source folder a `**` rule reads replaced by
/// a symbolic link (`mv src/photos ../photos.bak; ln -s ../photos.bak src/photos`, or a photo
/// folder linked in). Derive never follows a link inside a bucket; before the fix its sources
/// silently vanished: `- out/photos/a.jpg  delete: no longer produced by the manifest`, `built 0,
/// deleted 1`, exit 0, and `check` "Up to date". Now the link is named as a failure (exit 1) and
/// the outputs of the sources that were below it are kept while it stays.
@Suite(.ownThreads, .serialized) struct SourceFolderLinkTests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: pic
            from: src/**/*.jpg
            process: image/resize,w_32
            to: out/{dir}/{name}.{ext}

        """

    struct Project {
        let root: URL
        init(_ manifest: String = SourceFolderLinkTests.manifest) throws {
            root = try CLI.temporaryFolder()
            for (name, path) in [("landscape.jpg", "src/photos/a.jpg"), ("portrait.jpg", "src/keep/b.jpg"), ("cmyk.jpg", "ext/c.jpg")] {
                try FileManager.default.createDirectory(at: url(path).deletingLastPathComponent(), withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: url(path))
            }
            try Data(manifest.utf8).write(to: url("derive.yaml"))
        }
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: url(path).path) }
        func run(_ arguments: [String]) throws -> (status: Int32, text: String) {
            let result = try CLI.run(arguments, in: root)
            return (result.status, String(decoding: result.stdout, as: UTF8.self) + result.stderr)
        }
        func link(_ path: String, to target: String) throws {
            try FileManager.default.createSymbolicLink(atPath: url(path).path, withDestinationPath: target)
        }
        /// `mv src/photos moved/photos; ln -s ../moved/photos src/photos`.
        func moveAndLinkBack() throws {
            try FileManager.default.createDirectory(at: url("moved"), withIntermediateDirectories: true)
            #expect(rename(url("src/photos").path, url("moved/photos").path) == 0)
            try link("src/photos", to: "../moved/photos")
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static let named = "src/photos: is a symbolic link (to a folder), which Derive never follows inside a bucket; its files are not sources"

    @Test(arguments: ["plan", "build", "check"])
    func aSourceFolderMovedAwayAndLinkedBackIsNamedAndItsOutputsAreKept(_ command: String) throws {
        let project = try Project()
        defer { project.remove() }
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(first.text)")
        #expect(project.exists("out/photos/a.jpg") && project.exists("out/keep/b.jpg"), "\(first.text)")
        try project.moveAndLinkBack()
        let result = try project.run([command])
        #expect(result.status == 1, "\(command) said all is well: \(result.text)")
        #expect(result.text.contains(Self.named), "\(result.text)")
        #expect(!result.text.contains("no longer produced"), "\(result.text)")
        #expect(!result.text.contains("Up to date"), "\(result.text)")
        #expect(project.exists("out/photos/a.jpg"), "the output of a source behind the link was deleted: \(result.text)")
        #expect(project.exists("out/keep/b.jpg"))
        if command != "check" {
            // The summary says what happened to it (the summary wording of session 26).
            #expect(result.text.contains(command == "plan" ? "1 kept as built (its source could not be read)" : "kept 1 as built (its source could not be read)"), "\(result.text)")
        }
        if command == "build" {
            // Again: still named, still kept; the lock still lists the kept output.
            let again = try project.run(["build"])
            #expect(again.status == 1 && again.text.contains(Self.named), "\(again.text)")
            #expect(project.exists("out/photos/a.jpg"))
            let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
            #expect(lock.contains("out/photos/a.jpg"), "\(lock)")
        }
        // The folder put back: nothing to rebuild, nothing deleted, check clean.
        try FileManager.default.removeItem(at: project.url("src/photos"))
        #expect(rename(project.url("moved/photos").path, project.url("src/photos").path) == 0)
        let back = try project.run(["build"])
        #expect(back.status == 0, "\(back.text)")
        #expect(!back.text.contains("deleted") && !back.text.contains("built 1"), "\(back.text)")
        #expect(project.exists("out/photos/a.jpg"))
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(check.text)")
    }

    /// A fresh clone (no state) whose source folder is already a link at its first build: the
    /// rule fails there and the outputs are kept, and so are their lines in derive.lock (they were
    /// dropped: the lock is written from the state, which had no record of them), so when the
    /// folder comes back the build adopts the output the lock vouches for instead of refusing
    /// "exists and was not written by Derive".
    @Test func aFreshCloneWhoseSourceFolderIsALinkAdoptsItsOutputsWhenTheFolderComesBack() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let output = try Data(contentsOf: project.url("out/photos/a.jpg"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.moveAndLinkBack()
        for _ in 0..<2 {
            let build = try project.run(["build"])
            #expect(build.status == 1 && build.text.contains(Self.named), "\(build.text)")
            #expect(!build.text.contains("no longer produced") && !build.text.contains("deleted"), "\(build.text)")
            #expect(try Data(contentsOf: project.url("out/photos/a.jpg")) == output)
            let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
            #expect(lock.contains("\"out/photos/a.jpg\""), "the kept output's line was dropped: \(lock)")
        }
        let check = try project.run(["check"])
        #expect(check.status == 1 && check.text.contains(Self.named), "\(check.text)")
        #expect(!check.text.contains("not produced by the manifest"), "\(check.text)")
        try FileManager.default.removeItem(at: project.url("src/photos"))
        #expect(rename(project.url("moved/photos").path, project.url("src/photos").path) == 0)
        let back = try project.run(["build"])
        #expect(back.status == 0, "\(back.text)")
        #expect(!back.text.contains("was not written by Derive") && back.text.hasPrefix("built 0,"), "\(back.text)")
        #expect(back.text.contains("adopted 1 from derive.lock"), "\(back.text)")
        #expect(try Data(contentsOf: project.url("out/photos/a.jpg")) == output)
        let clean = try project.run(["check"])
        #expect(clean.status == 0, "\(clean.text)")
        // out/keep/b.jpg, adopted at the first build on the line's word; out/photos/a.jpg came back
        // once a state existed, so the build rendered it again and adopted it verified (round 24's H2).
        #expect(clean.text.contains("1 output adopted from derive.lock unverified"), "\(clean.text)")
        #expect(back.text.contains("verified 1"), "\(back.text)")
    }

    /// The same return when the file was replaced meanwhile by one that is not the lock line's
    /// (another picture): never written over, refused as a user's file.
    @Test func aFileThatIsNotTheKeptLinesIsNotOverwrittenWhenTheFolderComesBack() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.moveAndLinkBack()
        #expect(try project.run(["build", "-q"]).status == 1)
        let users = try Data(contentsOf: project.url("out/keep/b.jpg"))
        try users.write(to: project.url("out/photos/a.jpg"))
        try FileManager.default.removeItem(at: project.url("src/photos"))
        #expect(rename(project.url("moved/photos").path, project.url("src/photos").path) == 0)
        let back = try project.run(["build"])
        #expect(back.status == 1, "\(back.text)")
        #expect(back.text.contains("out/photos/a.jpg exists and was not written by Derive"), "\(back.text)")
        #expect(try Data(contentsOf: project.url("out/photos/a.jpg")) == users)
    }

    /// A photo folder linked in (`ln -s ../ext src/more`): named, nothing built from it, the rest
    /// built; removing the link makes the build clean again.
    @Test func aFolderLinkedIntoTheBucketIsNamed() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.link("src/more", to: "../ext")
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(build.text)")
        #expect(build.text.contains("src/more: is a symbolic link (to a folder)") && build.text.contains("more/**"), "\(build.text)")
        #expect(!project.exists("out/more/c.jpg"))
        #expect(try project.run(["check"]).status == 1)
        try FileManager.default.removeItem(at: project.url("src/more"))
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(try project.run(["check"]).status == 0)
    }

    /// A link the pattern would not descend into (`from: src/keep/*.jpg`), or one an `exclude:`
    /// takes away whole: nothing to say, exit 0, check clean.
    @Test(arguments: ["from: src/keep/*.jpg", "exclude: [more/**]"])
    func aLinkedFolderNoPatternReachesChangesNothing(_ change: String) throws {
        let text = change.hasPrefix("from")
            ? Self.manifest.replacingOccurrences(of: "from: src/**/*.jpg", with: change)
            : Self.manifest.replacingOccurrences(of: "    from: src/**/*.jpg\n", with: "    from: src/**/*.jpg\n    \(change)\n")
        let project = try Project(text)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.link("src/more", to: "../ext")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.text)")
        #expect(!build.text.contains("symbolic link"), "\(build.text)")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(check.text)")
    }

    /// `clean` removes every output it recorded, the ones of sources behind the link too (they
    /// are Derive's files, digest-checked), and nothing through the link.
    @Test func cleanRemovesTheRecordedOutputsAndNothingThroughTheLink() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.moveAndLinkBack()
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.text)")
        #expect(!project.exists("out/photos/a.jpg") && !project.exists("out/keep/b.jpg"), "\(clean.text)")
        #expect(project.exists("moved/photos/a.jpg") && project.exists("src/keep/b.jpg"))
    }

    /// A folder Derive cannot read (mode 000): named, its outputs kept, and built again as
    /// nothing new once readable. Root reads any folder, so under root (CI) the commands run as
    /// `nobody` through setpriv(1) (`UnprivilegedDerive`); skipped when neither is possible.
    @Test(.enabled(if: UnprivilegedDerive.isPossible))
    func aFolderThatCannotBeReadIsNamedAndItsOutputsAreKept() throws {
        let project = try Project()
        defer { chmod(project.url("src/photos").path, 0o755); project.remove() }
        let derive = try UnprivilegedDerive(in: project.root)
        defer { derive.remove() }
        func run(_ arguments: [String]) throws -> (status: Int32, text: String) { try derive.run(arguments) }
        let first = try run(["build", "-q"])
        #expect(first.status == 0, "\(first.text)")
        #expect(chmod(project.url("src/photos").path, 0) == 0)
        for command in ["plan", "build", "check"] {
            let result = try run([command])
            #expect(result.status == 1, "\(command): \(result.text)")
            #expect(result.text.contains("src/photos: is a folder Derive cannot read (Permission denied); its files are not sources"), "\(command): \(result.text)")
            #expect(!result.text.contains("no longer produced"), "\(command): \(result.text)")
            #expect(project.exists("out/photos/a.jpg"), "\(command): \(result.text)")
        }
        #expect(chmod(project.url("src/photos").path, 0o755) == 0)
        let back = try run(["build"])
        #expect(back.status == 0 && back.text.contains("Nothing to do"), "\(back.text)")
        #expect(try run(["check"]).status == 0)
    }

    /// The same under `--watch`: the swap is a change, the rebuild names the link and keeps the
    /// output (before: `src/photos changed: built 0, deleted 1`); the folder put back rebuilds
    /// nothing and check is clean.
    @Test func underWatchTheLinkIsNamedAndTheOutputsAreKept() throws {
        let watch = try WatchSession(manifestText: Self.manifest) { root in
            for (name, path) in [("landscape.jpg", "src/photos/a.jpg"), ("portrait.jpg", "src/keep/b.jpg")] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(path).deletingLastPathComponent(), withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: root.appendingPathComponent(path))
            }
            try FileManager.default.createDirectory(at: root.appendingPathComponent("moved"), withIntermediateDirectories: true)
        }
        defer { watch.remove() }
        let out = watch.root.appendingPathComponent("out/photos/a.jpg").path
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(FileManager.default.fileExists(atPath: out), "\(watch.lines) \(watch.standardError)")
        usleep(300_000)
        #expect(rename(watch.root.appendingPathComponent("src/photos").path, watch.root.appendingPathComponent("moved/photos").path) == 0)
        try FileManager.default.createSymbolicLink(atPath: watch.root.appendingPathComponent("src/photos").path, withDestinationPath: "../moved/photos")
        #expect(watch.wait(30) { watch.lines.count >= 2 && watch.standardError.contains(Self.named) },
                "the link was not named: \(watch.lines) \(watch.standardError)")
        usleep(500_000)
        #expect(FileManager.default.fileExists(atPath: out), "the output was deleted: \(watch.lines) \(watch.standardError)")
        #expect(!watch.lines.joined().contains("deleted"), "\(watch.lines)")
        #expect(watch.terminate() == 0)
        let check = try CLI.run(["check", watch.manifest.path], in: watch.root)
        #expect(check.status == 1, "\(String(decoding: check.stdout, as: UTF8.self)) \(check.stderr)")
    }
}
