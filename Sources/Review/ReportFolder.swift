import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner

/// The folder a review or a catalogue is written into (`derive diff --html/--renders DIR`,
/// `derive catalog --html DIR`). Derive replaces only files it wrote there: `.derive-report`
/// records each one's SHA-256, and a file is replaced only while it still holds those bytes. The
/// record is sealed (`ReportSeal`: an HMAC keyed by this user's secret over the folder's real path
/// and its lines), so a record written by hand, copied from another folder or left by an older
/// Derive proves nothing. A folder holding anything else and no record Derive can prove it wrote
/// is refused, so a report never lands on a user's page or notes; never inside a bucket, never
/// through a link.
public final class ReportFolder: @unchecked Sendable {
    public static let recordName = ".derive-report"
    static let header = "derive-report/2"
    /// The header of an older Derive's record, which carried no seal.
    static let unsealedHeader = "derive-report/1"

    public let path: String
    private let lock = NSLock()
    /// The folder's real path and this user's secret for report folders: what the record's seal binds.
    private let realPath: String
    private let secret: Data
    /// Relative name (`index.html`, `images/0001-old.jpg`) → SHA-256 of the bytes written.
    private var written: [String: String]

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    private init(path: String, realPath: String, secret: Data, written: [String: String]) {
        self.path = path; self.realPath = realPath; self.secret = secret; self.written = written
    }

    /// Takes `folder` (made if needed) for a report: refused inside (or through a link into) a
    /// bucket of `manifests`, when it or its `images/` is not a real folder, or when it holds
    /// files and no record Derive can prove it wrote (`ReportSeal`).
    public static func claim(_ folder: String, manifests: [Manifest]) throws -> ReportFolder {
        let images = folder + "/images"
        // Both judged before anything is made: a refused report leaves no folder behind (attack
        // round 28: a bucket at DIR/images was made, with DIR, and then refused).
        try ReviewRenderer.checkOutsideBuckets(folder, manifests: manifests)
        var imagesInfo = stat()
        if lstat(images, &imagesInfo) == 0, (imagesInfo.st_mode & S_IFMT) != S_IFDIR { throw notAFolder(images, imagesInfo) }
        try ReviewRenderer.checkOutsideBuckets(images, manifests: manifests, holder: folder)
        try makeRealFolder(folder)
        let recordPath = folder + "/" + recordName
        let realPath = RealFolder.of(folder)
        var written: [String: String] = [:]
        var info = stat()
        if lstat(recordPath, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG,
                  let data = try? ConfinedFolder.readRegularFile(atPath: recordPath, maxBytes: 16 << 20),
                  let text = String(data: data, encoding: .utf8) else {
                throw unproven(folder, why: "it is not a record Derive wrote")
            }
            // Never made here: a record met before any report was sealed cannot be this user's.
            let secret = try? ReportSeal.secret(create: false)
            switch parse(text, folder: realPath, secret: secret) {
            case .sealed(let parsed): written = parsed
            case .unsealed: throw unproven(folder, why: "it is unsealed: written by an older Derive, or by hand")
            case .unproven: throw unproven(folder, why: "its seal does not verify: written or edited by hand, copied from another folder, or made for another user")
            }
        } else {
            let imagesEmpty = ((try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []).isEmpty
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !($0 == "images" && imagesEmpty) }.sorted()
            if !others.isEmpty {
                throw Failure(description: "the report folder \(folder) already holds files Derive did not write (\(others.prefix(3).joined(separator: ", "))\(others.count > 3 ? ", …" : "")) and no \(recordName) record; give a new or empty folder")
            }
        }
        try makeRealFolder(images)
        try ReviewRenderer.checkOutsideBuckets(images, manifests: manifests, holder: folder)
        let secret: Data
        do {
            guard let made = try ReportSeal.secret(create: true) else { throw Failure(description: "no secret") }
            secret = made
        } catch {
            throw Failure(description: "cannot seal the report folder's record \(recordPath): \(error)")
        }
        let report = ReportFolder(path: folder, realPath: realPath, secret: secret, written: written)
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

    /// Writes a render as `relative` (`images/0001-old.webp`) or, when a file Derive did not write
    /// is there (put there or edited by hand), under the next free name (`images/0001-old-2.webp`):
    /// that file is kept, and named in `kept`, and the page never shows it as the render. The
    /// name written.
    public func writeRender(_ bytes: Data, to relative: String) throws -> String {
        let ext = (relative as NSString).pathExtension
        let stem = ext.isEmpty ? relative : String(relative.dropLast(ext.count + 1))
        for attempt in 1...Self.maxOtherNames {
            let name = attempt == 1 ? relative : "\(stem)-\(attempt)" + (ext.isEmpty ? "" : "." + ext)
            guard lock.withLock({ !isOthers(name) }) else {
                lock.withLock { keptFiles.append((path + "/" + name, relative)) }
                continue
            }
            try write(bytes, to: name)
            lock.withLock {
                for index in keptFiles.indices where keptFiles[index].render == relative { keptFiles[index].render = name }
            }
            return name
        }
        throw Failure(description: "\(path)/\(relative) and \(Self.maxOtherNames - 1) other names for its render hold files this report did not write; they are kept: move them away or choose another report folder")
    }

    /// Names of other renders tried before one is taken.
    static let maxOtherNames = 20

    /// Files of the user's met at a render's name: each kept, with the name the render took
    /// instead (the name first tried until one was found).
    private var keptFiles: [(file: String, render: String)] = []

    /// One line for each file kept by `writeRender`, naming it, where the render went, and the fix.
    public var kept: [String] {
        lock.withLock { keptFiles }.sorted { $0.file < $1.file }.map { kept in
            "\(kept.file) is not a file this report wrote; it is kept, and the report shows its render as \(path)/\(kept.render) instead: "
                + "move it away (or delete it, if it is yours to delete), or choose another report folder"
        }
    }

    /// Call under `lock`. Whether something at `relative` is not the file this report wrote there.
    private func isOthers(_ relative: String) -> Bool {
        let target = path + "/" + relative
        var info = stat()
        guard lstat(target, &info) == 0 else { return false }
        guard (info.st_mode & S_IFMT) == S_IFREG, let recorded = written[relative],
              let current = try? ConfinedFolder.readRegularFile(atPath: target, maxBytes: 1 << 30) else { return true }
        return ContentDigests.digest(current) != recorded
    }

    /// The folder kept as it is: Derive cannot prove it wrote its record.
    private static func unproven(_ folder: String, why: String) -> Failure {
        Failure(description: "the report folder \(folder) is kept as it is: Derive cannot prove it wrote its \(recordName) (\(why)); "
                + "choose another report folder, or delete the folder if it holds only a report you no longer need")
    }

    /// What a record proves.
    enum Record: Equatable {
        /// Sealed by this user's Derive for this folder: the files written, with their digests.
        case sealed([String: String])
        /// An older Derive's record (`derive-report/1`), which carried no seal.
        case unsealed
        /// Anything else: not shaped as Derive writes it, or a seal that does not verify.
        case unproven
    }

    /// `derive-report/2`, then `SHA-256 name` a line, then `seal <hex>` (`ReportSeal`, over the
    /// lines before it and `folder`, the real path). `secret`: this user's, nil when none is kept.
    static func parse(_ text: String, folder: String, secret: Data?) -> Record {
        if text.hasPrefix(unsealedHeader + "\n") { return entries(text, header: unsealedHeader) == nil ? .unproven : .unsealed }
        guard text.hasSuffix("\n"), let sealStart = text.dropLast().lastIndex(of: "\n") else { return .unproven }
        let body = String(text[...sealStart]), last = text[text.index(after: sealStart)...].dropLast()
        guard last.hasPrefix("seal "), let secret,
              ReportSeal.verifies(String(last.dropFirst(5)), body: body, folder: folder, secret: secret),
              let parsed = entries(body, header: header) else { return .unproven }
        return .sealed(parsed)
    }

    /// `header`, then `SHA-256 name` a line.
    private static func entries(_ text: String, header: String) -> [String: String]? {
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

    /// Call under `lock`. The record is replaced whole (temporary file, rename), sealed.
    private func saveRecord() throws {
        var text = Self.header + "\n"
        for (name, digest) in written.sorted(by: { $0.key < $1.key }) where !name.contains("\n") { text += "\(digest) \(name)\n" }
        text += "seal \(ReportSeal.seal(text, folder: realPath, secret: secret))\n"
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
        var info = stat()
        // A file or a link (dangling too) where the folder goes: named, never Foundation's error.
        if lstat(folder, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR { throw notAFolder(folder, info) }
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw Failure(description: "cannot create the report folder \(folder): \(DiskError.whyFolderNotMade(folder, error))")
        }
        guard lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { throw notAFolder(folder, info) }
    }

    /// `path`, whose `lstat` is `info`, is there but is no real folder: what it is, and the fix.
    private static func notAFolder(_ path: String, _ info: stat) -> Failure {
        let fix = "derive writes a report only into a real folder (new, empty, or holding a report it wrote): choose another path"
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return Failure(description: "\(path) is a file, not a folder; \(fix), or move the file away")
        case S_IFLNK:
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
            return Failure(description: "\(path) is a symbolic link (to \(target)), not a folder; \(fix), or remove the link")
        default:
            return Failure(description: "\(path) is not a folder (a FIFO, socket or device); \(fix)")
        }
    }
}
