import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 36b's Low 8: a no-op answered from the witness lost the witness's refresh on a full
/// disk unsaid (`try?`). Needs a mount of the test's own (a small tmpfs, root and `unshare -m`):
/// skipped where none can be made.
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct WitnessRefreshFullDiskRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// A no-op whose witness refresh cannot be saved (the state folder's disk full) says so once
    /// and still answers "Nothing to do", exit 0. The refresh a touched source asks for: the
    /// witness (saved by the no-op after the build) answers by the touch, and saves the stat again.
    @Test func aWitnessRefreshLostToAFullDiskIsSaid() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url(".derive"), withIntermediateDirectories: true)
        let script = """
            mount -t tmpfs -o size=4m,mode=0700 tmpfs .derive || exit 99
            "$0" build -q || exit 98
            sleep 1.5
            "$0" build -q || exit 97
            sleep 1.5
            touch src/landscape.jpg
            dd if=/dev/zero of=.derive/fill bs=64k >/dev/null 2>&1
            exec "$0" build
            """
        let result = try CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", script, CLI.executable.path],
                                 in: project.root, executable: BindMounts.unshare)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(text(result.stdout).contains("Nothing to do"), "\(text(result.stdout)) \(result.stderr)")
        #expect(result.stderr.contains("warning: the no-op witness could not be saved again"), "\(result.stderr)")
        #expect(result.stderr.components(separatedBy: "could not be saved again").count == 2, "said more than once: \(result.stderr)")
    }
}
