import Foundation
import Testing
import TestSupport

/// Attack 41a's B6: bucket `out` is itself a mount; after a build a folder is mounted over `out/u`
/// (copies of the outputs inside). `clean` named `out`, the bucket's own mount, as the mount point
/// the outputs are behind: the mount that hides them is `out/u`. Skipped where no bind mount can be made.
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct MountNameRound41Tests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test func cleanNamesTheMountPointThatHidesTheOutputsNotTheBucketsOwn() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", MountPointRound36Tests().manifest(to: "out/u/{name}.{ext}"))
        // One namespace for the build and the clean, so the bucket's own mount stays between them.
        let script = "mkdir -p out disk copies && mount --bind disk out || exit 99; \"$0\" build -q || exit 98; "
            + "cp -a out/u/. copies/ && mount --bind copies out/u || exit 99; exec \"$0\" clean"
        let result = try CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", script, CLI.executable.path], in: project.root, executable: BindMounts.unshare)
        #expect(result.status != 98 && result.status != 99, "\(result.stderr)")
        #expect(result.stderr.contains("could not be reached where Derive wrote it: it is behind a mount point (out/u)"), "\(result.stderr)")
        #expect(!result.stderr.contains("behind a mount point (out)"), "\(result.stderr)")
    }
}
