import Foundation
import Testing
import TestSupport

/// Attack 40a's leftovers (issue 9). A5's clean side: `derive clean` right after a build killed
/// while two output buckets swapped folders judged Derive's old out1 file by the killed build's
/// install note (the temporary's device and inode), left it, and removed the state and the lock
/// (its last records). A8's index part: the old index moved with its folder (`mv AAA TTT; mv BBB
/// AAA; mv TTT BBB`) was never named, by plan, build, check or clean. And a chained re-point killed
/// after it installed the new index in the middle folder left that index for good. Kills are
/// injected by `strace` (those tests are skipped where it is missing or cannot trace).
@Suite(.ownThreads, .serialized) struct SwapCleanRound41Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Swap = BuildSafetyRound40Tests

    /// Every file (hidden ones too) below `folder`, relative to the site.
    func files(_ site: Site, _ folder: String) -> [String] {
        guard let walk = FileManager.default.enumerator(atPath: site.url(folder).path) else { return [] }
        return walk.compactMap { $0 as? String }.filter { name in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: site.url(folder + "/" + name).path, isDirectory: &isFolder) && !isFolder.boolValue
        }.map { folder + "/" + $0 }.sorted()
    }

    func killedBuild(_ site: Site, _ call: String, _ when: Int) throws {
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=\(call)", "-e", "inject=\(call):signal=KILL:when=\(when)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "\(call) #\(when): \(said(killed))")
    }

    /// `clean` after the kill: every file in AAA and BBB is Derive's (its old renders, its new
    /// ones, its index), so all go; a file it leaves keeps the lock as its record and exits 1.
    @Test(.enabled(if: SystemCallTrace.isPossible), arguments: [("renameat2", 4), ("renameat2", 5), ("fsync", 3)])
    func cleanAfterAKilledSwapRemovesDerivesFilesOrKeepsTheirRecord(call: String, when: Int) throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Swap.swapped(false))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try site.write(Swap.swapped(true))
        try killedBuild(site, call, when)
        let before = files(site, "AAA") + files(site, "BBB")
        let clean = try site.run(["clean"])
        let left = files(site, "AAA") + files(site, "BBB")
        #expect(left.isEmpty, "\(call) #\(when): before clean \(before), left \(left) (\(said(clean)))")
        if !left.isEmpty {
            // Whatever it could not prove Derive's keeps its record, named, and clean says so.
            #expect(site.exists("derive.lock") && clean.status == 1, "\(call) #\(when): \(said(clean))")
        } else {
            #expect(clean.status == 0, "\(call) #\(when): \(said(clean))")
        }
    }

    /// The same with the folders swapped on disk and out1 restyled (attack 40a's `swapd.sh`);
    /// fsync #5 and unlinkat #3 kill it after it wrote the index and before it recorded it.
    @Test(.enabled(if: SystemCallTrace.isPossible), arguments: [("renameat2", 4), ("fsync", 4), ("fsync", 5), ("unlinkat", 3)])
    func cleanAfterAKilledBuildOfFoldersSwappedOnDiskRemovesDerivesFiles(call: String, when: Int) throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Swap.swapped(false))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try swapOnDisk(site)
        try site.write(Swap.swapped(false).replacingOccurrences(of: "w_32", with: "w_30"))
        try killedBuild(site, call, when)
        let before = files(site, "AAA") + files(site, "BBB")
        let clean = try site.run(["clean"])
        let left = files(site, "AAA") + files(site, "BBB")
        #expect(left.isEmpty, "\(call) #\(when): before clean \(before), left \(left) (\(said(clean)))")
        if !left.isEmpty { #expect(site.exists("derive.lock") && clean.status == 1, "\(call) #\(when): \(said(clean))") }
    }

    func swapOnDisk(_ site: Site) throws {
        let move = FileManager.default
        try move.moveItem(at: site.url("AAA"), to: site.url("TTT"))
        try move.moveItem(at: site.url("BBB"), to: site.url("AAA"))
        try move.moveItem(at: site.url("TTT"), to: site.url("BBB"))
    }

    /// A8's index part: Derive's old index moved with out1's old folder to BBB/index.json. The
    /// plan names it, the build removes it (its bytes and its file are the ones Derive recorded
    /// writing) and says so; check and plan agree afterwards.
    @Test func theOldIndexThatMovedWithASwappedFolderIsRemovedByTheBuild() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Swap.swapped(false))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try swapOnDisk(site)
        #expect(site.exists("BBB/index.json"))
        let plan = try site.run(["plan"])
        #expect(said(plan).contains("BBB/index.json"), "\(said(plan))")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!site.exists("BBB/index.json"), "\(said(build))")
        #expect(said(build).contains("BBB/index.json"), "\(said(build))")
        #expect(site.exists("AAA/index.json"))
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
        // And clean after the swap, with no build between: the moved index goes too (the
        // outputs in the swapped folders are another matter: left, the lock kept as their record).
        let other = try Site(["src/a1.jpg": "landscape.jpg"], manifest: Swap.swapped(false))
        defer { other.remove() }
        #expect(try other.run(["build", "-q"]).status == 0)
        try swapOnDisk(other)
        let clean = try other.run(["clean"])
        #expect(!other.exists("BBB/index.json"), "\(said(clean))")
        #expect(!said(clean).contains("index.json"), "\(said(clean))")
    }

    /// A user's copy of the old index in the swapped folder (another file, same bytes) is theirs:
    /// kept by the build.
    @Test func aCopyOfTheOldIndexInTheSwappedFolderIsKept() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg"], manifest: Swap.swapped(false))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try swapOnDisk(site)
        // Made while the original is still there, so it never gets the original's inode number back.
        let moved = try Data(contentsOf: site.url("BBB/index.json"))
        try moved.write(to: site.url("BBB/copy.json"))
        try FileManager.default.removeItem(at: site.url("BBB/index.json"))
        try FileManager.default.moveItem(at: site.url("BBB/copy.json"), to: site.url("BBB/index.json"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.exists("BBB/index.json"), "\(said(build))")
    }

    static func chained(folder: String, width: Int, removed: Bool) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(folder)}
        lock: meta/l.lock
        index: out/index.json
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: out/t/{name}.jpg
        \(removed ? "" : "  - name: u\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/u/{name}.jpg\n")
        """
    }

    /// A chained re-point (outA → userB, killed, → userC) whose kill left the new index installed
    /// in userB but not recorded (only the build's note of it): the next build removes it.
    @Test(.enabled(if: SystemCallTrace.isPossible), arguments: [5, 6, 7])
    func anIndexAKilledRepointInstalledInTheMiddleFolderGoes(when: Int) throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg", "src/a3.jpg": "cmyk.jpg"],
                            manifest: Self.chained(folder: "outA", width: 32, removed: false))
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("userB"), withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: site.url("userB/notes.txt"))
        #expect(try site.run(["build", "-q"]).status == 0)
        try site.write(Self.chained(folder: "userB", width: 30, removed: true))
        try killedBuild(site, "renameat2", when)
        let middle = files(site, "userB")
        try site.write(Self.chained(folder: "userC", width: 30, removed: true))
        let next = try site.run(["build"])
        #expect(next.status == 0, "#\(when): \(said(next))")
        #expect(files(site, "userB") == ["userB/notes.txt"], "#\(when): after the kill \(middle); \(said(next))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "#\(when): \(said(check))")
    }

    /// A build killed after it replaced the lock and before the index, then `.derive` deleted:
    /// the index on disk is the one the dead build's lock temporary (the displaced lock, this
    /// manifest's, this user's, its writer dead) records, so it is Derive's and rewritten, not refused.
    @Test(.enabled(if: SystemCallTrace.isPossible)) func theDeadBuildsLockTemporaryVouchesForTheIndex() throws {
        let manifest = RepointChainRound40Tests.manifest(folder: "outA", width: 32, lock: true)
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: manifest)
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let index = try Data(contentsOf: site.url("outA/index.json"))
        try site.write(manifest.replacingOccurrences(of: "w_32", with: "w_30"))
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-P", site.url("meta").path, "-e", "trace=renameat2", "-e", "inject=renameat2:signal=KILL:when=2",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "\(said(killed))")
        #expect(files(site, "meta").count == 2 && (try? Data(contentsOf: site.url("outA/index.json"))) == index,
                "the kill did not fall between the lock and the index: \(files(site, "meta"))")
        try FileManager.default.removeItem(at: site.url(".derive"))
        let next = try site.run(["build"])
        #expect(next.status == 0, "\(said(next))")
        #expect((try? Data(contentsOf: site.url("outA/index.json"))) != index, "\(said(next))")
        #expect(files(site, "meta") == ["meta/l.lock"], "\(files(site, "meta"))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }

    /// A file merely named like the lock's temporary (not a Derive lock of this manifest) vouches
    /// for nothing: the index stays refused.
    @Test func aFileNamedLikeTheLocksTemporaryVouchesForNothing() throws {
        let manifest = RepointChainRound40Tests.manifest(folder: "outA", width: 32, lock: true)
        let site = try Site(["src/a1.jpg": "landscape.jpg"], manifest: manifest)
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let index = try Data(contentsOf: site.url("outA/index.json"))
        try site.write(manifest.replacingOccurrences(of: "w_32", with: "w_30"))
        #expect(try site.run(["build", "-q"]).status == 0)
        // The old index back, beside a forged temporary claiming it (another manifest's name).
        try index.write(to: site.url("outA/index.json"))
        let lock = try String(contentsOf: site.url("meta/l.lock"), encoding: .utf8)
        let digest = String(lock.split(separator: "\"indexDigest\":\"")[1].prefix(64))
        let forged = lock.replacingOccurrences(of: digest, with: SHA256Hex.of(index)).replacingOccurrences(of: "../derive.yaml", with: "../other.yaml")
        try Data("version: 1\n".utf8).write(to: site.url("other.yaml"))   // a manifest still there keeps its lock
        try Data(forged.utf8).write(to: site.url("meta/.l.lock.999999.1.derive-tmp"))
        try FileManager.default.removeItem(at: site.url(".derive"))
        let next = try site.run(["build"])
        #expect(next.status != 0, "\(said(next))")
        #expect(said(next).contains("outA/index.json exists and was not written by Derive"), "\(said(next))")
    }
}
