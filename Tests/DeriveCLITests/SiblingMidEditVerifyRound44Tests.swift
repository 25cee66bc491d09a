import Foundation
import Testing
import TestSupport

/// Attack 43b's finding 2: siblings A and B render the same sources into a shared `../pub`; B
/// built, then B's manifest was caught mid-edit (a half-typed line, or emptied by an editor's
/// save). A's `build --verify`, which Derive's own hint advises, took B's recorded outputs ("verified
/// 3") and A's clean then deleted them. A project whose manifest does not parse has unknown
/// buckets, but its lock and its build state still record those files with these very bytes: they
/// are its outputs, which `--verify` never takes (`--overwrite` does, as for any other's output).
@Suite(.ownThreads) struct SiblingMidEditVerifyRound44Tests {
    static func manifest() -> String {
        """
        version: 1
        buckets:
          src: {path: ../shared}
          out: {path: ../pub}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_32
            to: out/t/{name}.jpg
        """
    }

    /// R/shared with two photos, R/A and R/B with the same manifest, B built.
    static func siblings() throws -> URL {
        let root = try CLI.temporaryFolder()
        for folder in ["shared", "A", "B"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("shared/a1.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: root.appendingPathComponent("shared/a2.jpg"))
        for project in ["A", "B"] {
            try manifest().write(to: root.appendingPathComponent("\(project)/derive.yaml"), atomically: true, encoding: .utf8)
        }
        let built = try CLI.run(["build", "-q"], in: root.appendingPathComponent("B"))
        #expect(built.status == 0, "\(built.stderr)")
        return root
    }

    static func outputs(_ root: URL) throws -> [String: Data] {
        var found: [String: Data] = [:]
        for name in ["a1.jpg", "a2.jpg"] { found[name] = try Data(contentsOf: root.appendingPathComponent("pub/t/\(name)")) }
        return found
    }

    /// A half-typed line, or the file emptied: neither `--verify` nor `--verify-all` takes B's
    /// outputs, clean removes none of them, and `--overwrite` still may.
    @Test(arguments: ["half-typed", "emptied"]) func verifyNeverTakesTheOutputsOfASiblingMidEdit(_ edit: String) throws {
        let root = try Self.siblings()
        defer { try? FileManager.default.removeItem(at: root) }
        let before = try Self.outputs(root)
        let b = root.appendingPathComponent("B/derive.yaml")
        if edit == "emptied" {
            try Data().write(to: b)
        } else {
            try (Self.manifest() + "\noops: [x\n").write(to: b, atomically: true, encoding: .utf8)
        }
        let a = root.appendingPathComponent("A")
        for flag in ["--verify", "--verify-all"] {
            let build = try CLI.run(["build", flag], in: a)
            #expect(build.status == 1, "\(flag): \(text(build.stdout)) \(build.stderr)")
            #expect(build.stderr.contains("is an output (its build state says so) of") && build.stderr.contains("B/derive.yaml, another project whose manifest does not load"),
                    "\(flag): \(build.stderr)")
        }
        let clean = try CLI.run(["clean"], in: a)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(try Self.outputs(root) == before)

        // The lock alone says so too (B's state folder gone).
        try FileManager.default.removeItem(at: root.appendingPathComponent("B/.derive"))
        let lockOnly = try CLI.run(["build", "--verify"], in: a)
        #expect(lockOnly.status == 1 && lockOnly.stderr.contains("derive.lock records this file"), "\(lockOnly.stderr)")
        #expect(try Self.outputs(root) == before)

        // Nor `--overwrite`, while B does not load (attack 42d's N3): its files are taken at its word.
        let overwrite = try CLI.run(["build", "--overwrite"], in: a)
        #expect(overwrite.status == 1 && overwrite.stderr.contains("with or without --overwrite"), "\(overwrite.stderr)")
        #expect(try Self.outputs(root) == before)

        // B loads again: its outputs are its own, which `--overwrite` may take, as README says.
        try Self.manifest().write(to: b, atomically: true, encoding: .utf8)
        let taken = try CLI.run(["build", "--overwrite"], in: a)
        #expect(taken.status == 0, "\(taken.stderr)")
    }

    /// N3's other half: a sibling C writing into B's source folder (`out: {path: ../shared}`)
    /// with B mid-edit: B's state records those files as its sources, refused even with --overwrite.
    @Test func aSiblingMidEditKeepsItsSources() throws {
        let root = try Self.siblings()
        defer { try? FileManager.default.removeItem(at: root) }
        let shared = try Data(contentsOf: root.appendingPathComponent("shared/a1.jpg"))
        try (Self.manifest() + "\noops: [x\n").write(to: root.appendingPathComponent("B/derive.yaml"), atomically: true, encoding: .utf8)
        // A (which reads ../shared too, and loads) would refuse it on its own: only B is asked here.
        try FileManager.default.removeItem(at: root.appendingPathComponent("A"))
        let c = root.appendingPathComponent("C")
        try FileManager.default.createDirectory(at: c.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("cmyk.jpg"), to: c.appendingPathComponent("src/a1.jpg"))
        try Self.manifest().replacingOccurrences(of: "../shared", with: "src").replacingOccurrences(of: "../pub", with: "../shared")
            .replacingOccurrences(of: "out/t/", with: "out/").write(to: c.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let build = try CLI.run(["build", "--overwrite"], in: c)
        #expect(build.status == 1 && build.stderr.contains("is a source or output (its build state records this file with these bytes) of"), "\(build.stderr)")
        #expect(try Data(contentsOf: root.appendingPathComponent("shared/a1.jpg")) == shared)
    }

    /// The same edge for made folders: `site.yaml` beside declares `upl: {path: out/u}`, which
    /// derive.yaml's build made; with site.yaml emptied mid-save, derive.yaml's clean keeps out/u
    /// (its buckets are unknown), as one with a syntax error does.
    @Test func cleanKeepsAMadeFolderWhileANeighbourIsEmptiedMidSave() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a1.jpg"))
        try Self.manifest().replacingOccurrences(of: "../shared", with: "src").replacingOccurrences(of: "../pub", with: "out")
            .replacingOccurrences(of: "out/t/", with: "out/u/").write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(built.stderr)")
        try "version: 1\nbuckets:\n  upl: {path: out/u}\nderivatives: []\n".write(to: folder.appendingPathComponent("site.yaml"), atomically: true, encoding: .utf8)
        #expect(try CLI.run(["validate", "site.yaml"], in: folder).status == 0)
        try Data().write(to: folder.appendingPathComponent("site.yaml"))
        let clean = try CLI.run(["clean"], in: folder)
        #expect(clean.status == 0, "\(clean.stderr)")
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/u").path, isDirectory: &isFolder) && isFolder.boolValue)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/u/a1.jpg").path))
    }

    /// Attack 44b's F3: a neighbour in the same folder mid-edit (derive.yaml broken, site.yaml
    /// beside it rendering the same bytes to the same paths) lost its outputs to `--overwrite`.
    @Test func aNeighbourInTheSameFolderMidEditKeepsItsOutputs() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a1.jpg"))
        let own = Self.manifest().replacingOccurrences(of: "../shared", with: "src").replacingOccurrences(of: "../pub", with: "out")
        try own.write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let output = folder.appendingPathComponent("out/t/a1.jpg")
        let bytes = try Data(contentsOf: output)
        try own.write(to: folder.appendingPathComponent("site.yaml"), atomically: true, encoding: .utf8)
        try (own + "\noops: [x\n").write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let build = try CLI.run(["build", "--overwrite", "site.yaml"], in: folder)
        #expect(build.status == 1 && build.stderr.contains("whose manifest does not load"), "\(build.stderr)")
        let clean = try CLI.run(["clean", "site.yaml"], in: folder)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(try Data(contentsOf: output) == bytes)
    }

    /// Attack 44b's F1: a parent mid-edit whose state says it wrote R/out claimed the child's
    /// R/C/out files by its lock's keys alone, so the child (its own lock and state lost) could not
    /// build even with --overwrite. A lock's key is read alone only when the state cannot say.
    @Test func aBrokenParentWithItsStateClaimsNothingOfAChildByKey() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let child = root.appendingPathComponent("C")
        let own = Self.manifest().replacingOccurrences(of: "../shared", with: "src").replacingOccurrences(of: "../pub", with: "out")
        for folder in [root, child] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a1.jpg"))
            try own.write(to: folder.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        }
        #expect(try CLI.run(["build", "-q"], in: child).status == 0)
        // The parent excludes the child's folder from nothing: its rule reads only src/*.jpg.
        #expect(try CLI.run(["build", "-q"], in: root).status == 0)
        try Data().write(to: root.appendingPathComponent("derive.yaml"))
        try FileManager.default.removeItem(at: child.appendingPathComponent(".derive"))
        try FileManager.default.removeItem(at: child.appendingPathComponent("derive.lock"))
        try own.replacingOccurrences(of: "w_32", with: "w_30").write(to: child.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let build = try CLI.run(["build", "--overwrite"], in: child)
        #expect(build.status == 0, "\(build.stderr)")
    }

    /// Attack 44b's F2: a public-read-write bucket whose folder is a built project with its
    /// manifest emptied (mid-save) validated, and anyone could overwrite that project's outputs.
    @Test func aPublicBucketHoldingAnEmptiedProjectIsRefused() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let pub = root.appendingPathComponent("pub")
        try FileManager.default.createDirectory(at: pub, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: pub)
        try Data().write(to: pub.appendingPathComponent("derive.yaml"))
        try "version: 1\nbuckets:\n  upl: {path: pub, acl: public-read-write}\nderivatives: []\n".write(to: root.appendingPathComponent("site.yaml"), atomically: true, encoding: .utf8)
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(validate.status == 1 && validate.stderr.contains("holds the manifest"), "\(validate.stderr)")
    }

    /// Attack 44b's F5: a sibling mid-edit lost its index to another project's `index:` under
    /// `--overwrite` (its lock names that file with these very bytes), and that project's clean
    /// deleted it.
    @Test func aSiblingMidEditKeepsItsIndex() throws {
        let root = try Self.siblings()
        defer { try? FileManager.default.removeItem(at: root) }
        let b = root.appendingPathComponent("B/derive.yaml")
        try Self.manifest().replacingOccurrences(of: "derivatives:", with: "index: out/index.json\nderivatives:").write(to: b, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["build", "-q"], in: root.appendingPathComponent("B")).status == 0)
        let index = root.appendingPathComponent("pub/index.json")
        let bytes = try Data(contentsOf: index)
        try (Self.manifest() + "\noops: [x\n").write(to: b, atomically: true, encoding: .utf8)
        let a = root.appendingPathComponent("A")
        try Self.manifest().replacingOccurrences(of: "derivatives:", with: "index: out/index.json\nderivatives:")
            .replacingOccurrences(of: "out/t/", with: "out/a/").write(to: a.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let build = try CLI.run(["build", "--overwrite"], in: a)
        #expect(build.status == 1 && build.stderr.contains("is the index (its lock"), "\(build.stderr)")
        _ = try CLI.run(["clean"], in: a)
        #expect(try Data(contentsOf: index) == bytes)
    }
}
