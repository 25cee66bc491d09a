import Foundation
import Testing
import TestSupport

/// Issue #9, attack 53a's F1, F2, F3: a taker that lost its build state keeps its file only
/// through its lock. The site `proj/derive.yaml` writes `pub/n/a.jpg`; the taker `proj/sub/n.yaml`
/// (bucket `../pub/n`) took it over with `--overwrite`, then lost `sub/.derive`. Its lock was read
/// only through the bucket folder its manifest names now, so the site adopted the file as a
/// "restored copy" and `clean` deleted it when the taker's manifest did not parse (F1), when the
/// site renamed its bucket folder (F2: `mv pub pub2`), and
/// when the taker followed the advice to build with `--overwrite` after narrowing its rule, which
/// kept the file as a `left` line (F3).
@Suite(.ownThreads) struct TakerLockByPlaceRound54Tests {
    static let site = "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n"
    static func taker(bucket: String = "../pub/n", to: String = "out/{name}.jpg") -> String {
        "version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: \(bucket)}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"\(to)\"}\n"
    }

    func inode(_ file: URL) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: file.path))?[.systemFileNumber] as? UInt64
    }

    func write(_ text: String, _ file: URL) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    /// `root/proj` (the site) and its taker `proj/sub/n.yaml` (`taker`: its manifest), both built,
    /// the taker with `--overwrite`, then the taker's build state removed; the state home `root/xdg`.
    func takeover(_ root: URL, taker: String = Self.taker(), before: (URL) throws -> Void = { _ in }) throws -> (proj: URL, environment: [String: String]) {
        let proj = root.appendingPathComponent("proj")
        try FileManager.default.createDirectory(at: proj.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: proj.appendingPathComponent("src/a.jpg"))
        try write(Self.site, proj.appendingPathComponent("derive.yaml"))
        try write(taker, proj.appendingPathComponent("sub/n.yaml"))
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let built = try CLI.run(["build", "-q"], in: proj, environment: environment)
        #expect(built.status == 0, "\(said(built))")
        try before(proj)
        let taken = try CLI.run(["build", "-q", "--overwrite", "sub/n.yaml"], in: proj, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        try FileManager.default.removeItem(at: proj.appendingPathComponent("sub/.derive"))
        return (proj, environment)
    }

    /// Plan refuses the taker's file naming `sub/n.yaml`, build adopts and replaces nothing, clean
    /// leaves the very file (`file`: where it lies now). Returns what plan said.
    @discardableResult
    func expectKept(_ proj: URL, _ file: URL, _ environment: [String: String], _ context: String) throws -> String {
        let before = inode(file)
        #expect(before != nil, "\(context): the taker's file is not there")
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("sub/n.yaml") && !said(plan).contains("restored copy"), "\(context) plan: \(said(plan))")
        let build = try CLI.run(["build"], in: proj, environment: environment)
        #expect(!said(build).contains("adopted 1") && inode(file) == before, "\(context) build: \(said(build))")
        let clean = try CLI.run(["clean"], in: proj, environment: environment)
        #expect(inode(file) == before, "\(context): clean removed the taker's file: \(said(clean))")
        return said(plan)
    }

    /// F1: the taker's manifest does not parse (mid-edit, or emptied): taken at its word through
    /// its lock, never adopted; a rule change of the site does not overwrite it either.
    @Test(arguments: ["mid-edit", "emptied"])
    func aTakerWhoseManifestDoesNotLoadKeepsItsFile(breakage: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, environment) = try takeover(root)
        let manifest = proj.appendingPathComponent("sub/n.yaml")
        try write(breakage == "emptied" ? "" : Self.taker() + "buckets: {{\n", manifest)
        let file = proj.appendingPathComponent("pub/n/a.jpg")
        let before = inode(file)
        try write(Self.site.replacingOccurrences(of: "w_8", with: "w_9"), proj.appendingPathComponent("derive.yaml"))
        let rebuilt = try CLI.run(["build"], in: proj, environment: environment)
        #expect(inode(file) == before, "\(breakage): the site's rebuild replaced the taker's file: \(said(rebuilt))")
        try write(Self.site, proj.appendingPathComponent("derive.yaml"))
        try expectKept(proj, file, environment, breakage)
    }

    /// F2: the site renamed its bucket folder (`mv pub pub2`, `path: pub2`): the taker's lock line
    /// still records the file, where the rename put it.
    @Test func aRenamedBucketFolderKeepsTheTakersLockClaim() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, environment) = try takeover(root)
        try FileManager.default.moveItem(at: proj.appendingPathComponent("pub"), to: proj.appendingPathComponent("pub2"))
        try write(Self.site.replacingOccurrences(of: "{path: pub}", with: "{path: pub2}"), proj.appendingPathComponent("derive.yaml"))
        try expectKept(proj, proj.appendingPathComponent("pub2/n/a.jpg"), environment, "mv pub pub2")
    }

    /// F3: the taker narrowed its rule and followed the advice (`build --overwrite`): its lock keeps
    /// the file as a `left` line with these bytes, which counts as its output for the site.
    @Test func aLeftLineOfTheTakersLockCountsAsItsOutput() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, environment) = try takeover(root)
        try write(Self.taker(to: "out/q/{name}.jpg"), proj.appendingPathComponent("sub/n.yaml"))
        let advised = try CLI.run(["build", "-q", "--overwrite", "sub/n.yaml"], in: proj, environment: environment)
        #expect(advised.status == 0, "\(said(advised))")
        let lock = try String(contentsOf: proj.appendingPathComponent("sub/n.lock"), encoding: .utf8)
        #expect(lock.contains("{\"left\":\"out/a.jpg\""), "\(lock)")
        let plan = try expectKept(proj, proj.appendingPathComponent("pub/n/a.jpg"), environment, "left line")
        // The advice is one that settles it: a build of the taker would keep it as a left line again.
        #expect(!plan.contains("n.yaml built it, run derive build"), "\(plan)")
    }

    /// F4: both lost their build states: each lock vouches for the same bytes. With the state
    /// home's takeover notes moved away nothing says who installed the file: doubt from both
    /// sides, never two "Up to date"; building the one that installed it with `--overwrite` (the
    /// advice) settles it, and the site names it. With the notes there, the taker's note of this
    /// very file says it installed it (56b's M3): the site names the taker, the taker adopts it.
    @Test(arguments: [true, false])
    func bothStatesLostIsDoubtFromBothSides(notesKept: Bool) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, environment) = try takeover(root)
        try FileManager.default.removeItem(at: proj.appendingPathComponent(".derive"))
        if !notesKept { try FileManager.default.removeItem(at: root.appendingPathComponent("xdg/derive/states/takeovers")) }
        for manifest in ["derive.yaml", "sub/n.yaml"] {
            let plan = try CLI.run(["plan", manifest], in: proj, environment: environment)
            if notesKept, manifest == "sub/n.yaml" {
                #expect(plan.status == 0 && said(plan).contains("adopted from"), "\(manifest): \(said(plan))")
                continue
            }
            let other = manifest == "derive.yaml" ? "sub/n.yaml" : "/proj/derive.yaml"
            #expect(plan.status == 1 && said(plan).contains(" may be an output of ") && said(plan).contains(other) && !said(plan).contains("No changes"),
                    "\(manifest): \(said(plan))")
        }
        let settled = try CLI.run(["build", "-q", "--overwrite", "sub/n.yaml"], in: proj, environment: environment)
        #expect(settled.status == 0, "\(said(settled))")
        let plan = try CLI.run(["plan"], in: proj, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("pub/n/a.jpg is an output of ") && said(plan).contains("its build state says so"), "\(said(plan))")
    }
}
