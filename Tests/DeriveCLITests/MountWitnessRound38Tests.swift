import Foundation
import Testing
import TestSupport

/// A leftover of atk37b (its finding 7, fixed in the plan): while a mount point hides old
/// outputs, the no-op witness was never saved (it held only symbolic links), so every run made a
/// full plan. The witness keeps the mount point with its mount's identity, as it keeps links:
/// its answer names the outputs kept behind it in the full plan's words, and the mount going
/// away makes the next run plan (and delete Derive's files there).
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct MountWitnessRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    static let commands = [["plan"], ["plan", "--detailed-exitcode"], ["check"], ["build"]]

    /// Runs, in one mount namespace with `copy` bind-mounted at out/t, two settling builds, then
    /// each command on the witness's path and, with the witness removed, on the full path. Each
    /// answer goes to `runs/<fast|full>-<n>.{out,err,rc}`; `runs/witness` says whether one was saved.
    func runMounted(_ project: Project, copy: URL) throws -> CLI.Result {
        var script = """
            set -u
            mount --bind "$1" out/t || exit 99
            derive="$2"; mkdir -p runs
            "$derive" build >/dev/null 2>&1; sleep 1.2
            "$derive" build >/dev/null 2>&1; sleep 1.2
            if [ -f .derive/derive/noop-witness ]; then echo yes > runs/witness; else echo no > runs/witness; fi

            """
        for (index, command) in Self.commands.enumerated() {
            let words = command.joined(separator: " ")
            script += """
                "$derive" \(words) > runs/fast-\(index).out 2> runs/fast-\(index).err; echo $? > runs/fast-\(index).rc
                rm -f .derive/derive/noop-witness*
                "$derive" \(words) > runs/full-\(index).out 2> runs/full-\(index).err; echo $? > runs/full-\(index).rc
                "$derive" build >/dev/null 2>&1; sleep 1.2; "$derive" build >/dev/null 2>&1; sleep 1.2

                """
        }
        return try CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", copy.path, CLI.executable.path],
                           in: project.root, executable: BindMounts.unshare)
    }

    @Test func theWitnessVouchesForOutputsKeptBehindAMountPointAsTheFullPlanNamesThem() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "to: out/{name}", with: "to: out/t/{name}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let copy = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: copy) }
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("out/t/\(name)"), to: copy.appendingPathComponent(name)) }
        let mine = try Data(contentsOf: copy.appendingPathComponent("cmyk.jpg"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "to: out/{name}", with: "to: out/u/{name}"))

        let run = try runMounted(project, copy: copy)
        #expect(run.status == 0, "\(text(run.stdout)) \(run.stderr)")
        func read(_ name: String) -> String { (try? String(contentsOf: project.url("runs/" + name), encoding: .utf8)) ?? "(none)" }
        #expect(read("witness") == "yes\n", "no witness was saved while the mount point hides old outputs")
        for (index, command) in Self.commands.enumerated() {
            let fast = read("fast-\(index).out"), full = read("full-\(index).out")
            #expect(fast.contains("out/t/cmyk.jpg  kept: out/t/cmyk.jpg is behind a mount point"), "\(command): \(fast)")
            #expect(fast == full, "\(command): the witness's answer differs from the full plan's:\n\(fast)\n---\n\(full)")
            #expect(read("fast-\(index).err") == read("full-\(index).err") && read("fast-\(index).rc") == read("full-\(index).rc"),
                    "\(command): \(read("fast-\(index).err")) / \(read("full-\(index).err"))")
        }
        #expect(try Data(contentsOf: copy.appendingPathComponent("cmyk.jpg")) == mine, "a file behind the mount point changed")

        // The namespace (and its mount) is gone: the witness no longer holds, the run plans and
        // names Derive's old files for deletion.
        let plan = try project.run(["plan"])
        #expect(text(plan.stdout).contains("- out/t/cmyk.jpg  delete"), "\(text(plan.stdout)) \(plan.stderr)")
    }
}
