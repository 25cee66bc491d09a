import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `derive clean` removes of `derive serve`'s files in a state folder: the multipart
/// uploads in progress (`serve-uploads/`), the render cache (`serve-cache/`) and the record of
/// appendable objects (`serve-appendable.json`). Only names in the exact shapes serve writes are
/// removed, one file at a time through `ConfinedFolder` (never through a link, never
/// recursively); a folder goes only once that leaves it empty. Anything else is left and named.
/// With `state: .` (or `state:` naming a user's folder) a name proves nothing, so each file must
/// also hold what serve writes (attack 9's finding 6): a cache entry its header line and the MD5
/// of its body that line states, an appendable record at least one record.
///
/// Every folder is opened from its parent's descriptor with `O_NOFOLLOW | O_DIRECTORY`, the
/// state folder's own `serve-cache` and `serve-uploads` too: a link there (to a cache two
/// projects share, say) is kept and named, and nothing where it points is touched.
///
/// `serve-metadata.sqlite` is kept: it holds the headers of objects uploaded through serve, and
/// those objects stay in their buckets after `clean`.
public enum ServeStateCleanup {
    /// Removes serve's files from `stateFolder`; returns what was left, with why.
    ///
    /// Under `serve.lock` (`ServeLockFile`, created when absent and removed at the end): while a
    /// serve holds it, its uploads in progress, render cache and records are all kept and the
    /// message says so (attack 12, finding 2: clean deleted a running serve's uploads), and no
    /// serve starts while clean removes them.
    ///
    /// `md5` hashes a cache entry's body, to check it against the MD5 its header states (this
    /// module has no MD5 of its own): see `isCacheEntry`.
    /// What the line `remove` returns while a serve holds `serve.lock` says: the line names that
    /// file, and the state folder's line refers to it for serve's files (`CleanKeptState`).
    public static let serveRunning = "a derive serve is running on this state folder"

    public static func remove(in stateFolder: String, md5: (Data) -> [UInt8]) -> [String] {
        let isCacheEntry = { (fd: Int32) in Self.isCacheEntry(fd, md5: md5) }
        guard let state = try? ConfinedFolder(path: stateFolder) else { return [] }
        var left: [String] = []
        let lock: ServeLockFile?
        do { lock = try ServeLockFile(folder: stateFolder, note: ServeLockFile.cleanNote) } catch let failure {  // typed throws: always a ServeLockFile.Failure
            switch failure {
            case .held(let holder, _):
                let present = [StateFiles.serveUploads, StateFiles.serveCache, StateFiles.serveAppendable].filter {
                    (try? ObjectKey($0)).flatMap { state.kind($0) } != nil
                }
                let what = present.isEmpty ? "" : " (kept: \(present.joined(separator: ", ")))"
                return ["\(state.path)/\(StateFiles.serveLock) is kept, and so are serve's uploads in progress, render cache and records\(what): \(Self.serveRunning) (\(holder)); stop it and run clean again to remove them"]
            case .notDerives:
                // No serve can run with that file there (it refuses it too): the rest is removed.
                left.append("\(failure)")
                lock = nil
            }
        }
        left += removeUploads(in: state)
        left += removeCache(in: state, isCacheEntry: isCacheEntry)
        left += removeAppendable(in: state)
        lock?.remove()
        return left
    }

    static func isHex(_ name: [UInt8], count: Int, upper: Bool) -> Bool {
        name.count == count && name.allSatisfy { (48...57).contains($0) || (upper ? (65...70).contains($0) : (97...102).contains($0)) }
    }

    /// What an entry clean keeps is, in the words of its message.
    public static func describe(_ kind: ConfinedFolder.EntryKind) -> String {
        switch kind {
        case .symbolicLink: return "a symbolic link, which clean never follows (nothing where it points was touched)"
        case .other: return "a FIFO, socket or device"
        case .folder: return "a folder derive serve does not write there"
        case .file: return "a file derive serve does not write there"
        }
    }

    /// Names of kept entries, for one message: the first five and how many more.
    public static func names(_ kept: [String]) -> String {
        let sorted = kept.sorted()
        return sorted.prefix(5).joined(separator: ", ") + (sorted.count > 5 ? " and \(sorted.count - 5) more" : "")
    }

    /// Serve's folder `name` in the state folder, opened from the state folder's descriptor
    /// without following a link; whatever else stands there is kept and named in `left`.
    static func openServeFolder(_ name: String, in state: ConfinedFolder, left: inout [String]) -> ConfinedFolder? {
        let path = state.path + "/" + name
        guard let key = try? ObjectKey(name), let kind = state.kind(key) else { return nil }
        guard kind == .folder else {
            var what = describe(kind)
            if kind == .symbolicLink, let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                what = "a symbolic link to \(target), which clean never follows (nothing there was touched)"
            } else if kind == .file {
                what = "a file, not the folder derive serve writes"
            }
            left.append("\(path) is kept: it is \(what)")
            return nil
        }
        do { return try ConfinedFolder(subfolder: name, of: state) } catch {
            // Replaced by a link (or removed) since it was looked at.
            if case .notFound = error { return nil }
            left.append("\(path) is kept: \(error)")
            return nil
        }
    }

    /// Removes the folder `name` of `parent` when it is empty; otherwise `kept` names why not.
    static func removeFolder(_ name: String, of parent: ConfinedFolder, kept: [String], left: inout [String]) {
        guard let key = try? ObjectKey(name), !parent.removeEmptyFolder(key), parent.kind(key) == .folder else { return }
        let path = parent.path + "/" + name
        left.append(kept.isEmpty ? "\(path) is kept: entries were added to it while clean ran"
                                 : "\(path) is kept: it holds \(names(kept)), which derive serve does not write there (a link, a file with a second name, or a file that does not hold what serve writes there, is never removed)")
    }

    /// `serve-uploads/<32 upper-case hex>/{upload.json, part-NNNNN, temporaries}` and staged
    /// appends `serve-uploads/append-<16 hex>` (and their temporaries). An upload folder goes
    /// only when its upload.json parses as serve's record (or is gone); parts, temporaries and
    /// staged appends only as regular files with one link. Every entry kept is named.
    static func removeUploads(in state: ConfinedFolder) -> [String] {
        var left: [String] = []
        guard let uploads = openServeFolder(StateFiles.serveUploads, in: state, left: &left), let entries = uploads.allEntries() else { return left }
        let before = left.count
        for (bytes, kind) in entries {
            let name = String(decoding: bytes, as: UTF8.self)
            let path = uploads.path + "/" + name
            switch kind {
            case .folder where isHex(bytes, count: 32, upper: true):
                if let kept = removeUpload(name, in: uploads) { left.append(kept) }
            case .folder:
                left.append("\(path) is kept: it is not an upload of derive serve (serve names its uploads with 32 upper-case hex digits)")
            case .file where isStagedAppend(name) || ConfinedFolder.isTemporaryName(bytes):
                guard removeStagedFile(name, in: uploads) else {
                    left.append("\(path) is kept: it is not a file derive serve staged (a regular file with one link)")
                    continue
                }
            case .file, .symbolicLink, .other:
                left.append("\(path) is kept: it is \(describe(kind))")
            }
        }
        if left.count == before, let key = try? ObjectKey(StateFiles.serveUploads), !state.removeEmptyFolder(key), state.kind(key) == .folder {
            left.append("\(uploads.path) is kept: entries were added to it while clean ran")
        } else if left.count > before, let key = try? ObjectKey(StateFiles.serveUploads) {
            _ = state.removeEmptyFolder(key)
        }
        return left
    }

    /// One upload folder; nil when it went, else why it is kept.
    static func removeUpload(_ name: String, in uploads: ConfinedFolder) -> String? {
        let path = uploads.path + "/" + name
        guard let upload = try? ConfinedFolder(subfolder: name, of: uploads), let inner = upload.allEntries() else {
            return "\(path) is kept: it could not be opened without following a link"
        }
        // A folder whose upload.json is not serve's record is not serve's upload: kept whole.
        let record = try! ObjectKey("upload.json")
        if upload.kind(record) != nil, (try? upload.removeFile(record, if: isUploadRecord)) != true {
            return "\(path) is kept: its upload.json is not derive serve's record of an upload"
        }
        var kept: [String] = []
        for (bytes, kind) in inner {
            let innerName = String(decoding: bytes, as: UTF8.self)
            if innerName == "upload.json", kind == .file { continue }   // removed above
            let isPart = innerName.hasPrefix("part-") && innerName.utf8.count == 10 && innerName.utf8.dropFirst(5).allSatisfy { (48...57).contains($0) }
            guard kind == .file, isPart || ConfinedFolder.isTemporaryName(bytes), let key = try? ObjectKey(innerName),
                  (try? upload.removeFile(key, if: hasOneLink)) == true else {
                kept.append(kind == .symbolicLink ? innerName + " (a symbolic link)" : innerName)
                continue
            }
        }
        var left: [String] = []
        removeFolder(name, of: uploads, kept: kept, left: &left)
        return left.first
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

    /// At serve's start (under `serve.lock`, so no other serve is appending): the staged appends
    /// (`append-<hex>`, regular files with one link) a stopped serve left in `uploads`. Returns the
    /// names removed; anything else is left alone.
    public static func removeStagedAppends(in uploads: ConfinedFolder) -> [String] {
        var removed: [String] = []
        for (bytes, kind) in uploads.allEntries() ?? [] where kind == .file {
            let name = String(decoding: bytes, as: UTF8.self)
            guard isStagedAppend(name), removeStagedFile(name, in: uploads) else { continue }
            removed.append(name)
        }
        return removed.sorted()
    }

    /// Removes `name` from `uploads` when it is a regular file with one link (what serve
    /// stages there); whether it went.
    static func removeStagedFile(_ name: String, in uploads: ConfinedFolder) -> Bool {
        guard let key = try? ObjectKey(name) else { return false }
        return (try? uploads.removeFile(key, if: hasOneLink)) == true
    }

    /// `append-` and 16 lower-case hex digits (8 random bytes): exactly the names serve stages under.
    static func isStagedAppend(_ name: String) -> Bool {
        guard name.hasPrefix("append-") else { return false }
        return isHex(Array(name.utf8.dropFirst(7)), count: 16, upper: false)
    }

    /// The content types serve's render cache stores (`RenderCache`): the first word of an entry.
    public static let cacheContentTypes: Set<String> = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff",
                                                        "image/heic", "image/avif", "application/json"]

    /// Whether the open file `fd` is a render cache entry as serve writes it: a first line
    /// `<content type> <MD5 of the body, 32 lower-case hex>`, then the body, whose MD5 is that.
    /// A user's file with an entry's name holds no such line (attack 9's finding 6).
    static func isCacheEntry(_ fd: Int32, md5: (Data) -> [UInt8]) -> Bool {
        // The folder's bounded whole-file read (it refuses a file over the bound unread).
        guard let data = try? ConfinedFolder.readAll(fd, key: "", maxBytes: Int(UInt32.max)), let newline = data.prefix(128).firstIndex(of: 0x0A) else { return false }
        let line = String(decoding: data[..<newline], as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard line.count == 2, cacheContentTypes.contains(String(line[0])), isHex(Array(line[1].utf8), count: 32, upper: false) else { return false }
        let stated = line[1]
        return md5(Data(data[(newline + 1)...])).map { String(format: "%02x", $0) }.joined() == stated
    }

    /// `serve-cache/<2 hex>/<64 hex>` entries that `isCacheEntry` finds serve wrote (and their
    /// temporaries). Every entry kept is named.
    static func removeCache(in state: ConfinedFolder, isCacheEntry: (Int32) -> Bool) -> [String] {
        var left: [String] = []
        guard let cache = openServeFolder(StateFiles.serveCache, in: state, left: &left), let entries = cache.allEntries() else { return left }
        for (bytes, kind) in entries {
            let prefix = String(decoding: bytes, as: UTF8.self)
            guard kind == .folder, isHex(bytes, count: 2, upper: false) else {
                left.append("\(cache.path)/\(prefix) is kept: it is \(describe(kind))")
                continue
            }
            guard let folder = try? ConfinedFolder(subfolder: prefix, of: cache), let inner = folder.allEntries() else {
                left.append("\(cache.path)/\(prefix) is kept: it could not be opened without following a link")
                continue
            }
            var kept: [String] = []
            for (innerBytes, innerKind) in inner {
                let innerName = String(decoding: innerBytes, as: UTF8.self)
                let isEntry = isHex(innerBytes, count: 64, upper: false) && innerBytes.starts(with: bytes)
                guard innerKind == .file, isEntry || ConfinedFolder.isTemporaryName(innerBytes), let key = try? ObjectKey(innerName),
                      (try? folder.removeFile(key, if: { fd in !isEntry || isCacheEntry(fd) })) == true else {
                    kept.append(innerKind == .symbolicLink ? innerName + " (a symbolic link)" : innerName)
                    continue
                }
            }
            removeFolder(prefix, of: cache, kept: kept, left: &left)
        }
        if let key = try? ObjectKey(StateFiles.serveCache) { _ = state.removeEmptyFolder(key) }
        return left
    }

    /// The appendable record, only when it is what serve writes: a regular file holding a JSON
    /// object of `{"inode": …, "size": …}` records, at least one (`{}` proves nothing: anyone's
    /// file may hold it).
    static func removeAppendable(in state: ConfinedFolder) -> [String] {
        let path = state.path + "/" + StateFiles.serveAppendable
        guard let key = try? ObjectKey(StateFiles.serveAppendable), let kind = state.kind(key) else { return [] }
        guard kind == .file else { return ["\(path) is kept: it is \(describe(kind))"] }
        struct Record: Decodable { var inode: UInt64; var size: Int64 }
        let removed = (try? state.removeFile(key) { fd in
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while data.count <= 16 << 20 {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                data.append(contentsOf: buffer[0..<count])
            }
            return ((try? JSONDecoder().decode([String: Record].self, from: data))?.isEmpty ?? true) == false
        }) ?? false
        return removed ? [] : ["\(path) is kept: it is not derive serve's record of appendable objects"]
    }
}
