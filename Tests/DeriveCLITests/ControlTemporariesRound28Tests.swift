import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 27's finding 5: a build killed while it writes the lock or the index left
/// `.derive.lock.<pid>.<n>.derive-tmp` (or `out/.index.json.…`) that no later build removed: it
/// held the new bytes (killed before the exchange) or the bytes the exchange displaced (the lock
/// written earlier in the same build), neither at the name nor recorded. Derive now notes both
/// digests in the state before the temporary file exists; the next build removes such a file
/// while it holds one of them. Killed with `strace`'s fault injection at each rename of the
/// write (skipped where strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct ControlTemporariesRound28Tests {
    typealias Site = SiteRound11Tests.Site

    /// The finding's project: a `{hash}` rule (a restyle deletes its old outputs, so the lock is
    /// written twice: before the deletions and at the end), a literal rule and an index.
    static func manifest(_ hashed: Int, _ literal: Int) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: r
            from: src/*.jpg
            process: image/resize,w_\(hashed)/format,webp
            to: out/{name}.{hash}.webp
          - name: lit
            from: src/*.jpg
            process: image/resize,w_\(literal)/format,jpg
            to: out/lit/{name}.jpg
        index: out/index.json
        state: .

        """
    }

    /// Built, then restyled: the next build rewrites the lock (twice) and the index.
    func restyled() throws -> Site {
        let site = try Site(["src/landscape.jpg": "landscape.jpg", "src/portrait.jpg": "portrait.jpg"], manifest: Self.manifest(80, 70))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try site.write(Self.manifest(81, 71))
        return site
    }

    /// Derive's temporary files in the project (its top and `out/`).
    func temporaries(_ site: Site) -> [String] {
        ["", "out/"].flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: site.url(folder.isEmpty ? "." : folder).path)) ?? [])
                .filter { $0.hasSuffix(".derive-tmp") }.map { folder + $0 }
        }
    }

    /// The number of each `renameat2` call that exchanges a file onto `name`, counted in its own
    /// thread as strace's `when=` counts, in a restyle build of a twin project.
    func exchanges(onto name: String) throws -> [Int] {
        let twin = try restyled()
        defer { twin.remove() }
        let trace = twin.url("trace.txt").path
        let result = try CLI.run(["-f", "-o", trace, "-e", "trace=renameat2", CLI.executable.path, "build", "-q"], in: twin.root,
                                environment: ["DERIVE_TEST_JOBS": "2"], executable: SystemCallTrace.strace)
        #expect(result.status == 0, "\(said(result))")
        var counts: [Substring: Int] = [:]
        var found: [Int] = []
        for line in try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n") where line.contains("renameat2(") {
            let thread = line.prefix(while: { $0 != " " })
            counts[thread, default: 0] += 1
            if line.contains(", \"\(name)\", RENAME_EXCHANGE") { found.append(counts[thread]!) }
        }
        return found
    }

    /// Both runs with two jobs (the numbering of each thread's calls the kill points count on).
    @Test func aBuildKilledWhileWritingTheLockOrTheIndexLeavesNoTemporaryBehind() throws {
        let lock = try exchanges(onto: "derive.lock"), index = try exchanges(onto: "index.json")
        try #require(lock.count == 2 && index.count == 1, "lock \(lock), index \(index)")
        // At the exchange (the temporary holds the new bytes), just after it (the displaced
        // bytes: the lock written before the deletions), and at the move of the displaced file to
        // a fresh name before its unlink. (The first lock write's calls have numbers the output
        // writers' threads reach too: a kill there may land in another thread.)
        let points = [lock[1], lock[1] + 1, lock[1] + 2, index[0], index[0] + 1]
        for point in points {
            let site = try restyled()
            defer { site.remove() }
            let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=renameat2", "-e", "inject=renameat2:signal=KILL:when=\(point)",
                                      CLI.executable.path, "build", "-q"], in: site.root,
                                      environment: ["DERIVE_TEST_JOBS": "2"], executable: SystemCallTrace.strace)
            #expect(killed.status != 0, "renameat2 #\(point): \(said(killed))")
            let left = temporaries(site)
            #expect(!left.isEmpty, "renameat2 #\(point): the kill left no temporary file (the test no longer kills where it means to)")
            let next = try site.run(["build"])
            #expect(next.status == 0, "renameat2 #\(point): \(said(next))")
            #expect(temporaries(site).isEmpty, "renameat2 #\(point): left \(temporaries(site)) (was \(left))")
            let check = try site.run(["check"])
            #expect(check.status == 0, "renameat2 #\(point): \(said(check))")
        }
    }
}
