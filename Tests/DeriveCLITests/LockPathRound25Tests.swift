import Foundation
import Testing
import TestSupport

/// Attack round 25's build finding 7: a lock path the build cannot write passed `plan` (exit 0),
/// then `build` rendered every output and failed at the lock: a folder there gave "appeared or
/// changed while building … pass --overwrite" (it was there before, and --overwrite did not
/// help), a file where the lock's folder goes gave a raw NSCocoaErrorDomain error. Both are plan
/// errors now, so a build refuses before rendering anything, as README says of every plan error.
@Suite(.ownThreads) struct LockPathRound25Tests {
    func project(lock: String?) throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data("""
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_100
            to: out/t/{name}.jpg
        \(lock.map { "lock: \($0)\n" } ?? "")
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    /// Plan and build both refuse, naming the lock and what is wrong; nothing is rendered.
    func expectRefused(_ folder: URL, lock: String, saying words: String) throws {
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 1, "plan: \(text(plan.stdout)) \(plan.stderr)")
        #expect(plan.stderr.contains(lock) && plan.stderr.contains(words), "plan: \(plan.stderr)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 1, "build: \(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains(lock) && build.stderr.contains(words), "build: \(build.stderr)")
        #expect(!build.stderr.contains("NSCocoaErrorDomain") && !build.stderr.contains("--overwrite"), "build: \(build.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/t/a.jpg").path), "rendered before refusing")
    }

    @Test func aFolderAtTheLockPathIsAPlanError() throws {
        let folder = try project(lock: nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("derive.lock"), withIntermediateDirectories: false)
        try expectRefused(folder, lock: "derive.lock", saying: "is a folder")
        // The user's folder is left as it was.
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.lock").path, isDirectory: &isFolder) && isFolder.boolValue)
    }

    @Test func aFileWhereTheLocksFolderGoesIsAPlanError() throws {
        let folder = try project(lock: "afile/x.lock")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("mine".utf8).write(to: folder.appendingPathComponent("afile"))
        try expectRefused(folder, lock: "afile", saying: "is not a folder")
        #expect((try? Data(contentsOf: folder.appendingPathComponent("afile"))) == Data("mine".utf8))
    }

    /// A lock in a folder that does not exist yet is still written (the folder is made).
    @Test func aLockInAFolderNotYetMadeIsWritten() throws {
        let folder = try project(lock: "newdir/x.lock")
        defer { try? FileManager.default.removeItem(at: folder) }
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("newdir/x.lock").path))
    }
}

/// Attack round 26: `clean` deleted a FIFO at the lock path, and read another project's lock
/// through a symbolic link there, removing outputs by its lines (build refuses that link). Now
/// clean refuses, removing nothing and leaving the link or FIFO.
@Suite(.ownThreads) struct CleanLockPathRound26Tests {
    @Test(arguments: ["link", "fifo"])
    func cleanNeverReadsOrRemovesALockPathThatIsNoFile(_ kind: String) throws {
        let suite = LockPathRound25Tests()
        let other = try suite.project(lock: nil)
        let folder = try suite.project(lock: nil)
        defer { try? FileManager.default.removeItem(at: other); try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["build", "-q"], in: other).status == 0)
        // A fresh clone of the same project (outputs committed, no state), its lock replaced.
        try FileManager.default.copyItem(at: other.appendingPathComponent("out"), to: folder.appendingPathComponent("out"))
        let lock = folder.appendingPathComponent("derive.lock").path
        if kind == "link" {
            try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: other.appendingPathComponent("derive.lock").path)
        } else {
            #expect(mkfifo(lock, 0o644) == 0)
        }
        let clean = try CLI.run(["clean"], in: folder)
        #expect(clean.status != 0, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(clean.stderr.contains("derive.lock") && clean.stderr.contains("removed nothing"), "\(clean.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/t/a.jpg").path), "an output was removed")
        var info = stat()
        #expect(lstat(lock, &info) == 0, "the \(kind) at the lock path was removed")
        #expect(FileManager.default.fileExists(atPath: other.appendingPathComponent("derive.lock").path))
    }
}
