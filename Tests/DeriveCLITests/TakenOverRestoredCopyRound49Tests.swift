import Foundation
import Imaging
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 48c's F1: the site once recorded `pub/n/a.jpg`; a neighbour manifest (beside
/// it or in a subfolder, still there or removed since) took the file over with `build --overwrite`,
/// rendering identical bytes. The site's plan then called it a "restored copy" of its own (exit 0),
/// its build adopted it and its clean deleted it (and the folder), while the neighbour's state and
/// lock still recorded it. The README: the original then names each such file as an output of the
/// manifest that took it, exit 1, and its clean leaves it.
@Suite(.ownThreads) struct TakenOverRestoredCopyRound49Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    static let site = "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n"

    /// A project with the site's manifest (`site.yaml`) and one source, `src/a.jpg`.
    func project() throws -> URL {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data(Self.site.utf8).write(to: root.appendingPathComponent("site.yaml"))
        return root
    }

    /// The neighbour writing the site's `pub/n` as its bucket `out`: `n.yaml` beside the site or `sub/n.yaml`.
    func writeNeighbour(_ root: URL, beside: Bool) throws -> URL {
        let up = beside ? "" : "../"
        let manifest = root.appendingPathComponent(beside ? "n.yaml" : "sub/n.yaml")
        try FileManager.default.createDirectory(at: manifest.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: \(up)src}\n  out: {path: \(up)pub/n}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: manifest)
        return manifest
    }

    /// `neighbour`: `live`, `removed` (its manifest, its lock and state left), or `lock-only`
    /// (live, its state folder deleted: only its lock line, which ties with the site's own).
    @Test(arguments: ["beside", "subfolder"], ["live", "removed", "lock-only"])
    func aFileANeighbourTookOverIsNeverTheSitesRestoredCopy(layout: String, neighbour: String) throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let built = try CLI.run(["build", "-q", "site.yaml"], in: root)
        #expect(built.status == 0, "\(said(built))")
        let manifest = try writeNeighbour(root, beside: layout == "beside")
        let taken = try CLI.run(["build", "-q", "--overwrite", manifest.lastPathComponent], in: manifest.deletingLastPathComponent())
        #expect(taken.status == 0, "\(said(taken))")
        if neighbour == "removed" { try FileManager.default.removeItem(at: manifest) }
        if neighbour == "lock-only" { try FileManager.default.removeItem(at: manifest.deletingLastPathComponent().appendingPathComponent(".derive/n")) }
        let file = root.appendingPathComponent("pub/n/a.jpg")
        let bytes = try Data(contentsOf: file)
        let inode = try FileManager.default.attributesOfItem(atPath: file.path)[.systemFileNumber] as? UInt64

        func refused(_ arguments: [String]) throws {
            let result = try CLI.run(arguments, in: root)
            let text = said(result)
            #expect(result.status == 1, "\(arguments): \(text)")
            #expect(text.contains("pub/n/a.jpg is an output of ") && text.contains(manifest.path.replacingOccurrences(of: root.path, with: "")), "\(arguments): \(text)")
            #expect(!text.contains("restored copy"), "\(arguments): \(text)")
        }
        try refused(["plan", "site.yaml"])
        try refused(["check", "site.yaml"])
        try refused(["build", "site.yaml"])
        try refused(["build", "--verify", "site.yaml"])
        let clean = try CLI.run(["clean", "site.yaml"], in: root)
        #expect(try Data(contentsOf: file) == bytes, "clean took the neighbour's file: \(said(clean))")
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.systemFileNumber] as? UInt64 == inode, "the file was replaced")

        // `--overwrite` still takes it: the site's own output from then on.
        let overwrite = try CLI.run(["build", "--overwrite", "site.yaml"], in: root)
        #expect(overwrite.status == 0, "\(said(overwrite))")
        let plan = try CLI.run(["plan", "--detailed-exitcode", "site.yaml"], in: root)
        #expect(plan.status == 0, "\(said(plan))")
    }

    /// The site's own output, restored (`cp`: the recorded bytes in another file) with a neighbour
    /// in a subfolder that records other files: still adopted as the site's, as before.
    @Test func theSitesOwnRestoredCopyIsStillAdopted() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        // The neighbour writes its own folder (`pub/m`), not the site's file.
        let manifest = root.appendingPathComponent("sub/n.yaml")
        try FileManager.default.createDirectory(at: manifest.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: ../pub/m}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: manifest)
        #expect(try CLI.run(["build", "-q", "n.yaml"], in: manifest.deletingLastPathComponent()).status == 0)
        #expect(try CLI.run(["build", "-q", "site.yaml"], in: root).status == 0)
        let file = root.appendingPathComponent("pub/n/a.jpg")
        let copy = root.appendingPathComponent("a.copy")
        try FileManager.default.copyItem(at: file, to: copy)
        try FileManager.default.removeItem(at: file)
        try FileManager.default.moveItem(at: copy, to: file)

        let plan = try CLI.run(["plan", "site.yaml"], in: root)
        #expect(plan.status == 0 && said(plan).contains("restored copy"), "\(said(plan))")
        let build = try CLI.run(["build", "site.yaml"], in: root)
        #expect(build.status == 0 && said(build).contains("adopted 1 restored copy"), "\(said(build))")
        let check = try CLI.run(["check", "site.yaml"], in: root)
        #expect(check.status == 0, "\(said(check))")

        // A fresh clone (no state): the site's lock adopts its file.
        try FileManager.default.removeItem(at: root.appendingPathComponent(".derive"))
        let clone = try CLI.run(["build", "site.yaml"], in: root)
        #expect(clone.status == 0 && !said(clone).contains("is an output of"), "\(said(clone))")
        #expect(try CLI.run(["check", "site.yaml"], in: root).status == 0)
    }

    /// The tie's other side: the site took the file back with `--overwrite` (its state records
    /// the very file there now), while the neighbour beside it still records its older copy.
    /// The installer's record wins: the site restyles and cleans its own file, and the
    /// neighbour's plan names it as the site's. It was refused as the neighbour's on every
    /// build after, and clean left it, although the neighbour's record was the stale one.
    @Test func theManifestThatInstalledTheFileWinsTheTie() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try writeNeighbour(root, beside: true)
        #expect(try CLI.run(["build", "-q", "site.yaml"], in: root).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite", "n.yaml"], in: root).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite", "site.yaml"], in: root).status == 0)
        let neighbourPlan = try CLI.run(["plan", "n.yaml"], in: root)
        #expect(neighbourPlan.status == 1 && said(neighbourPlan).contains("pub/n/a.jpg is an output of \(root.path)/site.yaml"), "\(said(neighbourPlan))")

        try Data(Self.site.replacingOccurrences(of: "w_8", with: "w_9").utf8).write(to: root.appendingPathComponent("site.yaml"))
        let restyled = try CLI.run(["build", "site.yaml"], in: root)
        #expect(restyled.status == 0, "\(said(restyled))")
        let file = root.appendingPathComponent("pub/n/a.jpg")
        #expect(try Raster.decode(try Data(contentsOf: file)).width == 9)
        let clean = try CLI.run(["clean", "site.yaml"], in: root)
        #expect(clean.status == 0 && !FileManager.default.fileExists(atPath: file.path), "\(said(clean))")
    }
}
