import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The third attack on build safety (issue 9), items 3, 5, 6, 7: end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound3ETests {
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static func manifest(out: String = "out", extra: String = "") -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(out)}
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}
        \(extra)
        """
    }

    /// A folder with `src/` holding two sample images.
    static func folder(_ url: URL) throws {
        let src = url.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "orientation-1.jpg"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: src.appendingPathComponent(name))
        }
    }

    static func write(_ url: URL, _ text: String) throws { try Data(text.utf8).write(to: url) }

    // MARK: 3: a lock names its manifest by its path from the lock's folder

    @Test func aLockOfAnotherFoldersManifestWithTheSameNameIsRefused() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        try Self.folder(a)
        try Self.folder(b)
        try Self.write(a.appendingPathComponent("site.yaml"), Self.manifest(extra: "lock: mylock.lock\n"))
        try Self.write(b.appendingPathComponent("site.yaml"), Self.manifest(extra: "lock: ../a/mylock.lock\n"))
        #expect(try CLI.run(["build", "-q", "site.yaml"], in: a).status == 0)
        let lockURL = a.appendingPathComponent("mylock.lock")
        let lock = try Data(contentsOf: lockURL)
        #expect(text(lock).hasPrefix(#"{"format":"derive.lock/2","manifest":"site.yaml""#), "\(text(lock))")
        let build = try CLI.run(["build", "-q", "site.yaml"], in: b)
        #expect(build.status == 1, "\(build.stderr)")
        // Named from this manifest's folder (attack 48b's F4: the name from the lock's folder,
        // `site.yaml`, is no file beside b's manifest); validate refuses the `lock:` now too.
        #expect(build.stderr.contains("is the lock of \(a.appendingPathComponent("site.yaml").path)"), "\(build.stderr)")
        #expect(try Data(contentsOf: lockURL) == lock)
        _ = try CLI.run(["clean", "site.yaml"], in: b)
        #expect(try Data(contentsOf: lockURL) == lock, "clean deleted or rewrote a's lock")
        #expect(try CLI.run(["build", "-q", "site.yaml"], in: a).status == 0)
        // A lock in another folder names the manifest by its relative path.
        try Self.write(b.appendingPathComponent("site.yaml"), Self.manifest(extra: "lock: ../a/b.lock\n"))
        #expect(try CLI.run(["build", "-q", "site.yaml"], in: b).status == 0)
        let bLock = text(try Data(contentsOf: a.appendingPathComponent("b.lock")))
        #expect(bLock.hasPrefix(#"{"format":"derive.lock/2","manifest":"../b/site.yaml""#), "\(bLock)")
        // A copy of the whole project keeps both owners valid.
        let copy = root.appendingPathComponent("copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: a, to: copy.appendingPathComponent("a"))
        try FileManager.default.copyItem(at: b, to: copy.appendingPathComponent("b"))
        let copied = try CLI.run(["check", "site.yaml"], in: copy.appendingPathComponent("b"))
        #expect(copied.status == 0, "\(text(copied.stdout)) \(copied.stderr)")
    }

    // MARK: 5: deleting build.lock does not let a second build in

    @Test func deletingTheBuildLockFileDoesNotLetASecondBuildRun() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.folder(root)
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest())
        #expect(try CLI.run(["build", "-q"], in: root).status == 0)
        let state = root.appendingPathComponent(".derive/derive").path
        let held = try BuildLock(folder: state)
        try FileManager.default.removeItem(atPath: state + "/" + BuildLock.fileName)
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest().replacingOccurrences(of: "w_32", with: "w_24"))
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status == BuildLock.busyExitCode, "a second build ran: \(build.stderr)")
        #expect(build.stderr.contains(".derive/derive"), "\(build.stderr)")
        let clean = try CLI.run(["clean"], in: root)
        #expect(clean.status == BuildLock.busyExitCode, "\(clean.stderr)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("out/landscape.jpg").path))
        withExtendedLifetime(held) {}
    }

    // MARK: 6: every sibling a manifest of the same stem could be

    @Test func aJSONOrExtensionlessManifestBesideDeriveYamlSharesItsLock() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.folder(root)
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest())
        #expect(try CLI.run(["validate"], in: root).status == 0)
        for sibling in ["derive.json", "derive"] {
            let url = root.appendingPathComponent(sibling)
            try Self.write(url, Self.manifest(out: "out2"))
            for (manifest, other) in [("derive.yaml", sibling), (sibling, "derive.yaml")] {
                let validate = try CLI.run(["validate", manifest], in: root)
                #expect(validate.status == 1, "\(manifest) beside \(other): \(validate.stderr)")
                #expect(validate.stderr.contains("would share the lock derive.lock"), "\(validate.stderr)")
            }
            #expect(try CLI.run(["build", "-q"], in: root).status == 1)
            #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("derive.lock").path))
            try FileManager.default.removeItem(at: url)
        }
        // A program (or any binary file) named `derive` is not a manifest.
        try Data([0x7F, 0x45, 0x4C, 0x46, 0, 0, 0] + Array("buckets".utf8)).write(to: root.appendingPathComponent("derive"))
        let validate = try CLI.run(["validate"], in: root)
        #expect(validate.status == 0, "\(validate.stderr)")
    }

    // MARK: 7: plan writes nothing

    func listing(_ folder: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        for name in (try? FileManager.default.subpathsOfDirectory(atPath: folder.path)) ?? [] {
            result[name] = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) ?? Data()
        }
        return result
    }

    @Test func planWritesNothingToTheState() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.folder(root)
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest())
        let fresh = try CLI.run(["plan"], in: root)
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(text(fresh.stdout).contains("create"), "\(text(fresh.stdout))")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent(".derive").path), "plan created the state")
        #expect(try CLI.run(["build", "-q"], in: root).status == 0)
        // Committed: with the state corrupt, the restyle renders over the outputs on git's proof.
        try GitProofCLITests.commitAll(root)
        // A corrupt state is described, not moved aside.
        let state = root.appendingPathComponent(".derive/derive")
        try Self.write(state.appendingPathComponent("state.sqlite"), String(repeating: "not a database ", count: 300))
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest().replacingOccurrences(of: "w_32", with: "w_24"))
        let before = listing(state)
        let plan = try CLI.run(["plan"], in: root)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stderr.contains("corrupt"), "\(plan.stderr)")
        #expect(listing(state) == before, "plan changed the state folder")
    }

    // MARK: 4: a bucket path that is a link, pointed elsewhere

    @Test func orphansAreDeletedInTheFolderTheyWereWrittenToNotWhereALinkNowPoints() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.folder(root)
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("out"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("out2"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("outlink").path, withDestinationPath: "out")
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest(out: "outlink"))
        #expect(try CLI.run(["build", "-q"], in: root).status == 0)
        let orphan = try Data(contentsOf: root.appendingPathComponent("out/orientation-1.jpg"))
        // The user's own copy, same bytes, in the folder the link will point to.
        try orphan.write(to: root.appendingPathComponent("out2/orientation-1.jpg"))
        try fm.removeItem(at: root.appendingPathComponent("outlink"))
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("outlink").path, withDestinationPath: "out2")
        try Self.write(root.appendingPathComponent("derive.yaml"),
                       Self.manifest(out: "outlink").replacingOccurrences(of: "src/*.jpg", with: "src/landscape.jpg"))
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try Data(contentsOf: root.appendingPathComponent("out2/orientation-1.jpg")) == orphan, "the user's file in the new folder was deleted")
        #expect(!fm.fileExists(atPath: root.appendingPathComponent("out/orientation-1.jpg").path), "the orphan in the folder it was written to was left")
        #expect(fm.fileExists(atPath: root.appendingPathComponent("out2/landscape.jpg").path))
        #expect(text(build.stdout).contains("deleted"), "\(text(build.stdout))")
    }

    // MARK: 10a: a sibling with its own lock and state shares nothing

    @Test func aSiblingWithItsOwnLockAndStateDoesNotBlockDeriveYaml() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.folder(root)
        try Self.write(root.appendingPathComponent("derive.yaml"), Self.manifest())
        try Self.write(root.appendingPathComponent("derive.yml"), Self.manifest(out: "out2", extra: "lock: yml.lock\nstate: .derive/yml\n"))
        let validate = try CLI.run(["validate", "derive.yaml"], in: root)
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(try CLI.run(["build", "-q", "derive.yaml"], in: root).status == 0)
        #expect(try CLI.run(["build", "-q", "derive.yml"], in: root).status == 0)
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("derive.lock").path))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("yml.lock").path))
        // Its own lock but the default state: still shared.
        try Self.write(root.appendingPathComponent("derive.yml"), Self.manifest(out: "out2", extra: "lock: yml.lock\n"))
        let shared = try CLI.run(["validate", "derive.yaml"], in: root)
        #expect(shared.status == 1)
        #expect(shared.stderr.contains("would share"), "\(shared.stderr)")
    }
}
