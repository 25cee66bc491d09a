import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest

/// What `stat` says about a file: enough to tell whether it changed since it was hashed.
public struct FileStat: Sendable, Hashable {
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var mtime: Int64
    public var inode: UInt64

    public init(size: Int64, mtime: Int64, inode: UInt64) {
        self.size = size
        self.mtime = mtime
        self.inode = inode
    }
}

/// The file system as the planner and builder see it (ninja's DiskInterface): tests swap in
/// `MemoryDisk`, everything else uses `RealDisk`.
public protocol Disk: ObjectLister {
    func stat(_ path: String) -> FileStat?
    func read(_ path: String) throws -> Data
    /// Writes `data` to a temporary file beside `path` and renames it into place, creating
    /// folders as needed; a crash leaves either the old file or the new one.
    func writeAtomically(_ data: Data, to path: String) throws
    func remove(_ path: String) throws
    /// Removes temporary files a killed build left in `folder`.
    func removeStaleTemporaries(in folder: String)
    /// Current time in nanoseconds since 1970.
    func now() -> Int64
}

public struct DiskError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `stat(2)`, outside any type that has its own `stat` method.
private func posixStat(_ path: String) -> stat? {
    var info = stat()
    return stat(path, &info) == 0 ? info : nil
}

/// The real file system.
public struct RealDisk: Disk {
    static let temporaryMarker = ".derive-tmp"
    private let lister = DiskObjectLister()

    public init() {}

    public func stat(_ path: String) -> FileStat? {
        guard let info = posixStat(path), (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        return FileStat(size: Int64(info.st_size), mtime: mtime, inode: UInt64(info.st_ino))
    }

    public func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DiskError("cannot read \(path)")
        }
        return data
    }

    public func writeAtomically(_ data: Data, to path: String) throws {
        let target = URL(fileURLWithPath: path)
        let folder = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(target.lastPathComponent).\(getpid())\(Self.temporaryMarker)")
        do {
            try data.write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw DiskError("cannot write \(path): \(error.localizedDescription)")
        }
        guard rename(temporary.path, target.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw DiskError("cannot move the new \(target.lastPathComponent) into place: \(reason)")
        }
    }

    public func remove(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw DiskError("cannot remove \(path): \(error.localizedDescription)")
        }
        // Remove folders the removal emptied, but never above the bucket (stops at the first non-empty one).
        var folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        while let entries = try? FileManager.default.contentsOfDirectory(atPath: folder.path), entries.isEmpty {
            guard (try? FileManager.default.removeItem(at: folder)) != nil else { break }
            folder = folder.deletingLastPathComponent()
        }
    }

    public func removeStaleTemporaries(in folder: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for entry in entries where entry.hasPrefix(".") && entry.hasSuffix(Self.temporaryMarker) {
            try? FileManager.default.removeItem(atPath: folder + "/" + entry)
        }
    }

    public func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        lister.keys(inFolder: folder, skipping: skipping)
    }
}

/// An in-memory disk for tests: files, a clock, and counters of what was read.
public final class MemoryDisk: Disk, @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String: (data: Data, stat: FileStat)] = [:]
    private var clock: Int64 = 1_700_000_000_000_000_000
    private var nextInode: UInt64 = 1
    public private(set) var reads: [String] = []

    public init() {}

    public func put(_ path: String, _ data: Data) {
        lock.withLock {
            clock += 10_000_000_000
            let inode = files[path]?.stat.inode ?? { nextInode += 1; return nextInode }()
            files[path] = (data, FileStat(size: Int64(data.count), mtime: clock, inode: inode))
        }
    }

    /// Changes the modification time only, like `touch`.
    public func touch(_ path: String) {
        lock.withLock {
            clock += 10_000_000_000
            files[path]?.stat.mtime = clock
        }
    }

    /// Moves the clock on, so files written before count as settled.
    public func advance(seconds: Int64) { lock.withLock { clock += seconds * 1_000_000_000 } }

    public func exists(_ path: String) -> Bool { lock.withLock { files[path] != nil } }
    public func contents(_ path: String) -> Data? { lock.withLock { files[path]?.data } }
    public func resetReads() { lock.withLock { reads.removeAll() } }

    public func stat(_ path: String) -> FileStat? { lock.withLock { files[path]?.stat } }

    public func read(_ path: String) throws -> Data {
        try lock.withLock {
            reads.append(path)
            guard let file = files[path] else { throw DiskError("cannot read \(path)") }
            return file.data
        }
    }

    public func writeAtomically(_ data: Data, to path: String) throws { put(path, data) }

    public func remove(_ path: String) throws { _ = lock.withLock { files.removeValue(forKey: path) } }

    public func removeStaleTemporaries(in folder: String) {}

    public func now() -> Int64 { lock.withLock { clock } }

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        lock.withLock {
            let prefix = folder.hasSuffix("/") ? folder : folder + "/"
            let keys = files.keys.filter { path in path.hasPrefix(prefix) && !skipping.contains { path.hasPrefix($0 + "/") } }
                .map { String($0.dropFirst(prefix.count)) }
                .filter { !$0.split(separator: "/").contains { $0.hasPrefix(".") } }
            return keys.isEmpty && !files.keys.contains(where: { $0.hasPrefix(prefix) }) ? nil : keys.sorted()
        }
    }
}
