import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Gaps 28, 2: `clean` and `release` rewrite the lock (its `left` lines) without noting the new
/// and the displaced bytes as pending writes, as a build does (round 28's
/// ControlTemporariesRound28Tests): a kill during the rewrite left `.derive.lock.<pid>.<n>.derive-tmp`
/// that no later command removed. Now both note them in the state first, and the next command
/// removes such a file while it holds one of them. Killed with `strace`'s fault injection at each
/// rename of the write (skipped where strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct LockRewriteTemporariesGaps28Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(to: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out, acl: public-read}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_40
            to: \(to)
            acl: private

        """
    }

    func temporaries(_ site: Site) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: site.root.path)) ?? []).filter { $0.hasSuffix(".derive-tmp") }
    }

    /// Built (a private rule in a public bucket), an output edited by hand, the rule's `to:`
    /// moved: `clean` leaves the file and writes the lock back with its `left` line (private:
    /// its key is no rule's any more, and would be answered as the bucket's).
    func edited() throws -> Site {
        let site = try Site(["src/a.jpg": "landscape.jpg", "src/b.jpg": "portrait.jpg"], manifest: Self.manifest(to: "out/{name}.jpg"))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try Data("mine".utf8).write(to: site.url("out/a.jpg"))
        try site.write(Self.manifest(to: "out/m/{name}.jpg"))
        return site
    }

    /// Then built: the build leaves the edited orphan with a `left` line (lock and state), which
    /// `release` drops from the lock.
    func left() throws -> Site {
        let site = try edited()
        _ = try site.run(["build", "-q"])
        #expect(site.lock().contains("out/a.jpg"), "\(site.lock())")
        return site
    }

    /// The number of each `renameat2` call that exchanges a file onto `name` in the command, in
    /// its own thread, as strace's `when=` counts.
    func exchanges(_ arguments: [String], onto name: String, in site: Site) throws -> [Int] {
        let trace = try CLI.temporaryFolder().appendingPathComponent("trace.txt")
        defer { try? FileManager.default.removeItem(at: trace.deletingLastPathComponent()) }
        let result = try CLI.run(["-f", "-o", trace.path, "-e", "trace=renameat2", CLI.executable.path] + arguments, in: site.root, executable: SystemCallTrace.strace)
        #expect(result.status == 0, "\(said(result))")
        var counts: [Substring: Int] = [:]
        var found: [Int] = []
        for line in try String(contentsOfFile: trace.path, encoding: .utf8).split(separator: "\n") where line.contains("renameat2(") {
            let thread = line.prefix(while: { $0 != " " })
            counts[thread, default: 0] += 1
            if line.contains(", \"\(name)\", RENAME_EXCHANGE") { found.append(counts[thread]!) }
        }
        return found
    }

    func killedRewriteLeavesNothing(_ arguments: [String], project: () throws -> Site, next: [String]) throws {
        let twin = try project()
        let lock = try exchanges(arguments, onto: "derive.lock", in: twin)
        twin.remove()
        try #require(lock.count == 1, "\(arguments): \(lock)")
        // At the exchange (the temporary holds the new bytes), just after it (the displaced old
        // lock), and at the move of the displaced file to a fresh name before its unlink.
        for point in [lock[0], lock[0] + 1, lock[0] + 2] {
            let site = try project()
            defer { site.remove() }
            let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=renameat2", "-e", "inject=renameat2:signal=KILL:when=\(point)",
                                      CLI.executable.path] + arguments, in: site.root, executable: SystemCallTrace.strace)
            #expect(killed.status != 0, "\(arguments) renameat2 #\(point): \(said(killed))")
            let left = temporaries(site)
            #expect(!left.isEmpty, "\(arguments) renameat2 #\(point): the kill left no temporary file (the test no longer kills where it means to)")
            let after = try site.run(next)
            #expect(temporaries(site).isEmpty, "\(arguments) then \(next), renameat2 #\(point): left \(temporaries(site)) (was \(left)): \(said(after))")
        }
    }

    @Test(arguments: [["build", "-q"], ["clean"]])
    func aCleanKilledWhileRewritingTheLockLeavesNoTemporaryBehind(next: [String]) throws {
        try killedRewriteLeavesNothing(["clean"], project: edited, next: next)
    }

    @Test(arguments: [["build", "-q"], ["clean"]])
    func aReleaseKilledWhileRewritingTheLockLeavesNoTemporaryBehind(next: [String]) throws {
        try killedRewriteLeavesNothing(["release", "out/a.jpg"], project: left, next: next)
    }

    /// A user's file with such a name, its bytes not noted by any write, stays.
    @Test func aUsersFileNamedLikeALockTemporaryStays() throws {
        let site = try edited()
        defer { site.remove() }
        let mine = site.url(".derive.lock.999999.1.derive-tmp")
        try Data("notes".utf8).write(to: mine)
        _ = try site.run(["clean"])
        #expect(FileManager.default.contents(atPath: mine.path) == Data("notes".utf8))
        _ = try site.run(["build", "-q"])
        #expect(FileManager.default.contents(atPath: mine.path) == Data("notes".utf8))
    }
}
