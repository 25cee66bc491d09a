import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack round 31 on `plan` and `check` while a build runs (issue 9; round 29's finding 9 made
/// them give no answer, exit 75, while a live process holds `build.lock`):
/// - F4: they answered when, mid-build, `build.lock` was deleted (the build still holds its flock
///   on the unlinked file) or the state folder was moved away, and when the state folder was
///   moved or replaced while they ran.
/// - F10: `check --verify` / `--verify-all` (and `plan`) answered from the state as it was before
///   a whole build ran during them.
/// - F11: a lock on `build.lock` held by another program was named as a derive build, by the
///   line the last build left in the file.
@Suite(.ownThreads, .serialized) struct PlanDuringBuildRound31Tests {
    typealias Site = HashedBuildRound20Tests.Site

    static let questions = [["plan"], ["plan", "--json"], ["check"], ["check", "--verify"], ["check", "--verify-all"]]

    /// `derive build --jobs 1` stopped by the hook (for 60 s) after its first render: it holds
    /// its locks and has recorded nothing yet.
    final class PausedBuild {
        let process = Process()
        init(_ site: Site) throws {
            let marker = site.url("rendered.marker")
            process.executableURL = CLI.executable
            process.arguments = ["build", "--jobs", "1", "--quiet"]
            process.currentDirectoryURL = site.root
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["XDG_STATE_HOME": CLI.userStateHome.path, "DERIVE_TEST_AFTER_RENDERS": "1=\(marker.path)"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(120)
            while !FileManager.default.fileExists(atPath: marker.path), process.isRunning, Date() < deadline { usleep(20_000) }
            try #require(FileManager.default.fileExists(atPath: marker.path), "the build did not reach its first render")
        }
        var pid: Int32 { process.processIdentifier }
        func stop() {
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// Runs `arguments` with the hook that stops plan/check once its answer is made, does
    /// `meanwhile` then, and lets it finish.
    static func run(_ arguments: [String], in site: Site, meanwhile: () throws -> Void) throws -> CLI.Result {
        let marker = site.url("answer.marker")
        let (paused, result) = try CLI.runPaused(arguments, in: site.root, environment: [
            "XDG_STATE_HOME": CLI.userStateHome.path, "DERIVE_TEST_BEFORE_ANSWER": marker.path,
        ], marker: marker) { paused in
            if paused { try meanwhile() }
        }
        try #require(paused, "\(arguments) did not stop before answering: \(result.stderr)")
        return result
    }

    static func said(_ result: CLI.Result) -> String { result.stderr + String(decoding: result.stdout, as: UTF8.self) }

    static func expectNoAnswer(_ result: CLI.Result, _ arguments: [String], saying words: String) {
        #expect(result.status == 75, "\(arguments): \(said(result))")
        #expect(result.stderr.contains(words) && result.stderr.contains("run derive \(arguments[0]) again"), "\(arguments): \(result.stderr)")
        if arguments.contains("--json") {
            let answer = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
            #expect(answer?["exitCode"] as? Int == 75, "\(said(result))")
        }
    }

    // MARK: F4: the build's lock file deleted, its state folder moved away

    /// The build holds its state folder (and its manifest) locked too: deleting `build.lock`
    /// under it leaves those, and plan/check find it by them.
    @Test func aBuildWhoseLockFileWasDeletedStillStopsPlanAndCheck() throws {
        let site = try Site()
        let build = try PausedBuild(site)
        defer { build.stop() }
        try FileManager.default.removeItem(at: site.url(".derive/derive/build.lock"))
        for arguments in Self.questions {
            Self.expectNoAnswer(try site.run(arguments), arguments, saying: "pid \(build.pid)")
        }
        #expect(build.process.isRunning, "the build ended before the questions were asked")
    }

    @Test func aBuildWhoseStateFolderWasMovedAwayStillStopsPlanAndCheck() throws {
        let site = try Site()
        let build = try PausedBuild(site)
        defer { build.stop() }
        #expect(rename(site.url(".derive").path, site.url("derive-state-away").path) == 0)
        for arguments in Self.questions {
            Self.expectNoAnswer(try site.run(arguments), arguments, saying: "pid \(build.pid)")
        }
        #expect(build.process.isRunning, "the build ended before the questions were asked")
    }

    /// The state folder moved away, or replaced by a copy, while plan/check ran: what they read
    /// is no longer the state; they say so rather than answer.
    @Test(arguments: ["moved", "replaced"])
    func aStateFolderMovedOrReplacedMidCommandIsSaid(how: String) throws {
        let site = try Site()
        #expect(try site.run(["build", "-q"]).status == 0)
        for (number, arguments) in [["plan", "-v"], ["plan", "--json"], ["check", "--verify-all"]].enumerated() {
            let result = try Self.run(arguments, in: site) {
                let away = site.url("derive-state-\(number)")
                #expect(rename(site.url(".derive").path, away.path) == 0)
                if how == "replaced" { try FileManager.default.copyItem(at: away, to: site.url(".derive")) }
            }
            Self.expectNoAnswer(result, arguments, saying: "was moved, deleted or replaced while derive \(arguments[0]) ran")
            if how == "moved" { #expect(rename(site.url("derive-state-\(number)").path, site.url(".derive").path) == 0) }
        }
    }

    // MARK: F10: a whole build during plan or check --verify

    /// A photo added, then plan/check started; while they run, a build writes and records its
    /// outputs and ends. Their answer ("create") is of a state that is gone: they say a build ran.
    @Test func aBuildThatRanDuringPlanOrCheckIsSaid() throws {
        let site = try Site()
        #expect(try site.run(["build", "-q"]).status == 0)
        for (number, arguments) in [["check", "--verify-all"], ["check", "--verify"], ["plan"], ["plan", "--json"]].enumerated() {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("photos/added-\(number).jpg"))
            let result = try Self.run(arguments, in: site) {
                let build = try site.run(["build", "-q"])
                #expect(build.status == 0, "\(build.stderr)")
            }
            Self.expectNoAnswer(result, arguments, saying: "ran on this state while derive \(arguments[0]) ran")
            #expect(!Self.said(result).contains("added-\(number)"), "\(arguments): \(Self.said(result))")
        }
        // Nothing ran meanwhile: they answer.
        let quiet = try Self.run(["check", "--verify-all"], in: site) {}
        #expect(quiet.status == 0, "\(Self.said(quiet))")
    }

    // MARK: F11: a lock held by another program

    /// `flock build.lock sleep 60`: plan and check still give no answer (a build would wait for
    /// it too), but name what holds the lock, not the last build, whose line is still in the file.
    @Test func aLockHeldByAnotherProgramIsNamedAsIt() throws {
        let site = try Site()
        #expect(try site.run(["build", "-q"]).status == 0)
        let lockFile = site.url(".derive/derive/build.lock").path
        let lastBuild = String(decoding: try Data(contentsOf: URL(fileURLWithPath: lockFile)), as: UTF8.self)
        try #require(lastBuild.hasPrefix("pid "), "\(lastBuild)")
        // `flock build.lock cat`: held until its input ends.
        let holder = Process(), input = Pipe()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = [lockFile, "cat"]
        holder.standardInput = input
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer { try? input.fileHandleForWriting.close(); holder.waitUntilExit() }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !((try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? "").contains(" \(holder.processIdentifier) ") { usleep(20_000) }
        // (Options that skip the no-op answer: that one stands whoever holds the lock, as nothing changed since the last build.)
        for arguments in [["plan", "-v"], ["plan", "--json"], ["check", "--verify"]] {
            let result = try site.run(arguments)
            Self.expectNoAnswer(result, arguments, saying: "held by pid \(holder.processIdentifier) (flock)")
            #expect(!result.stderr.contains(lastBuild.prefix(while: { $0 != "," })) && !result.stderr.contains("another derive command"), "\(arguments): \(result.stderr)")
        }
        // A build, with work to do, is refused as before (75), naming the same holder.
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("photos/added.jpg"))
        let build = try site.run(["build"])
        #expect(build.status == 75, "\(build.stderr)")
        #expect(build.stderr.contains("held by pid \(holder.processIdentifier) (flock), not a derive command")
                && !build.stderr.contains(lastBuild.prefix(while: { $0 != "," })), "\(build.stderr)")
    }

    /// Attack 36c's L3: `flock build.lock cmd` killed while `cmd` (which inherited the lock) runs.
    /// `/proc/locks` still names flock's pid, which is gone: the holder was said as `pid N (ended
    /// since)` with "wait for that process to end". The live process with the file open is named.
    @Test func aLockWhoseTakerEndedIsNamedByItsLiveHolder() throws {
        let site = try Site()
        #expect(try site.run(["build", "-q"]).status == 0)
        let lockFile = site.url(".derive/derive/build.lock").path
        let pidFile = site.url("holder.pid").path
        // `flock build.lock cat`, cat writing its own pid first (its shell execs it).
        let taker = Process(), input = Pipe()
        taker.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        taker.arguments = [lockFile, "/bin/sh", "-c", "echo $$ > \"$0\"; exec cat", pidFile]
        taker.standardInput = input
        taker.standardOutput = FileHandle.nullDevice
        try taker.run()
        defer { try? input.fileHandleForWriting.close() }   // cat ends with its input
        let deadline = Date().addingTimeInterval(20)
        var holder: Int32?
        while Date() < deadline, holder == nil || !((try? String(contentsOfFile: "/proc/\(holder ?? 0)/comm", encoding: .utf8)) ?? "").hasPrefix("cat") {
            holder = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            usleep(20_000)
        }
        let live = try #require(holder, "the holder never started")
        // Not waited for (Foundation may never reap it here): a zombie holds no file, only its name.
        kill(taker.processIdentifier, SIGKILL)
        while Date() < deadline, FileManager.default.fileExists(atPath: "/proc/\(taker.processIdentifier)/fd/0") { usleep(20_000) }

        let plan = try site.run(["plan", "-v"])
        Self.expectNoAnswer(plan, ["plan", "-v"], saying: "pid \(live) (cat)")
        #expect(!plan.stderr.contains("ended since)"), "\(plan.stderr)")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("photos/added.jpg"))
        let build = try site.run(["build"])
        #expect(build.status == 75, "\(build.stderr)")
        #expect(build.stderr.contains("pid \(live) (cat)") && !build.stderr.contains("ended since)"), "\(build.stderr)")
    }
}
