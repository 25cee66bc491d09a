import Access
import Confinement
import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 18's K1: `derive serve` stopped while it created its object metadata database (Ctrl-C
/// right after starting it) left an empty `serve-metadata.sqlite` beside a 512-byte journal
/// whose header is zero, and every later serve refused to start ("is not stamped derive serve's
/// and has a rollback journal"). SQLite rolls back only a journal that starts with a non-zero
/// byte into a database with pages; anything else is an interrupted creation, opened as new.
@Suite(.ownThreads) struct ServeInterruptedStartTests {
    static func database() throws -> (folder: URL, path: String) {
        let folder = try AttackTwelveTests.scratch()
        let state = folder.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        return (folder, state.appendingPathComponent(StateFiles.objectMetadata).path)
    }

    @Test func anEmptyDatabaseBesideAZeroedJournalIsOpenedAsNew() throws {
        let (folder, path) = try Self.database()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(FileManager.default.createFile(atPath: path + "-journal", contents: Data(count: 512)))
        try AttackTwelveTests.makeDatabase(path)
        let store = try ObjectMetadataStore(path: path)
        #expect(store.read(bucket: "b", key: try ObjectKey("k"), identity: ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 4))?.etag == "\"E\"")
    }

    /// What the refusal is for stays: a database with pages that is not stamped serve's, with a
    /// journal SQLite would roll back into it, is never opened.
    @Test func anUnstampedDatabaseWithAHotJournalIsStillRefused() throws {
        let (folder, path) = try Self.database()
        defer { try? FileManager.default.removeItem(at: folder) }
        var page = Data("SQLite format 3\0".utf8)
        page += Data(count: 4096 - page.count)
        page[16] = 0x10; page[17] = 0x00   // page size 4096
        #expect(FileManager.default.createFile(atPath: path, contents: page))
        let journal = Data([0xD9, 0xD5, 0x05, 0xF9, 0x20, 0xA1, 0x63, 0xD7]) + Data(count: 504)
        #expect(FileManager.default.createFile(atPath: path + "-journal", contents: journal))
        do {
            _ = try ObjectMetadataStore(path: path)
            Issue.record("opened an unstamped database with a hot journal")
        } catch {
            #expect("\(error)".contains("rollback journal"), "\(error)")
        }
        #expect(FileManager.default.contents(atPath: path) == page)
    }
}
