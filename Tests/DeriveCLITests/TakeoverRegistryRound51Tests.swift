import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #9, attack 50a's F1 and F4: takeovers between projects.
/// F1: `sub/n.yaml` took the site's `pub/n/a.jpg` over with `--overwrite` (identical bytes, a new
/// file), its `lock:` and `state:` behind a symlinked folder or at absolute paths outside the
/// bounded search; then it was removed. The site called its file a "restored copy", adopted it,
/// and `clean` deleted it. The registry of built projects (in the state home) names it.
/// F4: an unrelated copy beside the site, its manifest renamed (so it does not load), claimed the
/// site's file by its bytes alone and blocked the taker's `--overwrite`, naming itself as owner.
@Suite(.ownThreads) struct TakeoverRegistryRound51Tests {
    static let site = "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n"
    static func taker(controls: String) -> String {
        "version: 1\n\(controls)buckets:\n  src: {path: ../src}\n  out: {path: ../pub/n}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"
    }

    /// `root/p` with the site `derive.yaml` and `sub/n.yaml` (`controls` its lock/state lines),
    /// and a state home of its own in `root/home`.
    func project(_ root: URL, controls: String) throws -> (p: URL, environment: [String: String]) {
        let p = root.appendingPathComponent("p")
        for folder in ["p/src", "p/sub", "home"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: p.appendingPathComponent("src/a.jpg"))
        try Data(Self.site.utf8).write(to: p.appendingPathComponent("derive.yaml"))
        try Data(Self.taker(controls: controls).utf8).write(to: p.appendingPathComponent("sub/n.yaml"))
        return (p, ["XDG_STATE_HOME": root.appendingPathComponent("home").path])
    }

    func inode(_ file: URL) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: file.path))?[.systemFileNumber] as? UInt64
    }

    /// F1: after the taker is removed, plan, check and build name the file as its output and exit
    /// 1, nothing is adopted, and clean leaves the very file. Following the advice (move its lock
    /// and state away), the state home's takeover note still makes it doubt, and `--overwrite`
    /// makes the file the site's again.
    @Test(arguments: ["link", "absolute"])
    func aRemovedTakersFileIsNeverARestoredCopyWhereverItsLockAndStateLie(variant: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let far = root.appendingPathComponent("far")
        try FileManager.default.createDirectory(at: far, withIntermediateDirectories: true)
        let controls = variant == "link" ? "lock: lnk/n.lock\nstate: lnk/st\n" : "lock: \(far.path)/n.lock\nstate: \(far.path)/st\n"
        let (p, environment) = try project(root, controls: controls)
        if variant == "link" {
            try FileManager.default.createSymbolicLink(atPath: p.appendingPathComponent("sub/lnk").path, withDestinationPath: far.path)
        }
        let built = try CLI.run(["build", "-q"], in: p, environment: environment)
        #expect(built.status == 0, "\(said(built))")
        let taken = try CLI.run(["build", "-q", "--overwrite", "sub/n.yaml"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        try FileManager.default.removeItem(at: p.appendingPathComponent("sub/n.yaml"))

        let file = p.appendingPathComponent("pub/n/a.jpg")
        let before = inode(file)
        for arguments in [["plan"], ["check"], ["build"]] {
            let run = try CLI.run(arguments, in: p, environment: environment)
            let text = said(run)
            #expect(run.status == 1, "\(arguments): \(text)")
            #expect(text.contains("pub/n/a.jpg is an output of ") && text.contains("/p/sub/n.yaml, which is no longer there"), "\(arguments): \(text)")
            #expect(!text.contains("restored copy") && !text.contains("adopted"), "\(arguments): \(text)")
        }
        let clean = try CLI.run(["clean"], in: p, environment: environment)
        #expect(FileManager.default.fileExists(atPath: file.path) && inode(file) == before, "clean removed the taker's file: \(said(clean))")

        // The advice: that project gone for good, its lock and state moved away. (clean removed
        // the site's records: the file is then proven by rendering it again, as plan advises.)
        // Away from any folder the site looks in (`root/away` would still be a folder beside it).
        let away = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: away) }
        try FileManager.default.moveItem(at: far, to: away.appendingPathComponent("far"))
        // The state home still notes that the taker's build installed that very file
        // (`TakeoverNotes`: moved away is no different from moved out of reach), so `--verify`
        // does not take it; `--overwrite`, the advice then, takes it back anew.
        let verified = try CLI.run(["build", "--verify"], in: p, environment: environment)
        #expect(verified.status == 1 && said(verified).contains("as this user's state home notes") && inode(file) == before, "\(said(verified))")
        let rebuilt = try CLI.run(["build", "--overwrite"], in: p, environment: environment)
        #expect(rebuilt.status == 0, "\(said(rebuilt))")
        #expect(try CLI.run(["check"], in: p, environment: environment).status == 0)
    }

    /// The site built and registered, then its output made a restored copy (the same bytes in a
    /// new file): the registry's path, the project and its environment.
    func builtWithARestoredCopy(_ root: URL) throws -> (registry: URL, p: URL, environment: [String: String]) {
        let (p, environment) = try project(root, controls: "")
        // No taker here: a live manifest whose rule writes the copy's name makes it doubt by
        // itself (attack 51a's 5, RuleDoubtTakeoverRound52Tests), not the registry.
        try FileManager.default.removeItem(at: p.appendingPathComponent("sub/n.yaml"))
        let built = try CLI.run(["build", "-q"], in: p, environment: environment)
        #expect(built.status == 0, "\(said(built))")
        let registry = root.appendingPathComponent("home/derive/states/projects")
        #expect(FileManager.default.fileExists(atPath: registry.path), "the build registered nothing")
        let file = p.appendingPathComponent("pub/n/a.jpg")
        let bytes = try Data(contentsOf: file)
        try FileManager.default.removeItem(at: file)
        try bytes.write(to: file)
        return (registry, p, environment)
    }

    /// A registry that cannot be read is doubt: a restored copy is not adopted on a guess; once it
    /// is moved away (the advice), the copy is adopted as before.
    @Test func anUnreadableRegistryAdoptsNothing() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (registry, p, environment) = try builtWithARestoredCopy(root)
        try Data("not a registry\n".utf8).write(to: registry)
        for arguments in [["plan"], ["build"]] {
            let run = try CLI.run(arguments, in: p, environment: environment)
            let text = said(run)
            #expect(run.status == 1 && text.contains("pub/n/a.jpg may be another project's output") && text.contains(registry.path), "\(arguments): \(text)")
            #expect(!text.contains("adopted"), "\(arguments): \(text)")
        }
        try FileManager.default.removeItem(at: registry)
        let adopted = try CLI.run(["build"], in: p, environment: environment)
        #expect(adopted.status == 0 && said(adopted).contains("adopted 1 restored copy"), "\(said(adopted))")
    }

    /// Attack 51a's 4: a FIFO planted at the registry's name hung every command that asked it
    /// (opened without O_NONBLOCK): it is doubt, as any registry that is not a regular file.
    @Test func aFifoAtTheRegistryNeverHangs() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (registry, p, environment) = try builtWithARestoredCopy(root)
        try FileManager.default.removeItem(at: registry)
        #expect(mkfifo(registry.path, 0o600) == 0)
        for arguments in [["plan"], ["build"]] {
            let run = try CLI.run(["60", CLI.executable.path] + arguments, in: p, environment: environment, executable: "/usr/bin/timeout")
            let text = said(run)
            #expect(run.status == 1 && text.contains("pub/n/a.jpg may be another project's output"), "\(arguments) (124: hung): \(run.status) \(text)")
        }
    }

    /// The registry is never written inside a bucket of the building manifest: such a manifest
    /// is refused before any build (attack 51a's 3, b52: the folder of secrets and the registry
    /// in a bucket), saying where the folder is and how to move it.
    @Test func theRegistryIsNeverWrittenInABucket() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, _) = try project(root, controls: "")
        let home = p.appendingPathComponent("pub/home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let built = try CLI.run(["build", "-q"], in: p, environment: ["XDG_STATE_HOME": home.path])
        #expect(built.status != 0, "\(said(built))")
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent("derive/states/projects").path))
        // Said, not skipped in silence (attack 51a's 1): the old binary wrote no registry at all,
        // so the file's absence alone could not fail.
        #expect(built.stderr.contains("holds Derive's folder of per-user secrets and the registry of built projects") && built.stderr.contains("point XDG_STATE_HOME to a folder outside every bucket"), "\(built.stderr)")
    }

    /// F4: `q`, a copy of the site beside it whose manifest was renamed (`derive.yml`, which does
    /// not load: its lock names `derive.yaml`) and whose state was removed, holds a lock line with
    /// the same bytes under the same key. It blocked `sub/n.yaml`'s `--overwrite` "with or without
    /// --overwrite", naming itself. The site's state records the very file: the site is its
    /// owner, named without `--overwrite`, and `--overwrite` takes it.
    @Test func anUnrelatedUnloadedCopyNeverOutranksTheTakeoverOfTheFilesInstaller() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try project(root, controls: "")
        let q = root.appendingPathComponent("q")
        try FileManager.default.createDirectory(at: q, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: p.appendingPathComponent("src"), to: q.appendingPathComponent("src"))
        try FileManager.default.copyItem(at: p.appendingPathComponent("derive.yaml"), to: q.appendingPathComponent("derive.yaml"))
        let copy = try CLI.run(["build", "-q"], in: q, environment: environment)
        #expect(copy.status == 0, "\(said(copy))")
        try FileManager.default.removeItem(at: q.appendingPathComponent(".derive"))
        try FileManager.default.moveItem(at: q.appendingPathComponent("derive.yaml"), to: q.appendingPathComponent("derive.yml"))

        let built = try CLI.run(["build", "-q"], in: p, environment: environment)
        #expect(built.status == 0, "\(said(built))")
        let refused = try CLI.run(["build", "sub/n.yaml"], in: p, environment: environment)
        let text = said(refused)
        #expect(refused.status == 1 && text.contains("pub/n/a.jpg is an output of ") && text.contains("/p/derive.yaml"), "\(text)")
        #expect(!text.contains("derive.yml"), "\(text)")
        let taken = try CLI.run(["build", "--overwrite", "sub/n.yaml"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        let check = try CLI.run(["check", "sub/n.yaml"], in: p, environment: environment)
        #expect(check.status == 0, "\(said(check))")
    }

    /// F2: `n.yaml` beside the site took `pub/a.jpg` over with other bytes. The site said "was
    /// changed since Derive wrote it; move it" (moving n.yaml's output) and, its state gone,
    /// advised `derive build --verify`, which then refused. Now each names n.yaml.
    @Test func aLiveTakerWithOtherBytesBesideTheSiteIsNamed() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try project(root, controls: "")
        let site = Self.site.replacingOccurrences(of: "pub/n/{name}", with: "pub/{name}")
        try Data(site.utf8).write(to: p.appendingPathComponent("derive.yaml"))
        try Data(site.replacingOccurrences(of: "w_8", with: "w_9").utf8).write(to: p.appendingPathComponent("n.yaml"))
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        let taken = try CLI.run(["build", "-q", "--overwrite", "n.yaml"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        for stateGone in [false, true] {
            if stateGone { try FileManager.default.removeItem(at: p.appendingPathComponent(".derive/derive")) }
            for arguments in [["plan"], ["check"]] {
                let run = try CLI.run(arguments, in: p, environment: environment)
                let text = said(run)
                #expect(run.status == 1 && text.contains("pub/a.jpg is an output of ") && text.contains("/p/n.yaml"), "\(stateGone) \(arguments): \(text)")
                #expect(!text.contains("changed since Derive wrote it") && !text.contains("--verify"), "\(stateGone) \(arguments): \(text)")
            }
        }
    }

    /// F3: the taker re-pointed its bucket and has not rebuilt (plan said "changed since Derive
    /// wrote it"), then is mid-edit (clean said "a copy, or a file put there since").
    @Test func aRepointedOrMidEditTakerWithOtherBytesIsNamedByEveryCommand() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try project(root, controls: "")
        let taker = p.appendingPathComponent("sub/n.yaml")
        try Data(Self.taker(controls: "").replacingOccurrences(of: "w_8", with: "w_9").utf8).write(to: taker)
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        let taken = try CLI.run(["build", "-q", "--overwrite", "sub/n.yaml"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        try Data(Self.taker(controls: "").replacingOccurrences(of: "w_8", with: "w_9").replacingOccurrences(of: "../pub/n", with: "../elsewhere").utf8).write(to: taker)
        let plan = try CLI.run(["plan"], in: p, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("pub/n/a.jpg is an output of ") && said(plan).contains("/p/sub/n.yaml"), "\(said(plan))")
        #expect(!said(plan).contains("changed since Derive wrote it"), "\(said(plan))")
        try Data("buckets: {{\n".utf8).write(to: taker)
        let file = p.appendingPathComponent("pub/n/a.jpg")
        let clean = try CLI.run(["clean"], in: p, environment: environment)
        #expect(said(clean).contains("pub/n/a.jpg is an output of ") && said(clean).contains("/p/sub/n.yaml"), "\(said(clean))")
        #expect(!said(clean).contains("a copy, or a file put there since") && FileManager.default.fileExists(atPath: file.path), "\(said(clean))")
    }

    /// F6: `explain` of an output another manifest took over said "not an output of derive.yaml".
    @Test func explainNamesTheTakerOfAnOutput() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (p, environment) = try project(root, controls: "")
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite", "sub/n.yaml"], in: p, environment: environment).status == 0)
        let explain = try CLI.run(["explain", "pub/n/a.jpg"], in: p, environment: environment)
        let text = said(explain)
        #expect(explain.status == 1 && text.contains("pub/n/a.jpg is an output of ") && text.contains("/p/sub/n.yaml"), "\(text)")
        #expect(!text.contains("is not an output of"), "\(text)")
    }
}
