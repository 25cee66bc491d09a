#if canImport(Glibc)
import Glibc
#endif

/// What an SQLite database file and its rollback journal say about themselves, read from their
/// bytes before SQLite opens anything (SQLite replays a hot journal, and deletes or overwrites
/// other side files, as it opens or writes a database). One definition for the build's state
/// (`StateFolderTrust`) and serve's metadata database (`MetadataDatabaseOwnership`).
/// File formats: https://www.sqlite.org/fileformat.html
public enum SQLiteFiles {
    /// The 100-byte header of a database: its page size and `PRAGMA application_id`.
    public struct Header: Sendable, Equatable {
        public var pageSize: Int
        public var applicationID: Int32
        public var userVersion: Int32
    }

    static func bigEndian32(_ bytes: ArraySlice<UInt8>) -> UInt32 { bytes.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }

    /// The header in `bytes` (a database's first 100 bytes, or a journal's image of its page 1),
    /// nil when they are not an SQLite database's.
    public static func header(_ bytes: [UInt8]) -> Header? {
        guard bytes.count >= 100, bytes.starts(with: Array("SQLite format 3\0".utf8)) else { return nil }
        let raw = Int(bytes[16]) << 8 | Int(bytes[17])
        let pageSize = raw == 1 ? 65536 : raw
        guard pageSize >= 512, pageSize & (pageSize - 1) == 0 else { return nil }
        return Header(pageSize: pageSize, applicationID: Int32(bitPattern: bigEndian32(bytes[68...])),
                      userVersion: Int32(bitPattern: bigEndian32(bytes[60...])))
    }

    /// The header of the database open at `fd`; nil when it is empty or not an SQLite database.
    public static func header(ofDatabase fd: Int32) -> Header? {
        var bytes = [UInt8](repeating: 0, count: 100)
        guard preadFully(fd, &bytes, at: 0) == 100 else { return nil }
        return header(bytes)
    }

    /// Whether the rollback journal open at `fd` starts with a non-zero byte, as SQLite requires
    /// of a journal it rolls back (a hot one); one that cannot be read counts as hot.
    public static func isHot(journal fd: Int32) -> Bool {
        var first: UInt8 = 0
        return pread(fd, &first, 1, 0) != 1 || first != 0
    }

    /// Whether some connection holds a lock SQLite takes on a database (`start`, `length` in its
    /// lock bytes: `reservedByte` for a writer, `sharedRange` for a reader) on the file open at
    /// `fd`. An open-file-description probe (`F_OFD_GETLK`) sees this process's own record locks
    /// too, which a plain `F_GETLK` would not.
    public static func lockHeld(on fd: Int32, start: Int, length: Int) -> Bool {
        var probe = flock()
        probe.l_type = Int16(F_WRLCK)
        probe.l_whence = Int16(SEEK_SET)
        probe.l_start = off_t(start)
        probe.l_len = off_t(length)
        probe.l_pid = 0
        let F_OFD_GETLK: Int32 = 36
        guard fcntl(fd, F_OFD_GETLK, &probe) == 0 else { return false }
        return probe.l_type != Int16(F_UNLCK)
    }

    /// SQLite's RESERVED lock byte (held by a connection writing the database: its journal is
    /// live, not hot) and its SHARED range (held by every reader).
    public static let reservedByte = (start: 0x4000_0001, length: 1)
    public static let sharedRange = (start: 0x4000_0002, length: 510)

    /// What a rollback journal's first header says (the fields SQLite reads to roll it back).
    public struct JournalHeader: Sendable, Equatable {
        /// The first 8 bytes are the journal's magic (else zero: not yet synced, or finished).
        public var hasMagic: Bool
        /// Pages the database had when the transaction began.
        public var originalPages: Int
        public var sectorSize: Int
        public var pageSize: Int
    }

    static let journalMagic: [UInt8] = [0xD9, 0xD5, 0x05, 0xF9, 0x20, 0xA1, 0x63, 0xD7]

    /// The header of the journal open at `fd`; nil when it is not one SQLite wrote (neither its
    /// magic nor zeros first, or sizes SQLite never writes).
    public static func journalHeader(_ fd: Int32) -> JournalHeader? {
        var bytes = [UInt8](repeating: 0, count: 28)
        guard preadFully(fd, &bytes, at: 0) == 28 else { return nil }
        let magic = Array(bytes[0..<8])
        guard magic == journalMagic || magic.allSatisfy({ $0 == 0 }) else { return nil }
        let sector = Int(bigEndian32(bytes[20...])), page = Int(bigEndian32(bytes[24...]))
        guard sector >= 32, sector <= 65536, sector & (sector - 1) == 0, page >= 512, page <= 65536, page & (page - 1) == 0 else { return nil }
        return JournalHeader(hasMagic: magic == journalMagic, originalPages: Int(bigEndian32(bytes[16...])), sectorSize: sector, pageSize: page)
    }

    /// The journal's records (page number and the offset of the page's original bytes), in
    /// order, through every segment (a journal synced in the middle of a transaction has more
    /// than one header): a segment's count when its header states one, else records to the end.
    /// Stops at the first page number SQLite would not write (0, or past `limit` records).
    public static func journalRecords(_ fd: Int32, _ header: JournalHeader, limit: Int = 1 << 22) -> [(page: UInt32, offset: Int)] {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return [] }
        let size = Int(info.st_size), record = header.pageSize + 8
        var records: [(page: UInt32, offset: Int)] = []
        var segment = 0
        while segment + header.sectorSize <= size, records.count < limit {
            var fields = [UInt8](repeating: 0, count: 12)
            guard preadFully(fd, &fields, at: segment) == 12 else { break }
            if segment > 0 && Array(fields[0..<8]) != journalMagic { break }
            let stated = Int(bigEndian32(fields[8...]))
            let available = (size - segment - header.sectorSize) / record
            let count = (stated == 0 || stated == 0xFFFF_FFFF) ? available : min(stated, available)
            var offset = segment + header.sectorSize
            for _ in 0..<count {
                var number = [UInt8](repeating: 0, count: 4)
                guard preadFully(fd, &number, at: offset) == 4 else { return records }
                let page = bigEndian32(number[...])
                guard page != 0 else { return records }
                records.append((page, offset + 4))
                offset += record
            }
            guard stated != 0, stated != 0xFFFF_FFFF, count == stated else { break }
            // The next segment starts at the next sector boundary.
            segment = (offset + header.sectorSize - 1) / header.sectorSize * header.sectorSize
        }
        return records
    }

    /// `pread` until `buffer` is full or the file ends (EINTR retried): the bytes read, -1 on error.
    public static func preadFully(_ fd: Int32, _ buffer: inout [UInt8], at offset: Int) -> Int {
        var done = 0
        while done < buffer.count {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return -1 }
            if count == 0 { break }
            done += count
        }
        return done
    }
}
