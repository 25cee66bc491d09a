import Foundation
import Testing
import TestSupport
@testable import Confinement

/// A fresh folder with a bucket inside it and a secret beside the bucket.
struct Sandbox {
    let top: String
    var bucket: String { top + "/bucket" }
    var secret: String { top + "/secret.txt" }

    init() throws {
        top = FileManager.default.temporaryDirectory.appendingPathComponent("derive-confine-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: top + "/bucket/sub", withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: top + "/secret.txt"))
        try Data("inside".utf8).write(to: URL(fileURLWithPath: top + "/bucket/sub/a.txt"))
    }

    func link(_ name: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: bucket + "/" + name, withDestinationPath: target)
    }
}

@Suite(.ownThreads) struct ConfinedFolderTests {
    @Test func readsFilesInside() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        #expect(try folder.read(try ObjectKey("sub/a.txt")) == Data("inside".utf8))
        #expect(folder.status(try ObjectKey("sub/a.txt"))?.size == 6)
        #expect(folder.kind(try ObjectKey("sub")) == .folder)
    }

    /// The batch answers exactly what `status` answers one key at a time, links included.
    @Test func statusesAgreeWithStatusKeyByKey() throws {
        let box = try Sandbox()
        try FileManager.default.createDirectory(atPath: box.top + "/outside", withIntermediateDirectories: true)
        try Data("out".utf8).write(to: URL(fileURLWithPath: box.top + "/outside/b.txt"))
        try box.link("linked", to: box.top + "/outside")
        try box.link("secret.txt", to: box.secret)
        try Data("bb".utf8).write(to: URL(fileURLWithPath: box.bucket + "/sub/b.txt"))
        let folder = try ConfinedFolder(path: box.bucket)
        let keys = try ["sub/a.txt", "linked/b.txt", "sub/b.txt", "secret.txt", "sub/missing.txt", "sub", "linked/b.txt", "nope/x.txt"].map { try ObjectKey($0) }
        let batch = folder.statuses(keys)
        #expect(batch == keys.map { folder.status($0) })
        #expect(batch.map { $0?.size } == [6, nil, 2, nil, nil, nil, nil, nil])
    }

    /// `statuses` walks a folder once per run of keys in it and keeps only that run's
    /// descriptor: keys in runs, alternating, nested, at the top, through a missing folder and
    /// through a link must answer as `status` does key by key, and no folder below the bucket
    /// may stay open afterwards (issue 15).
    @Test func statusesInRunsAndAlternationsAgreeAndCloseEveryFolder() throws {
        let box = try Sandbox()
        let manager = FileManager.default
        for folder in ["sub/deep", "other", "other/deep"] { try manager.createDirectory(atPath: box.bucket + "/" + folder, withIntermediateDirectories: true) }
        for file in ["top.txt", "sub/deep/x.txt", "other/o.txt", "other/deep/y.txt"] {
            try Data(file.utf8).write(to: URL(fileURLWithPath: box.bucket + "/" + file))
        }
        try box.link("linked", to: box.top + "/bucket/other")
        let folder = try ConfinedFolder(path: box.bucket)
        let names = ["sub/a.txt", "sub/a.txt", "sub/missing.txt", "other/o.txt", "sub/a.txt", "top.txt", "other/o.txt", "other/deep/y.txt",
                     "other/o.txt", "sub/deep/x.txt", "sub/deep/x.txt", "nope/x.txt", "nope/y.txt", "linked/o.txt", "linked/o.txt",
                     "sub/a.txt", "top.txt", "top.txt", "other", "sub/deep", "other/deep/y.txt"]
        let keys = try names.map { try ObjectKey($0) }
        let batch = folder.statuses(keys)
        #expect(batch == keys.map { folder.status($0) })
        #expect(batch.map { $0 != nil } == names.map { ["sub/a.txt", "other/o.txt", "top.txt", "other/deep/y.txt", "sub/deep/x.txt"].contains($0) })
        #expect(folder.statuses([]) == [])
        // Every descriptor `statuses` opened is closed: none of this process leads below the bucket.
        let below = (realpath(box.bucket, nil).map { resolved in defer { free(resolved) }; return String(cString: resolved) } ?? box.bucket) + "/"
        let open = try manager.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { try? manager.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
        #expect(!open.contains { $0.hasPrefix(below) }, "\(open.filter { $0.hasPrefix(below) })")
    }

    @Test func neverFollowsALinkOutOfTheFolder() throws {
        let box = try Sandbox()
        try box.link("leak.txt", to: box.secret)
        try box.link("up", to: box.top)
        try box.link("inner.txt", to: "sub/a.txt")  // even a link that stays inside is refused
        let folder = try ConfinedFolder(path: box.bucket)
        #expect(throws: ConfinementError.symbolicLink("leak.txt")) { try folder.read(try ObjectKey("leak.txt")) }
        #expect(throws: ConfinementError.symbolicLink("up")) { try folder.read(try ObjectKey("up/secret.txt")) }
        #expect(throws: ConfinementError.symbolicLink("inner.txt")) { try folder.read(try ObjectKey("inner.txt")) }
        #expect(folder.status(try ObjectKey("leak.txt")) == nil)
        #expect(folder.kind(try ObjectKey("leak.txt")) == .symbolicLink)
    }

    @Test func writesNeverLeaveThroughALinkedFolder() throws {
        let box = try Sandbox()
        try box.link("out", to: box.top)
        let folder = try ConfinedFolder(path: box.bucket)
        #expect(throws: ConfinementError.symbolicLink("out")) { try folder.writeAtomically(Data("x".utf8), to: try ObjectKey("out/escaped.txt")) }
        #expect(!FileManager.default.fileExists(atPath: box.top + "/escaped.txt"))
    }

    @Test func writeReplacesALinkRatherThanWritingThroughIt() throws {
        let box = try Sandbox()
        try box.link("target.txt", to: box.secret)
        let folder = try ConfinedFolder(path: box.bucket)
        try folder.writeAtomically(Data("new".utf8), to: try ObjectKey("target.txt"))
        #expect(try String(contentsOfFile: box.secret, encoding: .utf8) == "secret")
        #expect(folder.kind(try ObjectKey("target.txt")) == .file)
    }

    @Test func writeCreatesFoldersAndReportsThem() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        let created = try folder.writeAtomically(Data("x".utf8), to: try ObjectKey("n1/n2/f.txt"))
        #expect(created == ["n1", "n1/n2"])
        #expect(try folder.read(try ObjectKey("n1/n2/f.txt")) == Data("x".utf8))
        let again = try folder.writeAtomically(Data("y".utf8), to: try ObjectKey("n1/n2/f.txt"))
        #expect(again.isEmpty)
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.bucket + "/n1/n2") == ["f.txt"])
    }

    @Test func aKeyUnderAFileIsNotAFolder() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        #expect(throws: ConfinementError.notAFolder("sub/a.txt/x")) { try folder.writeAtomically(Data(), to: try ObjectKey("sub/a.txt/x")) }
        #expect(throws: ConfinementError.notRegularFile("sub")) { try folder.writeAtomically(Data(), to: try ObjectKey("sub")) }
        #expect(throws: ConfinementError.notRegularFile("sub")) { try folder.read(try ObjectKey("sub")) }
        #expect(throws: ConfinementError.notFound("nope.txt")) { try folder.read(try ObjectKey("nope.txt")) }
    }

    @Test func removalChecksTheFileAndNeverRecurses() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        let key = try ObjectKey("sub/a.txt")
        #expect(try folder.removeFile(key, if: { _ in false }) == false)
        #expect(folder.status(key) != nil)
        #expect(!folder.removeEmptyFolder(try ObjectKey("sub")))  // not empty
        #expect(try folder.removeFile(key))
        #expect(folder.status(key) == nil)
        #expect(folder.removeEmptyFolder(try ObjectKey("sub")))
        try box.link("leak.txt", to: box.secret)
        #expect(throws: ConfinementError.symbolicLink("leak.txt")) { try folder.removeFile(try ObjectKey("leak.txt")) }
        #expect(FileManager.default.fileExists(atPath: box.secret))
    }

    @Test func streamedTemporaryFilesCommitOrVanish() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        let file = try folder.createTemporary(for: try ObjectKey("up.bin"))
        try file.write(Data("part1".utf8))
        try file.write(Data("part2".utf8))
        file.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.bucket).sorted() == ["sub"])
        let second = try folder.createTemporary(for: try ObjectKey("up.bin"))
        try second.write(Data("whole".utf8))
        try second.commit()
        #expect(try folder.read(try ObjectKey("up.bin")) == Data("whole".utf8))
    }

    @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        let dead = ".x.jpg.999999999.7\(ConfinedFolder.temporaryMarker)"
        let alive = ".y.jpg.\(getpid()).7\(ConfinedFolder.temporaryMarker)"
        try Data().write(to: URL(fileURLWithPath: box.bucket + "/sub/" + dead))
        try Data().write(to: URL(fileURLWithPath: box.bucket + "/sub/" + alive))
        // Not an output's name: a user's file that only looks like a temporary (hostile tester B.4).
        let foreign = ".notes.txt.999999999.7\(ConfinedFolder.temporaryMarker)"
        try Data().write(to: URL(fileURLWithPath: box.bucket + "/sub/" + foreign))
        // A dead writer's temporary of an output's name that the check refuses (a user's file moved there).
        let refused = ".z.jpg.999999999.7\(ConfinedFolder.temporaryMarker)"
        try Data("user".utf8).write(to: URL(fileURLWithPath: box.bucket + "/sub/" + refused))
        var asked: [String] = []
        #expect(folder.removeStaleTemporaries(in: try ObjectKey("sub"), named: ["x.jpg", "y.jpg", "z.jpg"],
                                              if: { name, _ in asked.append(name); return name == "x.jpg" }) == [dead])
        #expect(asked.sorted() == ["x.jpg", "z.jpg"])
        #expect(FileManager.default.fileExists(atPath: box.bucket + "/sub/" + alive))
        #expect(FileManager.default.fileExists(atPath: box.bucket + "/sub/" + foreign))
        #expect(FileManager.default.fileExists(atPath: box.bucket + "/sub/" + refused))
    }

    @Test func aFifoDoesNotBlockAReader() throws {
        let box = try Sandbox()
        #expect(mkfifo(box.bucket + "/pipe", 0o644) == 0)
        let folder = try ConfinedFolder(path: box.bucket)
        #expect(throws: ConfinementError.notRegularFile("pipe")) { try folder.read(try ObjectKey("pipe")) }
    }
}

/// Serve's writes keep links: a link at the key is refused when the file is created and at commit.
@Suite(.ownThreads) struct KeepingLinksTests {
    @Test func aLinkAtTheKeyIsNeverReplaced() throws {
        let box = try Sandbox()
        try box.link("target.txt", to: box.secret)
        let folder = try ConfinedFolder(path: box.bucket)
        #expect(throws: ConfinementError.symbolicLink("target.txt")) { try folder.createTemporary(for: try ObjectKey("target.txt"), keepingLinks: true) }
        let late = try folder.createTemporary(for: try ObjectKey("late.txt"), keepingLinks: true)
        try late.write(Data("x".utf8))
        try box.link("late.txt", to: box.secret)
        #expect(throws: ConfinementError.symbolicLink("late.txt")) { try late.commit() }
        #expect(try folder.kind(ObjectKey("target.txt")) == .symbolicLink && folder.kind(ObjectKey("late.txt")) == .symbolicLink)
        #expect(try String(contentsOfFile: box.secret, encoding: .utf8) == "secret")
    }
}

/// Attack 14's R1: a rebuild's move is its own ownership check. The file displaced by the move
/// (an atomic exchange) is what the check reads, so a user's file put there after the caller's
/// last look goes back to its name with its bytes.
@Suite(.ownThreads) struct ReplacingOnlyTests {
    func names(_ folder: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: folder).sorted() }

    @Test func aFileTheCheckRefusesIsMovedBackWithItsBytes() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        var looked: Data?
        #expect(throws: ConfinementError.alreadyExists("sub/a.txt")) {
            try folder.writeAtomically(Data("derive".utf8), to: try ObjectKey("sub/a.txt"), replacingOnly: { fd in
                var buffer = [UInt8](repeating: 0, count: 64)
                let count = read(fd, &buffer, 64)
                looked = Data(buffer[0..<max(0, count)])
                return false
            })
        }
        #expect(looked == Data("inside".utf8), "the check reads the file the move displaced")
        #expect(try folder.read(try ObjectKey("sub/a.txt")) == Data("inside".utf8))
        #expect(try names(box.bucket + "/sub") == ["a.txt"], "no temporary file is left")
    }

    @Test func aFileTheCheckApprovesIsReplaced() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        try folder.writeAtomically(Data("derive".utf8), to: try ObjectKey("sub/a.txt"), replacingOnly: { _ in true })
        #expect(try folder.read(try ObjectKey("sub/a.txt")) == Data("derive".utf8))
        #expect(try names(box.bucket + "/sub") == ["a.txt"])
    }

    @Test func nothingThereIsACreateAndAFolderIsKept() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        var asked = false
        try folder.writeAtomically(Data("new".utf8), to: try ObjectKey("sub/new.txt"), replacingOnly: { _ in asked = true; return true })
        #expect(!asked)
        #expect(try folder.read(try ObjectKey("sub/new.txt")) == Data("new".utf8))
        // A folder (or a link) displaced by the move is never approved: it goes back.
        try FileManager.default.createDirectory(atPath: box.bucket + "/sub/dir", withIntermediateDirectories: true)
        try Data("kept".utf8).write(to: URL(fileURLWithPath: box.bucket + "/sub/dir/inner.txt"))
        try box.link("sub/link.txt", to: box.secret)
        #expect(throws: ConfinementError.alreadyExists("sub/dir")) {
            try folder.writeAtomically(Data("x".utf8), to: try ObjectKey("sub/dir"), replacingOnly: { _ in true })
        }
        #expect(throws: ConfinementError.alreadyExists("sub/link.txt")) {
            try folder.writeAtomically(Data("x".utf8), to: try ObjectKey("sub/link.txt"), replacingOnly: { _ in true })
        }
        #expect(try String(contentsOfFile: box.bucket + "/sub/dir/inner.txt", encoding: .utf8) == "kept")
        #expect(folder.kind(try ObjectKey("sub/link.txt")) == .symbolicLink)
        #expect(try names(box.bucket + "/sub") == ["a.txt", "dir", "link.txt", "new.txt"])
    }

    /// The name changes again while the check reads: what the exchange back brings out is not the
    /// new file, so it is kept under a name of its own, never removed.
    @Test func aFileSwappedInDuringTheCheckIsKeptAside() throws {
        let box = try Sandbox()
        let folder = try ConfinedFolder(path: box.bucket)
        try Data("second user file".utf8).write(to: URL(fileURLWithPath: box.bucket + "/sub/other.txt"))
        #expect(throws: (any Error).self) {
            try folder.writeAtomically(Data("derive".utf8), to: try ObjectKey("sub/a.txt"), replacingOnly: { _ in
                // Another writer renames its file over the name just filled.
                rename(box.bucket + "/sub/other.txt", box.bucket + "/sub/a.txt")
                return false
            })
        }
        let left = try names(box.bucket + "/sub")
        var contents: [String] = []
        for name in left { contents.append(try String(contentsOfFile: box.bucket + "/sub/" + name, encoding: .utf8)) }
        #expect(contents.contains("inside"), "\(left) \(contents)")
        #expect(contents.contains("second user file"), "\(left) \(contents)")
        #expect(!left.contains { $0.hasSuffix(".derive-tmp") }, "\(left)")
    }
}
