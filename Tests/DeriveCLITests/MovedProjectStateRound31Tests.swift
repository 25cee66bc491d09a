import Foundation
import Testing
import TestSupport

/// Attack round 31's F7: a project folder that is not a git repository, renamed (moved), then a
/// style changed: the rebuild was refused ("no git repository holds …"), for ever. The state had
/// moved with the project, but it was bound to its old path (the user's secret is kept by the
/// database's real path, its owner and its records name absolute paths), so it was taken for a
/// copy and moved aside. A state whose recorded manifest is gone and whose old place holds no
/// state any more moved with its project: it is re-anchored (bound to its new path, its records'
/// paths moved with it) and its digests still prove its outputs. A copy (the old project still
/// there) stays unproven, as before.
@Suite(.ownThreads, .serialized) struct MovedProjectStateRound31Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Gaps28 = StateSharedAcrossFoldersGaps28Tests

    func bytes(_ folder: URL, _ path: String) -> Data? { FileManager.default.contents(atPath: folder.appendingPathComponent(path).path) }

    /// A built project, then moved or copied to `moved`, whose style then changes.
    func project(copied: Bool) throws -> (site: Site, moved: URL) {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Gaps28.manifest(out: "out", state: nil))
        #expect(try site.run(["build", "-q"]).status == 0)
        let moved = try CLI.temporaryFolder().appendingPathComponent("renamed")
        if copied {
            try FileManager.default.copyItem(at: site.root, to: moved)
        } else {
            try FileManager.default.moveItem(at: site.root, to: moved)
        }
        let restyled = Gaps28.manifest(out: "out", state: nil).replacingOccurrences(of: "w_40", with: "w_50")
        try Data(restyled.utf8).write(to: moved.appendingPathComponent("derive.yaml"))
        return (site, moved)
    }

    @Test func aMovedProjectRestylesItsOwnOutputs() throws {
        let (site, moved) = try project(copied: false)
        defer { site.remove(); try? FileManager.default.removeItem(at: moved.deletingLastPathComponent()) }
        let old = try #require(bytes(moved, "out/a.jpg"))
        for command in ["plan", "check"] {
            let result = try CLI.run([command], in: moved)
            #expect(!said(result).contains("not written by Derive") && !said(result).contains("move it aside"), "\(command): \(said(result))")
        }
        let build = try CLI.run(["build"], in: moved)
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("moved it to"), "\(said(build))")
        #expect(bytes(moved, "out/a.jpg") != old, "the output was not rendered again")
        let names = try FileManager.default.contentsOfDirectory(atPath: moved.appendingPathComponent(".derive/derive").path)
        #expect(!names.contains { $0.contains("foreign") }, "\(names)")
        let again = try CLI.run(["build"], in: moved)
        #expect(again.status == 0 && String(decoding: again.stdout, as: UTF8.self).contains("up to date"), "\(said(again))")
        #expect(!again.stderr.contains("took over") && !again.stderr.contains("takes over"), "said once: \(again.stderr)")
        let check = try CLI.run(["check"], in: moved)
        #expect(check.status == 0, "\(said(check))")
    }

    /// A copy (the original still there, with its state) proves nothing by the copied state.
    @Test func aCopiedProjectStaysUnproven() throws {
        let (site, copy) = try project(copied: true)
        defer { site.remove(); try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let old = try #require(bytes(copy, "out/a.jpg"))
        let build = try CLI.run(["build"], in: copy)
        #expect(build.status == 1, "\(said(build))")
        #expect(said(build).contains("out/a.jpg") && said(build).contains("not written by Derive"), "\(said(build))")
        #expect(bytes(copy, "out/a.jpg") == old)
        let original = try site.run(["build"])
        #expect(original.status == 0 && String(decoding: original.stdout, as: UTF8.self).contains("up to date"), "\(said(original))")
    }
}
