import Foundation
import Testing
@testable import Confinement

/// A file the user named by path (the root manifest): links are followed, but folders, FIFOs
/// and oversized files are refused without blocking.
@Suite struct ReadRegularFileTests {
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
