import Foundation
import Testing
import TestSupport

/// Issue #13, attack 42c's M1: when derive.lock (and so the index after it) could not be written,
/// a restyle still deleted the replaced `{hash}` files while the published index kept naming them:
/// the page showed broken images until a later build. The old files now stay, records and all,
/// until a build writes the lock and the index; that build deletes them.
@Suite(.ownThreads, .serialized) struct LockUnwrittenKeepsOldFilesRound43Tests {
    @Test func aRestyleWhoseLockCannotBeWrittenKeepsTheFilesTheIndexNames() throws {
        let site = try HashedBuildRound20Tests.Site()
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let before = site.outputs
        #expect(before.count == 12)
        let index = try Data(contentsOf: site.url("site/index.json"))
        // A restyle: every `{hash}` name changes.
        let manifest = site.url("derive.yaml")
        let text = try String(contentsOf: manifest, encoding: .utf8).replacingOccurrences(of: "format,webp", with: "format,webp/quality,q_61")
        try Data(text.utf8).write(to: manifest)

        let failed = try site.run(["build"], environment: ["DERIVE_TEST_FAIL_LOCK_WRITE": "1"])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("was kept: the lock or the index could not be written"), "\(failed.stderr)")
        #expect(!String(decoding: failed.stdout, as: UTF8.self).contains("deleted"), "\(String(decoding: failed.stdout, as: UTF8.self))")
        // Every file the index on disk names is still there (the old ones, and the index unchanged).
        #expect(try Data(contentsOf: site.url("site/index.json")) == index)
        let after = site.outputs
        for (name, bytes) in before { #expect(after[name] == bytes, "\(name) was deleted or changed while the index names it") }
        #expect(after.count == 24)

        // The next build that writes the lock and the index deletes them, and only them.
        let fixed = try site.run(["build"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let final = site.outputs
        #expect(final.count == 12 && Set(final.keys).isDisjoint(with: before.keys), "\(final.keys.sorted())")
        #expect(try site.run(["check"]).status == 0)
        // Without the failure, a restyle deletes the replaced files in the same build (a few
        // renders may come out byte for byte the same, under the same name).
        try Data(text.replacingOccurrences(of: "q_61", with: "q_62").utf8).write(to: manifest)
        let again = try site.run(["build"])
        #expect(again.status == 0 && String(decoding: again.stdout, as: UTF8.self).contains(", deleted "), "\(said(again))")
        #expect(site.outputs.count == 12)
    }

    /// Attack 43a's F1: the same without an `index:` line: the lock alone could not be written,
    /// and the replaced files were deleted while the lock on disk still named them.
    @Test func withoutAnIndexALockThatCannotBeWrittenKeepsTheFilesItNames() throws {
        let site = try HashedBuildRound20Tests.Site()
        let manifest = site.url("derive.yaml")
        let plain = try String(contentsOf: manifest, encoding: .utf8).replacingOccurrences(of: "index: site/index.json\n", with: "")
        try Data(plain.utf8).write(to: manifest)
        #expect(try site.run(["build", "-q"]).status == 0)
        let before = site.outputs
        let lock = try Data(contentsOf: site.url("derive.lock"))
        try Data(plain.replacingOccurrences(of: "format,webp", with: "format,webp/quality,q_61").utf8).write(to: manifest)
        let failed = try site.run(["build"], environment: ["DERIVE_TEST_FAIL_LOCK_WRITE": "1"])
        #expect(failed.status == 1 && failed.stderr.contains("was kept: the lock or the index could not be written, and the lock there names it still"), "\(said(failed))")
        #expect(try Data(contentsOf: site.url("derive.lock")) == lock)
        let after = site.outputs
        for (name, bytes) in before { #expect(after[name] == bytes, "\(name) was deleted while the lock names it") }
        let fixed = try site.run(["build"])
        #expect(fixed.status == 0, "\(said(fixed))")
        #expect(site.outputs.count == 12 && Set(site.outputs.keys).isDisjoint(with: before.keys))
        #expect(try site.run(["check"]).status == 0)
    }
}
