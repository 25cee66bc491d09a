import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one reader of a lock's first line: a Derive lock's header (`{"format":"derive.lock/2",
/// "manifest":"../n.yaml",…}`), which says whose lock it is, and `build.lock`'s holder line. Four
/// readers had grown apart (64 KiB read, 512 bytes, 4 KiB behind a 23-byte test, 23 bytes, one
/// following links); a lock may be any size, sit at any name, or be a FIFO or a link planted there.
///
/// Bounded: the file is opened without following a link and without blocking, only a regular
/// file is read, and at most `maxBytes` of it (a first line longer than that is cut there).
public enum LockFirstLine {
    /// Bytes of a first line read at most (a lock's header: format, manifest, index, note).
    public static let maxBytes = 4096
    /// The note every lock Derive writes carries in its header.
    public static let note = "one output per line; written by derive build, do not edit"
    /// The formats of the locks Derive writes (`LockFile.formatName`, `.leftFormatName`).
    public static let formats: Set<String> = ["derive.lock/2", "derive.lock/3"]

    /// The first line of the regular file at `path` (relative to the open folder `folder`, or
    /// to the working folder), without its newline: at most `maxBytes` bytes. nil when nothing
    /// regular is there (a link, a FIFO, a folder), it cannot be read, or (with `startingWith`)
    /// its first bytes are not those: a file that does not start as a lock is read no further.
    public static func read(_ path: String, in folder: Int32 = AT_FDCWD, startingWith prefix: Data? = nil) -> Data? {
        let fd = openat(folder, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        var count = 0
        // The cheap test first (a listing of 20 000 files reads 23 bytes of each).
        if let prefix {
            let wanted = min(prefix.count, maxBytes)
            // A file shorter than the prefix is not read at all: a read sets its access time, and
            // an empty file with a second name (a user's marker hard-linked at the clock stamp's
            // name) is the user's, whose times no command touches (ClockStampLinksIssue9Tests).
            guard Int(info.st_size) >= wanted else { return nil }
            count = readUp(fd, &buffer, from: 0, to: wanted)
            guard count == wanted, buffer[..<count].elementsEqual(prefix.prefix(wanted)) else { return nil }
            if buffer[..<count].contains(UInt8(ascii: "\n")) { return Data(buffer[..<count].prefix { $0 != UInt8(ascii: "\n") }) }
        }
        // Read until a newline or the bound: `/proc` files say size 0, so the size is not trusted.
        while count < maxBytes {
            let before = count
            count = readUp(fd, &buffer, from: count, to: maxBytes)
            if count == before || buffer[before..<count].contains(UInt8(ascii: "\n")) { break }
        }
        return Data(buffer[..<count].prefix { $0 != UInt8(ascii: "\n") })
    }

    /// Bytes `from..<to` of the file read into `buffer` as far as one `pread` gives them; the new count.
    private static func readUp(_ fd: Int32, _ buffer: inout [UInt8], from: Int, to: Int) -> Int {
        while true {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + from, to - from, off_t(from)) }
            if got < 0, errno == EINTR { continue }
            return got > 0 ? from + got : from
        }
    }

    /// Whether a first line starts as a Derive lock's header does (`ProjectMarkers.lockMarker`).
    public static func startsAsLock(_ line: Data) -> Bool { line.starts(with: ProjectMarkers.lockMarker) }

    /// The first line of the file at `path` when it starts as a Derive lock's header does.
    public static func lockHeader(_ path: String, in folder: Int32 = AT_FDCWD) -> Data? {
        read(path, in: folder, startingWith: ProjectMarkers.lockMarker)
    }

    /// The manifest a lock header names (as written: relative to the lock's folder), nil when it
    /// is no JSON object or names none.
    public static func manifest(_ line: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              let named = object["manifest"] as? String, !named.isEmpty, !named.contains("\0") else { return nil }
        return named
    }

    /// The manifest named by a header that is one Derive writes: a JSON object of a format Derive
    /// writes, naming a manifest, with Derive's note. What a Derive lock is when nothing else
    /// vouches for it (a gone project's lock at any name, `LeftLockFiles`; a lock in a bucket,
    /// which serve never answers): a user's file that merely starts like one (attack 50c's L2,
    /// `{"format":"derive.lock/2","manifest":"x.yaml"}` as a log's first line) is the user's.
    public static func derivesLockManifest(_ line: Data) -> String? {
        guard startsAsLock(line), let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              let format = object["format"] as? String, formats.contains(format), object["note"] as? String == note,
              let named = object["manifest"] as? String, !named.isEmpty, !named.contains("\0") else { return nil }
        return named
    }

    /// Whether the file at `path` is a Derive lock as `derivesLockManifest` reads its header.
    public static func isDerivesLock(_ path: String) -> Bool {
        lockHeader(path).flatMap(derivesLockManifest) != nil
    }
}
