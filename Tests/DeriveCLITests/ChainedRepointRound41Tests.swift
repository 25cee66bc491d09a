import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 41a's B3 and B4: two killed re-points in a row (`outA` → `userB` + restyle, killed;
/// `userB` → `userC` + restyle, killed; then `userD`, built). The index the first killed build
/// installed in `userB` (B3), and the temporary index the second left in `outA` while removing
/// the index there (B4), stayed through every later build, check and clean, never named. Killed
/// with `strace`'s fault injection (skipped where strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct ChainedRepointRound41Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Chain = RepointChainRound40Tests

    /// A build killed at its `when`th call of `call` (all threads, as the attack counted).
    /// `on`: only the calls on that folder of the site are counted (`strace -P`).
    func killed(_ site: Site, _ call: String, at when: Int, on folder: String? = nil) throws {
        let only = folder.map { ["-P", site.url($0).path] } ?? []
        let result = try CLI.run(["-f", "-o", "/dev/null"] + only + ["-e", "trace=\(call)", "-e", "inject=\(call):signal=KILL:when=\(when)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(result.status != 0, "\(call) #\(when): \(said(result))")
    }

    /// After both kills and the build into `userD`: nothing Derive wrote stays in `outA`, `userB`
    /// or `userC` (outputs, indexes, temporaries), and check agrees.
    /// (Both `unlinkat` kills are counted on `outA`'s own entries alone (`-P`), at the first call:
    /// strace counts `when` per thread, so the attack's "third call of the build" fell on whichever
    /// thread deleted two outputs, or on none, and the first kill sometimes came after outA's
    /// index was gone. The first kill now comes as outA's emptied `t` is removed, before its
    /// index; the second as the old index's temporary is removed.)
    @Test(arguments: [("renameat2", 6, "renameat2", 2), ("renameat2", 6, "renameat2", 6), ("unlinkat", 1, "unlinkat", 1)])
    func twoKilledRepointsLeaveNothingOfDerivesBehind(first: String, n1: Int, second: String, n2: Int) throws {
        let site = try Chain().site(lock: true)
        defer { site.remove() }
        try site.write(Chain.manifest(folder: "userB", width: 30, lock: true))
        try killed(site, first, at: n1, on: first == "unlinkat" ? "outA" : nil)
        try site.write(Chain.manifest(folder: "userC", width: 28, lock: true))
        try killed(site, second, at: n2, on: second == "unlinkat" ? "outA" : nil)
        let before = ["outA", "userB", "userC"].flatMap { folder in Chain().files(site, folder).map { folder + "/" + $0 } }
        // What the kills must leave (else the test no longer kills where it means to): the index in
        // a former folder or its temporary (B3), or the temporary index in outA (B4).
        let meant = second == "unlinkat" ? "outA/.index.json." : "index.json"
        #expect(before.contains { $0.contains(meant) }, "\(first)#\(n1) \(second)#\(n2): the kills left \(before)")
        try site.write(Chain.manifest(folder: "userD", width: 28, lock: true))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let left = ["outA", "userB", "userC"].flatMap { folder in Chain().files(site, folder).map { folder + "/" + $0 } }
        #expect(left.isEmpty, "\(first)#\(n1) \(second)#\(n2): left \(left) of \(before) (\(said(build)))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }
}
