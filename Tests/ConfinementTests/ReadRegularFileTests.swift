import Foundation
import Testing
import TestSupport
@testable import Confinement

/// A file the user named by path (the root manifest): links are followed, but folders, FIFOs
/// and oversized files are refused without blocking.
@Suite(.ownThreads) struct ReadRegularFileTests {
    @Test func readsAFileAndFollowsALinkTheUserNamed() throws {
        let box = try Sandbox()
        #expect(try ConfinedFolder.readRegularFile(atPath: box.secret) == Data("secret".utf8))
        try box.link("named.txt", to: box.secret)
        #expect(try ConfinedFolder.readRegularFile(atPath: box.bucket + "/named.txt") == Data("secret".utf8))
    }

    @Test func refusesFoldersFifosMissingAndLargeFiles() throws {
        let box = try Sandbox()
        #expect(throws: ConfinementError.notRegularFile(box.bucket)) { try ConfinedFolder.readRegularFile(atPath: box.bucket) }
        let fifo = box.top + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: ConfinementError.notRegularFile(fifo)) { try ConfinedFolder.readRegularFile(atPath: fifo) }
        #expect(throws: ConfinementError.notFound(box.top + "/nope")) { try ConfinedFolder.readRegularFile(atPath: box.top + "/nope") }
        #expect(throws: ConfinementError.self) { try ConfinedFolder.readRegularFile(atPath: box.secret, maxBytes: 3) }
    }
}

/// Issue #10, round 11: a file over the reader's limit is refused from `fstat`, unread, with
/// its size (the 600 MB source was read whole before the 20 MB limit refused it).
@Suite(.ownThreads) struct BoundedReadTests {
    @Test func aFileOverTheLimitIsRefusedWithItsSize() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bounded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("big.bin").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(truncate(path, 600 << 20) == 0)
        #expect(throws: ConfinementError.tooLarge(path, size: 600 << 20, limit: 1000)) {
            try ConfinedFolder.readRegularFile(atPath: path, maxBytes: 1000)
        }
        let key = try ObjectKey("big.bin")
        #expect(throws: ConfinementError.tooLarge("big.bin", size: 600 << 20, limit: 1000)) {
            try ConfinedFolder(path: folder.path).read(key, maxBytes: 1000)
        }
        // At the limit exactly: read whole.
        #expect(truncate(path, 1000) == 0)
        #expect(try ConfinedFolder.readRegularFile(atPath: path, maxBytes: 1000).count == 1000)
    }
}
