import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 40a's A1, A2 and A7. A build re-pointing a bucket (`outA` → `userB`, with a restyle)
/// was killed before it recorded `userB` as a folder of bucket `out`; a second re-point
/// (`userC`) then dropped the records of Derive's files in `userB` as "neither its bucket's folder
/// … nor a folder Derive recorded" and left them (A1), and its temporaries there (A2). A killed
/// lock write followed by a deleted state left the lock's temporary for good (A7). Killed with
/// `strace`'s fault injection (skipped where strace is missing or cannot trace).
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct RepointChainRound40Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(folder: String, width: Int, lock: Bool = false, index: Bool = true) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(folder)}
        \(lock ? "lock: meta/l.lock\n" + (index ? "index: out/index.json\n" : "") : "")derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: out/t/{name}.jpg

        """
    }

    func site(lock: Bool = false, index: Bool = true) throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg", "src/a3.jpg": "cmyk.jpg"],
                            manifest: Self.manifest(folder: "outA", width: 32, lock: lock, index: index))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
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

    /// A build killed at its `when`th `renameat2` (only those on `folder`, when given: strace
    /// counts each thread's calls apart, so a count over all of them depends on the threads).
    func killed(_ site: Site, at when: Int, on folder: String? = nil) throws {
        let only = folder.map { ["-P", site.url($0).path] } ?? []
        let result = try CLI.run(["-f", "-o", "/dev/null"] + only + ["-e", "trace=renameat2", "-e", "inject=renameat2:signal=KILL:when=\(when)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(result.status != 0, "renameat2 #\(when): \(said(result))")
    }

    /// A1 and A2: after the killed re-point, re-pointed again: every file Derive wrote in `userB`
    /// (outputs, the index, their temporaries) goes, as after one re-point.
    @Test(arguments: [(1, false), (2, false), (5, true)]) func aSecondRepointDeletesWhatTheKilledOneWroteInTheMiddleFolder(when: Int, lock: Bool) throws {
        let site = try site(lock: lock)
        defer { site.remove() }
        try site.write(Self.manifest(folder: "userB", width: 30, lock: lock))
        try killed(site, at: when)
        #expect(!files(site, "userB").isEmpty, "#\(when): the kill left nothing in userB (the test no longer kills where it means to)")
        try site.write(Self.manifest(folder: "userC", width: 30, lock: lock))
        let next = try site.run(["build"])
        #expect(next.status == 0, "#\(when): \(said(next))")
        #expect(files(site, "userB").isEmpty, "#\(when): left \(files(site, "userB")) (\(said(next)))")
        #expect(files(site, "userC").filter { $0.hasPrefix("t/") } == ["t/a1.jpg", "t/a2.jpg", "t/a3.jpg"], "#\(when): \(files(site, "userC"))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "#\(when): \(said(check))")
    }

    /// A7: the lock's own temporary, left by a build killed while it replaced the lock, goes with
    /// the next build even once the state is gone (nothing records its bytes any more).
    @Test func aKilledLockWritesTemporaryGoesWithoutTheState() throws {
        let site = try site(lock: true, index: false)
        defer { site.remove() }
        try site.write(Self.manifest(folder: "outA", width: 30, lock: true, index: false))
        try killed(site, at: 2, on: "meta")   // the displaced lock's move to a fresh name
        #expect(files(site, "meta").count == 2, "the kill left no temporary (the test no longer kills where it means to): \(files(site, "meta"))")
        try FileManager.default.removeItem(at: site.url(".derive"))
        let next = try site.run(["build"])
        #expect(next.status == 0, "\(said(next))")
        #expect(files(site, "meta") == ["l.lock"], "\(files(site, "meta")) (\(said(next)))")
    }
}
