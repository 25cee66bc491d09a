import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 39c's N1 and N2: a build that re-points a bucket (`path: outA` → `userB`, with a
/// restyle), killed with `kill -9` while it deleted an old copy in `outA` (at its `renameat2`
/// to a temporary name, or its `unlinkat`), had already replaced the old copy's record by the
/// new one: `outA/t/*.jpg` (Derive's bytes) or `outA/t/.<name>.<pid>.<n>.derive-tmp` stayed
/// forever, unnamed, and were later refused as "not written by Derive". The old copy now goes
/// before its record is replaced: the next build (or `clean`) deletes what is left by that
/// record, digest- and identity-checked. Killed with `strace`'s fault injection (skipped where
/// strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct RepointKillRound39Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(folder: String, width: Int) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(folder)}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: out/t/{name}.jpg

        """
    }

    /// Built into `outA`, then re-pointed at `userB` with a restyle.
    func repointed() throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg", "src/a3.jpg": "cmyk.jpg"],
                            manifest: Self.manifest(folder: "outA", width: 32))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try site.write(Self.manifest(folder: "userB", width: 30))
        return site
    }

    /// Every file (hidden ones too) under `folder`, relative to it.
    func files(_ site: Site, _ folder: String) -> [String] {
        guard let walk = FileManager.default.enumerator(atPath: site.url(folder).path) else { return [] }
        return walk.compactMap { $0 as? String }.filter { name in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: site.url(folder + "/" + name).path, isDirectory: &isFolder) && !isFolder.boolValue
        }.sorted()
    }

    func killed(_ site: Site, at call: String, _ when: Int) throws {
        let result = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=\(call)", "-e", "inject=\(call):signal=KILL:when=\(when)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(result.status != 0, "\(call) #\(when): \(said(result))")
    }

    static let kills = [("renameat2", 1), ("renameat2", 2), ("unlinkat", 1)]

    @Test(arguments: kills) func theNextBuildDeletesEveryOldCopyAKilledRepointLeft(call: String, when: Int) throws {
        let site = try repointed()
        defer { site.remove() }
        try killed(site, at: call, when)
        #expect(!files(site, "outA").isEmpty, "\(call) #\(when): the kill left nothing in outA (the test no longer kills where it means to)")
        let next = try site.run(["build"])
        #expect(next.status == 0, "\(call) #\(when): \(said(next))")
        #expect(files(site, "outA").isEmpty, "\(call) #\(when): left \(files(site, "outA")) (\(said(next)))")
        #expect(files(site, "userB") == ["t/a1.jpg", "t/a2.jpg", "t/a3.jpg"], "\(call) #\(when): \(files(site, "userB"))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(call) #\(when): \(said(check))")
        // Pointed back at outA: nothing there is refused as someone else's.
        try site.write(Self.manifest(folder: "outA", width: 30))
        let back = try site.run(["build"])
        #expect(back.status == 0, "\(call) #\(when): \(said(back))")
    }

    @Test(arguments: kills) func cleanAfterAKilledRepointRemovesEveryFileDeriveWrote(call: String, when: Int) throws {
        let site = try repointed()
        defer { site.remove() }
        try killed(site, at: call, when)
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(call) #\(when): \(said(clean))")
        #expect(files(site, "outA").isEmpty && files(site, "userB").isEmpty,
                "\(call) #\(when): left \(files(site, "outA")) in outA, \(files(site, "userB")) in userB (\(said(clean)))")
    }
}
