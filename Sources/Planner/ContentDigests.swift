import Confinement
import Crypto
import ImagingCore
import Foundation

/// Content digests through a stat cache keyed by path, size, mtime and ctime (ns) and inode, with git's
/// rule for racy timestamps: a file whose mtime is within `racyMargin` of the moment it was
/// hashed is hashed again next time, since a change in the same clock tick would not show
/// (an mtime dated ahead of the clock counts by the file's ctime: `FileStat.lastChange`).
/// A no-op build therefore stats files and reads none; a fresh clone (new mtimes and inodes)
/// hashes once.
public final class ContentDigests: @unchecked Sendable {
    public struct Content: Sendable, Hashable {
        public var digest: String
        /// Format sniffed from the bytes: `jpg`, `png`, `gif`, `webp`, `tiff`, `heic`, `avif`, `bmp`, or "".
        public var format: String
        /// Displayed size from the header (`SourceHeader.displayedSize`), 0 when unknown.
        public var width: Int
        public var height: Int
        /// Why the bytes are cut short, when a cheap check proves it (`SourceEnd`); such a file is
        /// read again on every plan rather than remembered (width -2 in its record).
        public var truncation: String?

        public init(digest: String, format: String, width: Int = 0, height: Int = 0, truncation: String? = nil) {
            self.digest = digest
            self.format = format
            self.width = width
            self.height = height
            self.truncation = truncation
        }
    }

    /// A file's record as the cache holds it: a `FileRecord` without its path (the key) and with
    /// its digest inline (`HexDigest`): a plan from scratch holds one per source.
    private struct Entry {
        var size: Int64
        var mtime: Int64
        var inode: Int64
        var ctime: Int64
        var recorded: Int64
        var width: Int
        var height: Int
        var digest: HexDigest
        var format: String
        /// The row's seal, still to verify before the entry is used (`trusted`); nil: verified,
        /// learned by this process, or from a store without seals.
        var seal: RowSeal?

        init(_ record: FileRecord, seal: RowSeal? = nil) {
            size = record.size; mtime = record.mtime; inode = record.inode; ctime = record.ctime; recorded = record.recorded
            width = record.width; height = record.height; digest = HexDigest(record.digest); format = record.format
            self.seal = seal
        }

        func record(path: String) -> FileRecord {
            FileRecord(path: path, size: size, mtime: mtime, inode: inode, digest: digest.text, format: format, recorded: recorded,
                       ctime: ctime, width: width, height: height)
        }
    }

    private let disk: any Disk
    private let lock = NSLock()
    private var cache: PathDictionary<Entry>
    /// Paths remembered since the last `takePending` (their records are in `cache`).
    private var pending: PathSet = []
    public let racyMargin: Int64
    /// Set by `build --verify`: no stat is trusted, every file is read again (attack 20's B2: other
    /// bytes under the very stat the cache knows). Set before planning, never while hashing.
    public var rereading = false

    /// Verifies an entry's seal on its first use (nil: every entry is trusted as given).
    private let check: FileSealCheck?

    /// Where the state's rows not read up front are (`init(disk:rows:check:rest:)`): each read by
    /// key on its first use, or all at once by `readRest`. Nil: `cache` began with every row.
    public struct RowSource: Sendable {
        /// The row of one path as `StateStore.fileRows` gives it, its seal verified; nil: none.
        public var byKey: @Sendable (String) throws -> CachedFile?
        /// The rows of every path `including` accepts, as `StateStore.fileRows(including:)` gives them.
        public var rest: @Sendable (_ including: @escaping (String) -> Bool) throws -> PathDictionary<CachedFile>

        public init(byKey: @escaping @Sendable (String) throws -> CachedFile?,
                    rest: @escaping @Sendable (_ including: @escaping (String) -> Bool) throws -> PathDictionary<CachedFile>) {
            self.byKey = byKey
            self.rest = rest
        }
    }
    private var unread: RowSource?
    /// Paths read by key (found or not): never read again, and never taken from `rest`.
    private var asked: PathSet = []
    /// Rows taken from the state, up front, by key and by `readRest` (tests: an edited source's
    /// plan takes its inputs' rows, not the outputs' files').
    public private(set) var rowsTaken = 0

    public init(disk: any Disk, cache: PathDictionary<FileRecord>, racyMargin: Int64 = 1_000_000_000) {
        self.disk = disk
        self.cache = PathDictionary(storage: cache.storage.mapValues { Entry($0) })
        self.racyMargin = racyMargin
        self.check = nil
    }

    /// The cache of a plan: the state's rows (`StateStore.fileRows`), each verified by `check`
    /// when first used. A row whose seal does not verify is dropped then, as if never read: the
    /// file is hashed again, as when `allFiles` leaves such a row out.
    /// `rest`: where the rows `rows` leaves out are (an edited source's plan reads its inputs'
    /// rows up front, issue 15). Every answer is the one the cache of every row gives
    /// (`PartialStatRowsTests`): a path's row is read by key on its first use, before anything
    /// else is asked of it, and `readRest` takes every row not read yet (the full plan).
    public init(disk: any Disk, rows: PathDictionary<CachedFile>, check: FileSealCheck?, rest: RowSource? = nil,
                racyMargin: Int64 = 1_000_000_000) {
        self.disk = disk
        self.cache = PathDictionary(storage: rows.storage.mapValues { Entry($0.record, seal: $0.seal) })
        self.racyMargin = racyMargin
        self.check = check
        self.unread = rest
        self.rowsTaken = rows.count
    }

    /// The cache's entry of `path`, its row read by key first when the state's rows were not all
    /// read and this path's has not been (a row that cannot be read is none: the file is hashed).
    private func entry(_ path: String) -> Entry? {
        let (found, source) = lock.withLock { () -> (Entry?, RowSource?) in
            if let entry = cache[path] { return (entry, nil) }
            return (nil, unread != nil && !asked.contains(path) ? unread : nil)
        }
        guard found == nil, let source else { return found }
        let row = try? source.byKey(path)
        return lock.withLock {
            // Read once; a row `remember` or `readRest` put meanwhile stands.
            guard unread != nil, asked.insert(path).inserted else { return cache[path] }
            if cache[path] == nil, let row {
                cache[path] = Entry(row.record, seal: row.seal)
                rowsTaken += 1
            }
            return cache[path]
        }
    }

    /// Takes every row of the state not read yet (those `remember` replaced or read by key stay
    /// as they are): the full plan asks for most of them, in one pass rather than by key.
    public func readRest() throws {
        let (source, known, read) = lock.withLock { (unread, cache.storage, asked) }
        guard let source else { return }
        let rows = try source.rest { path in known[PathKey(path)] == nil && !read.contains(path) }
        lock.withLock {
            for (key, row) in rows.storage where cache.storage[key] == nil && !asked.keys.contains(key) {
                cache[key.string] = Entry(row.record, seal: row.seal)
                rowsTaken += 1
            }
            unread = nil
            asked = []
        }
    }

    /// The entry of `path` once its seal is verified (the first use of a row read from the
    /// state); nil when there is none or its seal does not verify (then it is dropped).
    private func trusted(_ path: String) -> Entry? {
        guard let entry = entry(path) else { return nil }
        guard let seal = entry.seal else { return entry }
        // Verified outside the lock (plans ask from every core); an entry replaced meanwhile by
        // `remember` (no seal) is left as it is.
        let verifies = check?.verifies(entry.record(path: path), seal) ?? false
        lock.withLock {
            guard cache[path]?.seal == seal else { return }
            if verifies { cache[path]?.seal = nil } else { cache[path] = nil }
        }
        guard verifies else { return nil }
        var verified = entry
        verified.seal = nil
        return verified
    }

    /// The stats of `paths`, in order, taken in one batch per core (a real disk walks each folder
    /// once instead of once per file), for `content(of:stat:)`; nil for a short list (each
    /// `content(of:)` then stats its own file). Returned, not kept: a plan of 200 000 outputs
    /// held them in a dictionary by path, 29 MB of it at the plan's peak.
    public func stats(_ paths: [String]) -> [FileStat?]? {
        guard paths.count > 64 else { return nil }
        let runs = max(1, min(ProcessInfo.processInfo.activeProcessorCount, paths.count / 1024))
        let size = (paths.count + runs - 1) / runs
        let ranges = (0..<runs).map { ($0 * size)..<min(paths.count, ($0 + 1) * size) }
        guard let stats = try? parallelMap(ranges, { [disk] in disk.stats(Array(paths[$0])) }) else { return nil }
        var all: [FileStat?] = []
        all.reserveCapacity(paths.count)
        for part in stats { all += part }
        return all
    }

    /// The digest of `path`, or nil when it does not exist.
    public func content(of path: String) throws -> Content? {
        try content(of: path, stat: disk.stat(path))
    }

    /// `content(of:)` with the file's stat already taken (`stats(_:)`; nil: no file there).
    public func content(of path: String, stat: FileStat?) throws -> Content? {
        guard let stat else { return nil }
        if let known = cached(path, stat: stat) { return known }
        let content: Content
        if stat.size > Self.wholeReadLimit {
            // Far over any source limit: hashed in pieces, never held whole; the size from the
            // head alone (most formats put it first), no end check. The render refuses it by size.
            let (digest, head) = try disk.digestAndHead(path, headBytes: Self.headBytes)
            let size = SourceHeader.displayedSize(head)
            content = Content(digest: digest, format: Self.sniff(head), width: size?.width ?? 0, height: size?.height ?? 0)
        } else {
            let data = try disk.read(path)
            let size = SourceHeader.displayedSize(data)
            content = Content(digest: Self.digest(data), format: Self.sniff(data), width: size?.width ?? 0, height: size?.height ?? 0,
                              truncation: SourceEnd.truncation(data))
        }
        remember(path, stat: stat, content: content)
        return content
    }

    /// What the cache knows of `path` when it has exactly that stat and may be trusted without
    /// reading the file (what `content(of:)` answers without reading); nil when it must be read.
    public func cached(_ path: String, stat: FileStat) -> Content? {
        guard !rereading, let entry = entry(path), entry.size == stat.size, entry.mtime == stat.mtime,
              entry.inode == Int64(bitPattern: stat.inode), entry.ctime == stat.ctime,
              // The seal last, and only of a row that would answer: a row the stat does not match is never used.
              let known = entry.seal == nil ? entry : trusted(path), known.size == stat.size, known.mtime == stat.mtime,
              known.inode == Int64(bitPattern: stat.inode), known.ctime == stat.ctime,
              // Settled: changed a margin before it was hashed (an mtime dated ahead counts by its ctime).
              stat.changed < known.recorded - racyMargin || stat.lastChange(now: disk.now(), margin: racyMargin) < known.recorded - racyMargin,
              known.width != Self.truncatedWidth, known.width >= 0 || !SourceHeader.displayedFormats.contains(known.format),
              // Read before TIFF, BMP, HEIC and AVIF sizes were: read again once (an unknown size is then -2 high).
              !(known.width == 0 && known.height == 0 && SourceHeader.laterDisplayedFormats.contains(known.format)),
              // HEIF sizes read before the clean aperture was applied (a 333-high image read 334): read again once.
              !(known.format == "heic" && known.recorded < Self.heifApertureRead),
              // JPEG, PNG and WebP sizes read before EXIF orientation was read as libvips reads it: read again once.
              !(Self.exifOrientationFormats.contains(known.format) && known.recorded < Self.exifOrientationRead),
              // GIF sizes read before images past the logical screen made the size unknown: read again once.
              !(known.format == "gif" && known.recorded < Self.gifScreenRead) else { return nil }
        return Content(digest: known.digest.text, format: known.format, width: max(0, known.width), height: max(0, known.height))
    }

    /// When HEIF sizes began to be read through the primary item's clean aperture (2026-12-03
    /// 00:00 UTC, ns): a size cached before may be the coded size, so it is read again once.
    static let heifApertureRead: Int64 = 1_796_256_000 * 1_000_000_000

    /// When the EXIF orientation began to be read as libvips reads it (2026-12-05 02:00 UTC, ns;
    /// attack 39b's M3: the first Exif APP1 only, an APP1 after the frame header, the tag's type):
    /// a JPEG, PNG or WebP size cached before may be the other way round, so it is read again once.
    static let exifOrientationRead: Int64 = 1_796_436_000 * 1_000_000_000
    static let exifOrientationFormats: Set<String> = ["jpg", "png", "webp"]

    /// When a GIF whose images reach past its logical screen began to be read as of unknown size
    /// (2026-12-06 09:00 UTC, ns; attack 48's F4): a GIF size cached before may be the screen's,
    /// not the one libvips shows, so it is read again once.
    static let gifScreenRead: Int64 = 1_796_547_600 * 1_000_000_000

    /// Files larger than this are hashed in 64 KiB pieces instead of read whole (the default
    /// source limit is 20 MiB; a 600 MB file in a bucket cost the plan 650 MB).
    static let wholeReadLimit: Int64 = 64 << 20
    /// The bytes of a streamed file kept for its format and header size.
    static let headBytes = 1 << 20

    /// Records a digest already known (an output just written), so it is not read again.
    public func remember(_ path: String, stat: FileStat, content: Content) {
        let unknown = content.width == 0 && content.height == 0 && SourceHeader.laterDisplayedFormats.contains(content.format)
        let record = FileRecord(path: path, size: stat.size, mtime: stat.mtime, inode: Int64(bitPattern: stat.inode),
                                digest: content.digest, format: content.format, recorded: disk.now(), ctime: stat.ctime,
                                width: content.truncation == nil ? content.width : Self.truncatedWidth,
                                height: unknown ? -2 : content.height)
        lock.withLock {
            cache[path] = Entry(record)
            pending.insert(path)
        }
    }

    /// The width recorded for a file cut short: never a cache hit, so it is checked again.
    static let truncatedWidth = -2

    /// The stat the cache holds for `path` (the one its digest was taken or written with).
    public func stat(for path: String) -> FileStat? {
        trusted(path).map { FileStat(size: $0.size, mtime: $0.mtime, inode: UInt64(bitPattern: $0.inode), ctime: $0.ctime) }
    }

    public func record(for path: String) -> FileRecord? { trusted(path)?.record(path: path) }

    /// Cache entries learned since the last call, for the state store.
    public func takePending() -> [FileRecord] {
        lock.withLock {
            let records = pending.compactMap { path in cache[path]?.record(path: path) }
            pending.removeAll()
            return records
        }
    }

    public static func digest(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    /// The MD5 of `data` (what serve's render cache entries state of their bodies: `clean`
    /// checks it before removing one).
    public static func md5(_ data: Data) -> [UInt8] { Array(Insecure.MD5.hash(data: data)) }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lowercase hex without `String(format:)`, which is slow enough to show in no-op builds.
    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var characters: [UInt8] = []
        characters.reserveCapacity(64)
        for byte in bytes {
            characters.append(hexDigits[Int(byte >> 4)])
            characters.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// The digest of the text's UTF-8 bytes, hashed in place: `Data(text.utf8)` made Foundation
    /// ask the Swift runtime whether `String.UTF8View` has contiguous bytes, a scan of every
    /// protocol conformance in the binary on every command's start (issue 15).
    public static func digest(_ text: String) -> String {
        var text = text
        var hasher = SHA256()
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return hex(hasher.finalize())
    }

    /// The text's UTF-8 bytes as `Data`, copied from contiguous storage (see `digest(_: String)`).
    public static func utf8Data(_ text: String) -> Data {
        var text = text
        return text.withUTF8 { Data(buffer: $0) }
    }

    /// The image format from magic bytes, the same test the engine makes.
    public static func sniff(_ data: Data) -> String {
        let bytes = [UInt8](data.prefix(12))
        func starts(_ prefix: [UInt8]) -> Bool { bytes.count >= prefix.count && Array(bytes.prefix(prefix.count)) == prefix }
        if starts([0xFF, 0xD8, 0xFF]) { return "jpg" }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return "png" }
        if starts(Array("GIF8".utf8)) { return "gif" }
        if starts(Array("RIFF".utf8)), bytes.count >= 12, Array(bytes[8..<12]) == Array("WEBP".utf8) { return "webp" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "tiff" }
        if starts(Array("BM".utf8)) { return "bmp" }
        if bytes.count >= 12, Array(bytes[4..<8]) == Array("ftyp".utf8) {
            let brand = String(decoding: bytes[8..<12], as: UTF8.self)
            return brand == "avif" || brand == "avis" ? "avif" : "heic"
        }
        return ""
    }
}
