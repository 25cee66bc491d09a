import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner

/// The folder a review or a catalogue is written into (`derive diff --html/--renders DIR`,
/// `derive catalog --html DIR`). Derive replaces only files it wrote there: `.derive-report`
/// records each one's SHA-256, and a file is replaced only while it still holds those bytes. A
/// folder holding anything else and no record is refused, so a report never lands on a user's
/// page or notes; never inside a bucket, never through a link.
public final class ReportFolder: @unchecked Sendable {
    public static let recordName = ".derive-report"
    static let header = "derive-report/1"

    public let path: String
    private let lock = NSLock()
    /// Relative name (`index.html`, `images/0001-old.jpg`) → SHA-256 of the bytes written.
    private var written: [String: String]

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    private init(path: String, written: [String: String]) { self.path = path; self.written = written }

    /// Takes `folder` (made if needed) for a report: refused inside (or through a link into) a
    /// bucket of `manifests`, when it or its `images/` is not a real folder, or when it holds
    /// files and no record of Derive's.
    public static func claim(_ folder: String, manifests: [Manifest]) throws -> ReportFolder {
        try ReviewRenderer.checkOutsideBuckets(folder, manifests: manifests)
        try makeRealFolder(folder)
        let images = folder + "/images"
        var imagesInfo = stat()
        if lstat(images, &imagesInfo) == 0, (imagesInfo.st_mode & S_IFMT) != S_IFDIR { throw notAFolder(images) }
        let recordPath = folder + "/" + recordName
        var written: [String: String] = [:]
        var info = stat()
        if lstat(recordPath, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG,
                  let data = try? ConfinedFolder.readRegularFile(atPath: recordPath, maxBytes: 16 << 20),
                  let text = String(data: data, encoding: .utf8), let parsed = parse(text) else {
                throw Failure(description: "\(recordPath) is not a record Derive wrote; the folder is kept as it is: choose another report folder")
            }
            written = parsed
        } else {
            let imagesEmpty = ((try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []).isEmpty
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !($0 == "images" && imagesEmpty) }.sorted()
            if !others.isEmpty {
                throw Failure(description: "the report folder \(folder) already holds files Derive did not write (\(others.prefix(3).joined(separator: ", "))\(others.count > 3 ? ", …" : "")) and no \(recordName) record; give a new or empty folder")
            }
        }
        try makeRealFolder(images)
        try ReviewRenderer.checkOutsideBuckets(images, manifests: manifests)
        let report = ReportFolder(path: folder, written: written)
        try report.lock.withLock { try report.saveRecord() }
        return report
    }

    /// Writes `bytes` as `relative` (`index.html`, `images/…`): a new file (linked into place, so
    /// a file that appears meanwhile is never replaced), or over the file this report wrote there
    /// last while it still holds those bytes.
    public func write(_ bytes: Data, to relative: String) throws {
        try lock.withLock {
            let target = path + "/" + relative
            var info = stat()
            let exists = lstat(target, &info) == 0
            if exists {
                guard (info.st_mode & S_IFMT) == S_IFREG, let recorded = written[relative],
                      let current = try? ConfinedFolder.readRegularFile(atPath: target, maxBytes: 1 << 30),
                      ContentDigests.digest(current) == recorded else {
                    throw Failure(description: "\(target) exists and is not a file this report wrote; it is kept: move it away or choose another report folder")
                }
            }
            let temporary = (target as NSString).deletingLastPathComponent + "/.derive-report-\(UUID().uuidString)"
            try Self.writeNew(bytes, at: temporary)
            if exists {
                guard rename(temporary, target) == 0 else {
                    let reason = String(cString: strerror(errno)); unlink(temporary)
                    throw Failure(description: "cannot write \(target): \(reason)")
                }
            } else {
                defer { unlink(temporary) }
                guard link(temporary, target) == 0 else {
                    let reason = errno == EEXIST ? "a file appeared there meanwhile; it is kept" : String(cString: strerror(errno))
                    throw Failure(description: "cannot write \(target): \(reason)")
                }
            }
            written[relative] = ContentDigests.digest(bytes)
            try saveRecord()
        }
    }

    /// `derive-report/1`, then `SHA-256 name` a line.
    static func parse(_ text: String) -> [String: String]? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(header) else { return nil }
        lines.removeFirst()
        var result: [String: String] = [:]
        for line in lines {
            guard let space = line.firstIndex(of: " ") else { return nil }
            let digest = String(line[..<space]), name = String(line[line.index(after: space)...])
            guard digest.count == 64, digest.allSatisfy(\.isHexDigit), !name.isEmpty else { return nil }
            result[name] = digest
        }
        return result
    }

    /// Call under `lock`. The record is replaced whole (temporary file, rename).
    private func saveRecord() throws {
        var text = Self.header + "\n"
        for (name, digest) in written.sorted(by: { $0.key < $1.key }) where !name.contains("\n") { text += "\(digest) \(name)\n" }
        let temporary = path + "/.derive-report-\(UUID().uuidString)"
        try Self.writeNew(Data(text.utf8), at: temporary)
        guard rename(temporary, path + "/" + Self.recordName) == 0 else {
            let reason = String(cString: strerror(errno)); unlink(temporary)
            throw Failure(description: "cannot write \(path)/\(Self.recordName): \(reason)")
        }
    }

    private static func writeNew(_ bytes: Data, at path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let failed = bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 { if errno == EINTR { continue }; return true }
                offset += count
            }
            return false
        }
        if failed {
            let reason = String(cString: strerror(errno)); unlink(path)
            throw Failure(description: "cannot write \(path): \(reason)")
        }
    }

    private static func makeRealFolder(_ folder: String) throws {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw Failure(description: "cannot create the report folder \(folder): \(error)")
        }
        var info = stat()
        guard lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { throw notAFolder(folder) }
    }

    private static func notAFolder(_ path: String) -> Failure {
        Failure(description: "\(path) is not a folder (a symbolic link?); derive writes a report only into a real folder: remove it or choose another")
    }
}
