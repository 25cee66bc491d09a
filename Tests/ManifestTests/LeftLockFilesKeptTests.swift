import Foundation
@testable import Manifest
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `LeftLockFiles.keptListing`: serve looks for gone projects' locks again every second, and
/// listed every folder (opening each file) anew each time. The kept listing is the one a fresh
/// listing gives, and a change of the folder or of a file it read (rewritten in place into a
/// lock: no time of the folder moves) is seen at the next question.
@Suite(.ownThreads) struct LeftLockFilesKeptTests {
    /// A listing as text: marked, each lock with its manifest, the dot folders.
    static func text(_ listing: LeftLockFiles.Listing) -> String {
        "\(listing.marked) " + listing.locks.map { "\($0.lock)=\($0.manifest)" }.joined(separator: ",") + " " + listing.dotFolders.joined(separator: ",")
    }

    /// Sets the times of `path` (no link followed) `seconds` into the past: a listing is kept
    /// only once what it read has settled (two seconds).
    static func age(_ path: String, seconds: Int = 30) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var times = [timespec(tv_sec: now.tv_sec - seconds, tv_nsec: 0), timespec(tv_sec: now.tv_sec - seconds, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    static func lockLine(_ manifest: String) -> Data {
        // The header Derive writes (LockFirstLine.derivesLockManifest: a file that only starts
        // like a lock is a user's).
        Data((#"{"format":"derive.lock/2","manifest":"\#(manifest)","note":"\#(LockFirstLine.note)"}"# + "\n").utf8)
    }

    /// The kept and the fresh listing agree before and after each change, and the kept one is
    /// kept (not listed again) while nothing changed.
    @Test func aKeptListingIsTheFreshOneAndSeesEachChange() throws {
        let folder = try ScratchFolder.path("left-lock-kept")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.lockLine("../n.yaml").write(to: URL(fileURLWithPath: folder + "/n-lock.txt"))
        try Data("just notes, long enough to be opened\n".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        try FileManager.default.createDirectory(atPath: folder + "/.locks", withIntermediateDirectories: false)
        for name in ["n-lock.txt", "notes.txt", ".locks", ""] { Self.age(folder + "/" + name) }

        func agree(_ why: String) -> String {
            let kept = Self.text(LeftLockFiles.keptListing(of: folder)), fresh = Self.text(LeftLockFiles.listing(of: folder))
            #expect(kept == fresh, "\(why): kept \(kept), fresh \(fresh)")
            return kept
        }
        let first = agree("first")
        #expect(first.contains("n-lock.txt=") && first.contains("/.locks") && !first.contains("notes.txt"), "\(first)")
        #expect(LeftLockFiles.isKept(folder), "a settled folder's listing is kept")
        #expect(agree("again") == first)

        // notes.txt rewritten in place as a lock (the same inode; the folder's times do not move).
        var before = stat(), after = stat()
        stat(folder, &before)
        let handle = try #require(FileHandle(forWritingAtPath: folder + "/notes.txt"))
        try handle.write(contentsOf: Self.lockLine("../m.yaml"))
        try handle.close()
        Self.age(folder + "/notes.txt")
        stat(folder, &after)
        #expect(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec)
        let rewritten = agree("a file rewritten in place")
        #expect(rewritten.contains("notes.txt="), "\(rewritten)")

        // A lock removed, a dot folder added (the folder's times move).
        try FileManager.default.removeItem(atPath: folder + "/n-lock.txt")
        try FileManager.default.createDirectory(atPath: folder + "/.cache", withIntermediateDirectories: false)
        let changed = agree("a lock removed, a folder added")
        #expect(!changed.contains("n-lock.txt") && changed.contains("/.cache"), "\(changed)")
    }

    /// A folder modified just now is listed each time, never kept (a change within the same clock
    /// tick would leave its times as they were).
    @Test func aFolderModifiedJustNowIsNotKept() throws {
        let folder = try ScratchFolder.path("left-lock-racy")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.lockLine("../n.yaml").write(to: URL(fileURLWithPath: folder + "/n.lock"))
        #expect(Self.text(LeftLockFiles.keptListing(of: folder)) == Self.text(LeftLockFiles.listing(of: folder)))
        #expect(!LeftLockFiles.isKept(folder))
    }

    /// Issue #15, attack 53b's 4: a folder whose times move (`/tmp`, a busy parent folder) was
    /// listed again with each of its files opened again, three times a second in serve. Now only
    /// the files whose identity, size or times changed are opened; the kept listing stays the
    /// fresh one through the same edits (a file added, removed, replaced; a lock copied in; a
    /// file rewritten in place into a lock; a dot folder renamed; the folder moved away and a
    /// copy put at its path).
    @Test func aChangedFolderOpensOnlyItsChangedFiles() throws {
        let folder = try ScratchFolder.path("left-lock-changed")
        defer { try? FileManager.default.removeItem(atPath: folder); try? FileManager.default.removeItem(atPath: folder + ".old") }
        let plain = Data("plain text, long enough to be opened for a lock's first line\n".utf8)
        for index in 0..<150 { try plain.write(to: URL(fileURLWithPath: folder + "/f\(index).txt")) }
        try Self.lockLine("../n.yaml").write(to: URL(fileURLWithPath: folder + "/n.lock"))
        try FileManager.default.createDirectory(atPath: folder + "/.cache", withIntermediateDirectories: false)
        // The files' change times settle (two seconds): only then is what was read of them kept.
        Thread.sleep(forTimeInterval: 2.1)

        func agree(_ why: String) -> String {
            let kept = Self.text(LeftLockFiles.keptListing(of: folder)), fresh = Self.text(LeftLockFiles.listing(of: folder))
            #expect(kept == fresh, "\(why): kept \(kept), fresh \(fresh)")
            return kept
        }
        let first = agree("first")
        #expect(first.contains("/n.lock=") && first.contains("/.cache"), "\(first)")
        #expect(LeftLockFiles.filesRead(in: folder) == 151, "the first listing reads each file: \(LeftLockFiles.filesRead(in: folder))")

        // A file added: the folder's times move; only the new file is opened.
        try plain.write(to: URL(fileURLWithPath: folder + "/added.txt"))
        _ = agree("a file added")
        #expect(LeftLockFiles.filesRead(in: folder) == 152, "only the added file is opened: \(LeftLockFiles.filesRead(in: folder) - 151) read")

        // A file replaced by a lock (a new inode), one removed, a lock copied in, a dot folder renamed.
        try Self.lockLine("../m.yaml").write(to: URL(fileURLWithPath: folder + "/f1.txt.new"))
        #expect(rename(folder + "/f1.txt.new", folder + "/f1.txt") == 0)
        try FileManager.default.removeItem(atPath: folder + "/f2.txt")
        try FileManager.default.copyItem(atPath: folder + "/n.lock", toPath: folder + "/copy.lock")
        #expect(rename(folder + "/.cache", folder + "/.cache2") == 0)
        let edited = agree("replaced, removed, copied in, renamed")
        #expect(edited.contains("/f1.txt=") && edited.contains("/copy.lock=") && edited.hasSuffix("/.cache2"), "\(edited)")
        // (the file added just before is read again unless it had settled when first read)
        #expect((154...155).contains(LeftLockFiles.filesRead(in: folder)), "only the replaced, copied and just added files are opened: \(LeftLockFiles.filesRead(in: folder) - 152) read")

        // A file rewritten in place into a lock (same inode; the folder's times do not move).
        let handle = try #require(FileHandle(forWritingAtPath: folder + "/f3.txt"))
        try handle.write(contentsOf: Self.lockLine("../k.yaml"))
        try handle.close()
        #expect(agree("rewritten in place").contains("/f3.txt="))

        // The folder moved away and a copy put at its path (new inodes, the times copied).
        #expect(rename(folder, folder + ".old") == 0)
        let copy = Process()
        copy.executableURL = URL(fileURLWithPath: "/bin/cp")
        copy.arguments = ["-a", folder + ".old", folder]
        try copy.run()
        copy.waitUntilExit()
        #expect(agree("a copy at its path") == agree("again"))
    }
}
