import Foundation
import Testing
import TestSupport

/// Attack 37b's finding 8: Q's `.derive/derive` a bind mount of P's state folder is refused while
/// P's manifest is there; with P's manifest briefly absent (renamed, a checkout), Q's build moved
/// P's state aside and wrote Q's own into P's folder: P lost its records. A state folder shown
/// here by a mount is another project's whether or not its manifest is there now. Needs a mount
/// of the test's own (root and `unshare -m`): skipped where none can be made.
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct StateMountAbsentOwnerRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// Every regular file below `folder`, relative path → bytes.
    func files(_ folder: URL) -> [String: Data] {
        var found: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: folder.path)
        while let name = enumerator?.nextObject() as? String {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) { found[name] = data }
        }
        return found
    }

    @Test func aMountedStateFolderIsRefusedWhileItsManifestIsAbsent() throws {
        let p = try Project(index: false), q = try Project(index: false)
        defer { p.remove(); q.remove() }
        #expect(try p.run(["build", "-q"]).status == 0)
        #expect(try q.run(["build", "-q"]).status == 0)
        try FileManager.default.moveItem(at: p.url("derive.yaml"), to: p.url("derive.yaml.off"))
        let before = files(p.url(".derive/derive"))
        for command in [["build"], ["plan"], ["check"], ["clean"]] {
            let result = try BindMounts.run(command, in: q.root, mounting: p.url(".derive/derive").path, at: ".derive/derive")
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("shown here by a mount"), "\(command): \(result.stderr)")
            #expect(files(p.url(".derive/derive")) == before, "\(command) through the mount changed P's state folder")
        }
        try FileManager.default.moveItem(at: p.url("derive.yaml.off"), to: p.url("derive.yaml"))
        let build = try p.run(["build"])
        #expect(build.status == 0 && !build.stderr.contains("adopted") && !build.stderr.contains("moved it"), "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("Nothing to do"), "\(text(build.stdout))")
    }
}
