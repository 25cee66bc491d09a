import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `derive clean` removes of `derive serve`'s files in a state folder: the multipart
/// uploads in progress (`serve-uploads/`), the render cache (`serve-cache/`) and the record of
/// appendable objects (`serve-appendable.json`). Only names in the exact shapes serve writes are
/// removed, one file at a time through `ConfinedFolder` (never through a link, never
/// recursively); a folder goes only once that leaves it empty. Anything else is left and named.
///
/// `serve-metadata.sqlite` is kept: it holds the headers of objects uploaded through serve, and
/// those objects stay in their buckets after `clean`.
public enum ServeStateCleanup {
    /// Removes serve's files from `stateFolder`; returns what was left, with why.
    public static func remove(in stateFolder: String) -> [String] {
        var left: [String] = []
        left += removeUploads(stateFolder + "/" + StateFiles.serveUploads)
        left += removeCache(stateFolder + "/" + StateFiles.serveCache)
        left += removeAppendable(stateFolder + "/" + StateFiles.serveAppendable)
        return left
    }

    static func isHex(_ name: [UInt8], count: Int, upper: Bool) -> Bool {
        name.count == count && name.allSatisfy { (48...57).contains($0) || (upper ? (65...70).contains($0) : (97...102).contains($0)) }
    }

    /// `serve-uploads/<32 upper-case hex>/{upload.json, part-NNNNN, temporaries}` and staged
    /// appends `serve-uploads/append-<16 hex>` (and their temporaries). An upload folder goes
    /// only when its upload.json parses as serve's record (or is gone); parts, temporaries and
    /// staged appends only as regular files with one link.
    static func removeUploads(_ path: String) -> [String] {
        guard let folder = try? ConfinedFolder(path: path), let entries = folder.entries(in: []) else { return [] }
        var left: [String] = []
        for entry in entries {
            let name = String(decoding: entry.name, as: UTF8.self)
            if entry.isFolder, isHex(entry.name, count: 32, upper: true) {
                // A folder whose upload.json is not serve's record is not serve's upload: kept whole.
                if let record = try? ObjectKey(name + "/upload.json"), folder.kind(record) != nil,
                   (try? folder.removeFile(record, if: isUploadRecord)) != true {
                    left.append("\(path)/\(name) is kept: its upload.json is not derive serve's record of an upload")
                    continue
                }
                for inner in folder.entries(in: entry.name) ?? [] where !inner.isFolder {
                    let innerName = String(decoding: inner.name, as: UTF8.self)
                    let isPart = innerName.hasPrefix("part-") && innerName.utf8.count == 10 && innerName.utf8.dropFirst(5).allSatisfy { (48...57).contains($0) }
                    guard isPart || ConfinedFolder.isTemporaryName(inner.name),
                          let key = try? ObjectKey(name + "/" + innerName) else { continue }
                    _ = try? folder.removeFile(key, if: hasOneLink)
                }
                if let key = try? ObjectKey(name), !folder.removeEmptyFolder(key) {
                    left.append("\(path)/\(name) is kept: it holds files derive serve does not write there")
                }
            } else if !entry.isFolder, isStagedAppend(name) || ConfinedFolder.isTemporaryName(entry.name), let key = try? ObjectKey(name) {
                if (try? folder.removeFile(key, if: hasOneLink)) != true {
                    left.append("\(path)/\(name) is kept: it is not a file derive serve staged (a regular file with one link)")
                }
            }
        }
        if rmdir(path) != 0, errno == ENOTEMPTY { left.append("\(path) is kept: it holds files derive serve does not write there") }
        return left
    }

    /// Serve creates its parts and staged appends with one name; a file with another name (a
    /// hard link) is someone's and is kept.
    static func hasOneLink(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_nlink == 1
    }

    /// `upload.json` as serve writes it: a JSON object with the upload's bucket, key and time.
    static func isUploadRecord(_ fd: Int32) -> Bool {
        struct Record: Decodable { var bucket: String; var key: String; var initiated: Int }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while data.count <= 64 * 1024 {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return (try? JSONDecoder().decode(Record.self, from: data)) != nil
    }

    static func isStagedAppend(_ name: String) -> Bool {
        guard name.hasPrefix("append-") else { return false }
        let rest = Array(name.utf8.dropFirst(7))
        return !rest.isEmpty && rest.count <= 64 && rest.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || (65...70).contains($0) }
    }

    /// `serve-cache/<2 hex>/<64 hex>` entries (and their temporaries).
    static func removeCache(_ path: String) -> [String] {
        guard let folder = try? ConfinedFolder(path: path), let entries = folder.entries(in: []) else { return [] }
        var left: [String] = []
        for entry in entries where entry.isFolder && isHex(entry.name, count: 2, upper: false) {
            let prefix = String(decoding: entry.name, as: UTF8.self)
            for inner in folder.entries(in: entry.name) ?? [] where !inner.isFolder {
                guard (isHex(inner.name, count: 64, upper: false) && inner.name.starts(with: entry.name)) || ConfinedFolder.isTemporaryName(inner.name),
                      let key = try? ObjectKey(prefix + "/" + String(decoding: inner.name, as: UTF8.self)) else { continue }
                _ = try? folder.removeFile(key)
            }
            if let key = try? ObjectKey(prefix), !folder.removeEmptyFolder(key) {
                left.append("\(path)/\(prefix) is kept: it holds files derive serve does not write there")
            }
        }
        if rmdir(path) != 0, errno == ENOTEMPTY { left.append("\(path) is kept: it holds files derive serve does not write there") }
        return left
    }

    /// The appendable record, only when it is what serve writes: a JSON object of
    /// `{"inode": …, "size": …}` records.
    static func removeAppendable(_ path: String) -> [String] {
        let folderPath = (path as NSString).deletingLastPathComponent
        guard let folder = try? ConfinedFolder(path: folderPath), let key = try? ObjectKey(StateFiles.serveAppendable),
              folder.kind(key) != nil else { return [] }
        struct Record: Decodable { var inode: UInt64; var size: Int64 }
        let removed = (try? folder.removeFile(key) { fd in
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while data.count <= 16 << 20 {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                data.append(contentsOf: buffer[0..<count])
            }
            return (try? JSONDecoder().decode([String: Record].self, from: data)) != nil
        }) ?? false
        return removed ? [] : ["\(path) is kept: it is not derive serve's record of appendable objects"]
    }
}
