import Foundation
import Testing
import TestSupport

/// Attack round 29's finding 8: a fresh clone's restyle build killed just after the exchange
/// that put a git-proven output in place left `.NAME.PID.N.derive-tmp` holding the displaced
/// committed output, and no later build removed it (with a state the recorded digest proves it
/// Derive's). The build now notes the displaced bytes' digest with the pending write, so the next
/// build removes the file while it holds exactly them; a user's file of such a name stays.
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct FreshCloneTemporaryRound29Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(_ width: Int) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - {name: t, from: "src/*.jpg", process: "image/resize,w_\(width)", to: "out/{name}.jpg"}

        """
    }

    func git(_ arguments: [String], in folder: URL) throws -> CLI.Result {
        try CLI.run(["-c", "user.name=a", "-c", "user.email=a@b"] + arguments, in: folder, executable: "/usr/bin/git")
    }

    func temporaries(_ site: Site) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: site.url("out").path)) ?? []).filter { $0.hasSuffix(".derive-tmp") }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git")))
    func theDisplacedCommittedOutputOfAKilledFreshCloneBuildIsRemovedNext() throws {
        let site = try Site(["src/landscape.jpg": "landscape.jpg"], manifest: Self.manifest(100))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try Data(".derive/\n".utf8).write(to: site.url(".gitignore"))
        #expect(try git(["init", "-q", "."], in: site.root).status == 0)
        #expect(try git(["add", "-A"], in: site.root).status == 0)
        #expect(try git(["commit", "-qm", "i"], in: site.root).status == 0)
        let committed = try Data(contentsOf: site.url("out/landscape.jpg"))
        try site.freshClone()
        try site.write(Self.manifest(90))
        // Killed at the renameat2 after the exchange (the displaced file's move to a fresh name).
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=renameat2", "-e", "inject=renameat2:signal=KILL:when=2",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "\(said(killed))")
        let left = temporaries(site)
        try #require(left.count == 1, "the kill left \(left) (the test no longer kills where it means to)")
        #expect(FileManager.default.contents(atPath: site.url("out/" + left[0]).path) == committed)
        // A user's file of a temporary's shape (a dead pid) with other bytes stays.
        let mine = ".landscape.jpg.999999.7.derive-tmp"
        try Data("mine".utf8).write(to: site.url("out/" + mine))
        let next = try site.run(["build"])
        #expect(next.status == 0, "\(said(next))")
        #expect(temporaries(site) == [mine], "left \(temporaries(site))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }
}
