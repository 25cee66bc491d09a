import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 36c's M6: Q's state folder a bind mount of P's had a real path of its own, so Q's
/// build moved P's state aside as foreign and wrote its own there. Needs a mount of the test's
/// own (root and `unshare -m`): skipped where none can be made.
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct StateMountRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Every regular file below `folder`, relative path → bytes.
    func files(_ folder: URL) -> [String: Data] {
        var found: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: folder.path)
        while let name = enumerator?.nextObject() as? String {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) { found[name] = data }
        }
        return found
    }

    /// Q's state folder a bind mount of P's: refused before anything is written, naming both
    /// manifests; P's state keeps every byte, and P's next build has nothing to do.
    @Test func aStateFolderMountedFromAnotherProjectIsRefused() throws {
        let p = try Project(index: false), q = try Project(index: false)
        defer { p.remove(); q.remove() }
        #expect(try p.run(["build", "-q"]).status == 0)
        #expect(try q.run(["build", "-q"]).status == 0)
        let before = files(p.url(".derive/derive"))
        for command in [["build"], ["plan"], ["check"], ["clean"]] {
            let result = try BindMounts.run(command, in: q.root, mounting: p.url(".derive/derive").path, at: ".derive/derive")
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("shown here by a mount"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains(p.root.lastPathComponent + "/derive.yaml") && result.stderr.contains(q.root.lastPathComponent + "/derive.yaml"),
                    "\(command): both manifests named: \(result.stderr)")
            #expect(files(p.url(".derive/derive")) == before, "\(command) through the mount changed P's state folder")
        }
        let build = try p.run(["build"])
        #expect(build.status == 0 && !build.stderr.contains("adopted"), "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("Nothing to do"), "\(text(build.stdout))")
    }
}
