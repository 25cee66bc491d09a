import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack round 29's finding 9: `plan` and `check` run while a build held the state's lock called
/// the files it had just put in place (not recorded until it commits) "not written by Derive;
/// move it or pass --overwrite", and `plan --json` exited 1. While a live process holds the lock
/// they give no answer: they name the holder and exit 75, as a second build does; once it is
/// released they answer as before.
@Suite(.ownThreads, .serialized) struct PlanDuringBuildRound29Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func planAndCheckGiveNoAnswerWhileABuildHoldsTheLock() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateRound28Tests.manifest(state: nil))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        // A build in the middle of its work: a new source's output renamed into place, not yet
        // recorded, and the lock held (flock, as BuildLock holds it) by a live process.
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("src/b.jpg"))
        try FileManager.default.copyItem(at: site.url("out/t/a.jpg"), to: site.url("out/t/b.jpg"))
        let lockPath = site.url(".derive/derive/build.lock").path
        let fd = open(lockPath, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        try #require(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let line = "pid \(getpid()) on testhost, since 2026-12-04T00:00:00Z\n"
        _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
        _ = ftruncate(fd, off_t(line.utf8.count))
        for arguments in [["plan"], ["plan", "--json"], ["check"]] {
            let result = try site.run(arguments)
            #expect(result.status == 75, "\(arguments): \(said(result))")
            #expect(!said(result).contains("not written by Derive"), "\(arguments): \(said(result))")
            #expect(result.stderr.contains("is running on this state (pid \(getpid()) on testhost") && result.stderr.contains("build.lock")
                    && result.stderr.contains("run derive \(arguments[0]) again when it has ended"), "\(arguments): \(result.stderr)")
            if arguments.contains("--json") {
                let answer = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
                #expect(answer?["exitCode"] as? Int == 75, "\(said(result))")
            }
        }
        // The build ended (its lock released) having recorded the file: plan and check answer.
        close(fd)
        try FileManager.default.removeItem(at: site.url("out/t/b.jpg"))
        #expect(try site.run(["build", "-q"]).status == 0)
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
        let plan = try site.run(["plan", "--json"])
        #expect(plan.status == 0, "\(said(plan))")
    }

    /// A lock file left by an ended build (no one holds it) stops nothing.
    @Test func aReleasedLockStopsNothing() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateRound28Tests.manifest(state: nil))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        #expect(site.exists(".derive/derive/build.lock"))
        try site.write(StateRound28Tests.manifest(state: nil).replacingOccurrences(of: "w_40", with: "w_41"))
        let plan = try site.run(["plan"])
        #expect(plan.status == 0 && said(plan).contains("1 to rebuild"), "\(said(plan))")
        let check = try site.run(["check"])
        #expect(check.status == 1 && said(check).contains("rebuild"), "\(said(check))")
    }
}
