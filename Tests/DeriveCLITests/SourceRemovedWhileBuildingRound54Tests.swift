import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 53c's F5: a source removed while the build ran was a read failure (`derive: failure:
/// src/p9.jpg: cannot read …: 'p9.jpg' does not exist, 3 derivatives not built`) counted in
/// "N failed". A removal is a change, not a failure: said so, counted apart, and (a one-shot
/// build, as for a source changed while building) exit 1 with "run the build again".
/// `src/a.jpg` under two rules (`out/a-t.jpg`, `out/a-u.jpg`), one job: the build stops just
/// before installing `a-t.jpg` (`DERIVE_TEST_BEFORE_INSTALL`), the test removes the source, and
/// the build comes to read it for `a-u.jpg`.
@Suite(.ownThreads) struct SourceRemovedWhileBuildingRound54Tests {
    @Test func aSourceRemovedWhileBuildingIsNoFailure() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try copySample("orientation-1.jpg", to: root.appendingPathComponent("src/a.jpg"))
        try Data(("version: 1\nbuckets: {src: {path: src}, out: {path: out}}\nderivatives:\n"
            + "  - {name: t, from: src/*.jpg, process: \"image/resize,w_8\", to: \"out/{name}-t.jpg\"}\n"
            + "  - {name: u, from: src/*.jpg, process: \"image/resize,w_6\", to: \"out/{name}-u.jpg\"}\n").utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        let marker = root.appendingPathComponent("install.marker")
        let (paused, run) = try CLI.runPaused(["build", "--jobs", "1"], in: root, environment: [
            "XDG_STATE_HOME": root.appendingPathComponent("xdg").path, "DERIVE_TEST_BEFORE_INSTALL": "a-t.jpg=\(marker.path)",
        ], marker: marker) { _ in
            try FileManager.default.removeItem(at: root.appendingPathComponent("src/a.jpg"))
        }
        let build = said(run)
        try #require(paused, "the build did not stop before installing a-t.jpg: \(build)")
        #expect(run.status == 1, "\(build)")
        #expect(build.contains("src/a.jpg was removed while building; run the build again"), "\(build)")
        #expect(!build.contains("derive: failure:") && !build.contains("failed") && !build.contains("does not exist"), "\(build)")
        #expect(build.contains("built 1, ") && build.contains("1 not built (source removed while building)"), "\(build)")
        // The next build settles it: the removed source's output is deleted, nothing fails.
        let again = try CLI.run(["build"], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        #expect(again.status == 0 && !FileManager.default.fileExists(atPath: root.appendingPathComponent("out/a-t.jpg").path), "\(said(again))")
    }
}
