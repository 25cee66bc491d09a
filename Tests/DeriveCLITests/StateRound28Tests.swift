import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Planner
import Testing
import TestSupport

/// Attack round 28 (attack 27's findings 1, 2 and 6): the build state's database as SQLite leaves
/// it. Another application's database (its `application_id` set, not Derive's "DrSt") is never
/// taken over, written, moved or deleted; a kill during the first commit of a new state (the
/// journal of a database being created) is recovered by the next command; `plan` and `check`
/// run while a build writes the state wait for it rather than calling it broken.
@Suite(.ownThreads, .serialized) struct StateRound28Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(state: String?) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_40
            to: out/t/{name}.jpg

        """ + (state.map { "state: \($0)\n" } ?? "")
    }

    func bytes(_ site: Site, _ path: String) -> Data? { FileManager.default.contents(atPath: site.url(path).path) }

    /// An SQLite database with `application_id` and `user_version` set and nothing else, as
    /// another application makes one.
    static func database(applicationID: Int32, userVersion: Int32 = 0) throws -> Data {
        let url = try CLI.temporaryFolder().appendingPathComponent("made.sqlite")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let queue = try DatabaseQueue(path: url.path, configuration: .patientTest)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.execute(sql: "PRAGMA user_version = \(userVersion)")
        }
        try queue.close()
        return try Data(contentsOf: url)
    }

    // MARK: 1: another application's database at state.sqlite

    @Test(arguments: ["mydata", "."])
    func anotherApplicationsDatabaseIsRefusedNeverWrittenMovedNorDeleted(state: String) throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(state: state))
        defer { site.remove() }
        let path = state == "." ? "state.sqlite" : "mydata/state.sqlite"
        try FileManager.default.createDirectory(at: site.url(path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let theirs = try Self.database(applicationID: 1_234_567, userVersion: 3)
        try theirs.write(to: site.url(path))
        for command in ["build", "plan", "check", "clean", "build"] {
            let result = try site.run([command])
            #expect(result.status != 0, "\(command): \(said(result))")
            #expect(result.stderr.contains(path) && result.stderr.contains("another application's SQLite database (application_id 1234567"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("set 'state:'"), "\(command): \(result.stderr)")
            #expect(bytes(site, path) == theirs, "\(command) changed their database")
        }
        #expect(!site.exists("out/t/a.jpg"))
        let folder = site.url(path).deletingLastPathComponent().path
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(!names.contains { $0.hasPrefix("state.sqlite.") || $0.hasPrefix("state.sqlite-") }, "\(names)")
    }

    @Test func derivesOwnAndAnUnstampedEmptyDatabaseStillBuild() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(state: "mydata"))
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("mydata"), withIntermediateDirectories: true)
        // application_id 0: a database nothing claims (an older Derive's state had that too).
        try Self.database(applicationID: 0).write(to: site.url("mydata/state.sqlite"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let stamp = try DatabaseQueue(path: site.url("mydata/state.sqlite").path, configuration: .patientTest).read { db in try Int32.fetchOne(db, sql: "PRAGMA application_id") }
        #expect(stamp == 0x4472_5374)
        let again = try site.run(["build"])
        #expect(again.status == 0 && String(decoding: again.stdout, as: UTF8.self).contains("up to date"), "\(said(again))")
    }

    // MARK: 2: a kill during the first commit of a new state

    /// The first commit of a new state, as `strace` shows it (SQLite 3, rollback journal): the
    /// empty database Derive made (0600), then the journal opened, its header written with the
    /// magic zeroed (nothing recorded: the database had 0 pages), synced, the magic written,
    /// synced, page 1 (Derive's stamp) written to the database, synced, and the journal unlinked.
    /// `magic`: the header's first 8 bytes are the magic (else zeros); nil: the journal is empty.
    static func journal(magic: Bool?, originalPages: UInt32 = 0, record: Data? = nil) -> Data {
        guard let magic else { return Data() }
        func be(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        var header: [UInt8] = magic ? [0xD9, 0xD5, 0x05, 0xF9, 0x20, 0xA1, 0x63, 0xD7] : Array(repeating: 0, count: 8)
        header += be(record == nil ? 0 : 1) + be(0x6B8B_4567) + be(originalPages) + be(512) + be(4096)
        var data = Data(header + Array(repeating: 0, count: 512 - header.count))
        if let record {
            data += Data(be(1)) + record.prefix(4096) + Data(be(0x6B8B_4567))
        }
        return data
    }

    /// Each kill point of the first commit: the database's bytes (nil: empty) and the journal's.
    static let killPoints: [(name: String, stamped: Bool, journal: Data)] = [
        ("journal opened", false, journal(magic: nil)),
        ("journal header written", false, journal(magic: false)),
        ("journal synced, magic written", false, journal(magic: true)),
        ("page 1 written, before the journal's unlink", true, journal(magic: true)),
    ]

    @Test(arguments: [nil, "."] as [String?])
    func aKillDuringTheFirstCommitIsRecoveredByTheNextCommand(state: String?) throws {
        let stamped = try Self.database(applicationID: 0x4472_5374)
        for point in Self.killPoints {
            let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(state: state))
            defer { site.remove() }
            let folder = state == nil ? ".derive/derive" : ""
            let path = folder.isEmpty ? "state.sqlite" : folder + "/state.sqlite"
            if !folder.isEmpty { try FileManager.default.createDirectory(at: site.url(folder), withIntermediateDirectories: true) }
            try (point.stamped ? stamped : Data()).write(to: site.url(path))
            try point.journal.write(to: site.url(path + "-journal"))
            chmod(site.url(path).path, 0o600); chmod(site.url(path + "-journal").path, 0o600)
            for command in ["plan", "check"] {
                let result = try site.run([command])
                #expect(!result.stderr.contains("is not a rollback journal") && !result.stderr.contains("cannot be shown to be Derive's"),
                        "\(point.name): \(command): \(said(result))")
            }
            let build = try site.run(["build"])
            #expect(build.status == 0, "\(point.name): \(said(build))")
            #expect(site.exists("out/t/a.jpg"), "\(point.name)")
            #expect(!site.exists(path + "-journal"), "\(point.name)")
            let check = try site.run(["check"])
            #expect(check.status == 0, "\(point.name): \(said(check))")
            let clean = try site.run(["clean"])
            #expect(clean.status == 0 && !site.exists("out/t/a.jpg"), "\(point.name): \(said(clean))")
        }
    }

    @Test func anotherDatabasesJournalOfItsFirstCommitIsStillRefused() throws {
        let theirs = try Self.database(applicationID: 1_234_567)
        let unstamped = try Self.database(applicationID: 0)
        let cases: [(name: String, database: Data, journal: Data)] = [
            // Another application's first commit: its page 1 written, the journal not yet unlinked.
            ("another application's page 1", theirs, Self.journal(magic: true)),
            // A database nothing stamps: not shown to be Derive's.
            ("an unstamped page 1", unstamped, Self.journal(magic: true)),
            // A journal recording a page of a database that had pages: not of a database being created.
            ("a journal of another database's pages", Data(), Self.journal(magic: true, originalPages: 1, record: theirs)),
            // Pages recorded although the database had none: not a journal SQLite writes for a new one.
            ("a record in a journal of an empty database", Data(), Self.journal(magic: true, originalPages: 0, record: theirs)),
        ]
        for item in cases {
            let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(state: "."))
            defer { site.remove() }
            try item.database.write(to: site.url("state.sqlite"))
            try item.journal.write(to: site.url("state.sqlite-journal"))
            for command in ["build", "check", "clean"] {
                let result = try site.run([command])
                #expect(result.status != 0, "\(item.name): \(command): \(said(result))")
                #expect(result.stderr.contains("state.sqlite"), "\(item.name): \(command): \(result.stderr)")
                #expect(bytes(site, "state.sqlite") == item.database && bytes(site, "state.sqlite-journal") == item.journal, "\(item.name): \(command)")
            }
        }
    }

    // MARK: 6: plan and check while a build writes the state

    @Test func planAndCheckWaitForABuildWritingTheState() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest(state: nil))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        // Restyled: plan and check must read the state (the witness vouches for nothing).
        try site.write(Self.manifest(state: nil).replacingOccurrences(of: "w_40", with: "w_41"))
        for command in ["plan", "check"] {
            // SQLite's EXCLUSIVE lock, as a build holds it while committing (the PENDING byte and
            // the SHARED range, rollback mode), held through another open file for 1.5 s.
            let fd = open(site.url(".derive/derive/state.sqlite").path, O_RDWR | O_CLOEXEC)
            try #require(fd >= 0)
            var lock = flock()
            lock.l_type = Int16(F_WRLCK)
            lock.l_whence = Int16(SEEK_SET)
            lock.l_start = 0x4000_0000
            lock.l_len = 512
            let F_OFD_SETLK: Int32 = 37
            try #require(fcntl(fd, F_OFD_SETLK, &lock) == 0)
            let release = Thread { usleep(1_500_000); close(fd) }
            release.start()
            let result = try site.run([command])
            #expect(!result.stderr.contains("cannot be read without writing") && !result.stderr.contains("database is locked"), "\(command): \(result.stderr)")
            // Against the state, not the lock alone: the output is replaced, not created.
            #expect(said(result).contains(command == "plan" ? "0 to create, 1 to rebuild" : "out/t/a.jpg: rebuild: process of t"), "\(command): \(said(result))")
            usleep(1_600_000)
        }
    }
}
