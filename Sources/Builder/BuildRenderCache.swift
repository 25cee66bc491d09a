import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Planner

/// The `{hash}` renders a build finished, kept in the state folder (`build-renders/`) until they
/// are written (attack 20's C1). A `{hash}` output's name comes from its bytes, so every one is
/// rendered before anything is written (a name that is another output's refuses the build): a
/// Ctrl-C, crash or OOM kill during that phase used to throw every finished render away. Each
/// render is kept here as it finishes, so the next build of the same derivative reads it instead
/// of rendering it again; it goes once its output is written and recorded, and a build drops the
/// renders its plan no longer asks for.
///
/// An entry is named by the derivative's action key (64 hex) and holds one line,
/// `derive-render/1 <SHA-256 of the bytes> <width> <height> <format> <seal>`, then the bytes. The
/// seal is an HMAC under the user's secret (`StateSeals`): the state folder may come from
/// elsewhere (a committed `.derive/`, a tarball), and an entry Derive did not write would put
/// someone else's bytes under a `{hash}` name. An entry whose seal does not hold is never used,
/// and never removed either: with `state: .` (or `state:` naming a user's folder) a file of the
/// user's may have an entry's name, and the seal is the only proof Derive wrote one (attack 9's
/// finding 1). An entry whose seal holds but whose digest does not (cut short) is Derive's, and
/// removed. Nothing is ever written over a file already there. The folder is the user's own
/// (0700, never a link); otherwise nothing is kept. In size the entries stay within a quarter of the free space of the state folder's file
/// system when the build started, and at most 4 GiB (a cache that fills the disk would make the
/// state's own writes fail: attack 20's D2); renders past that are not kept.
final class BuildRenderCache: @unchecked Sendable {
    static let maxBytes: Int64 = 4 << 30
    private let folder: Int32
    private let seals: StateSeals
    let limit: Int64
    private let lock = NSLock()
    private var total: Int64 = 0
    private var sizes: [String: Int64] = [:]

    /// The cache in `stateFolder`, made when `create`; nil when there is none, or the folder is
    /// not safe to read (a link, another user's, writable by others) or cannot be made.
    init?(stateFolder: String, seals: StateSeals?, create: Bool) {
        guard let seals, !stateFolder.isEmpty else { return nil }
        let state = open(stateFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard state >= 0 else { return nil }
        defer { close(state) }
        if create, mkdirat(state, StateFiles.buildRenders, 0o700) != 0, errno != EEXIST { return nil }
        let fd = openat(state, StateFiles.buildRenders, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else { close(fd); return nil }
        var space = statvfs()
        let free = fstatvfs(fd, &space) == 0 ? Int64(space.f_bavail) * Int64(space.f_frsize) : 0
        folder = fd
        self.seals = seals
        limit = min(Self.maxBytes, free / 4)
    }

    deinit { close(folder) }

    static func isKey(_ name: String) -> Bool {
        name.utf8.count == 64 && name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// An entry's name, or one of the temporaries entries are written under: the only names
    /// removed, and only when `removeIfSealed` finds Derive's seal in them.
    static func isOurs(_ name: String) -> Bool {
        if isKey(name) { return true }
        guard name.hasPrefix("."), name.hasSuffix(".tmp") else { return false }
        return isKey(String(name.dropFirst().prefix(64)))
    }

    /// Removes every entry whose action key is not in `keys` (a derivative no longer planned, a
    /// temporary a killed build left), and counts the others' bytes against the limit. Only
    /// names of those shapes are removed, and only when sealed by this user's Derive.
    func keepOnly(_ keys: Set<String>) {
        let listing = dup(folder)
        guard listing >= 0, let directory = fdopendir(listing) else { if listing >= 0 { close(listing) }; return }
        defer { closedir(directory) }
        var removals: [String] = []
        var kept: [String: Int64] = [:]
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if Self.isKey(name), keys.contains(name) { kept[name] = Int64(info.st_size) } else if Self.isOurs(name) { removals.append(name) }
        }
        for name in removals { _ = Self.removeIfSealed(name, in: folder, seals: seals) }
        lock.withLock {
            sizes = kept
            total = kept.values.reduce(0, +)
        }
    }

    /// The action keys held now (after `keepOnly`, before this build stores any: what earlier
    /// builds kept).
    func keys() -> Set<String> { lock.withLock { Set(sizes.keys) } }

    /// Every entry removed (no `{hash}` output is planned).
    func removeAll() { keepOnly([]) }

    private func header(key: String, digest: String, width: Int, height: Int, format: String) -> String {
        Self.header(key: key, digest: digest, width: width, height: height, format: format, seals: seals)
    }

    static func header(key: String, digest: String, width: Int, height: Int, format: String, seals: StateSeals) -> String {
        let seal = seals.seal(detached: ["build-render", key, digest, String(width), String(height), format])
        return "derive-render/1 \(digest) \(width) \(height) \(format) \(seal.map { String(format: "%02x", $0) }.joined())\n"
    }

    /// Removes the entry (or temporary) `name` from the folder `folder` only when its first line is
    /// the header this user's Derive seals for its action key: the proof that Derive wrote it. A
    /// file without one (a user's, named like an entry in `state: .`) is left; the name removed is
    /// the very file checked (device and inode compared just before). Whether it went.
    @discardableResult
    static func removeIfSealed(_ name: String, in folder: Int32, seals: StateSeals) -> Bool {
        guard isOurs(name) else { return false }
        let key = isKey(name) ? name : String(name.dropFirst().prefix(64))
        let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_nlink == 1 else { return false }
        var head = [UInt8](repeating: 0, count: 512)
        let count = pread(fd, &head, head.count, 0)
        guard count > 0, let newline = head[..<count].firstIndex(of: 0x0A) else { return false }
        let line = String(decoding: head[...newline], as: UTF8.self)
        let fields = line.dropLast().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6, fields[0] == "derive-render/1", let width = Int(fields[2]), let height = Int(fields[3]),
              header(key: key, digest: fields[1], width: width, height: height, format: fields[4], seals: seals) == line else { return false }
        var now = stat()
        guard fstatat(folder, name, &now, AT_SYMLINK_NOFOLLOW) == 0, now.st_ino == info.st_ino, now.st_dev == info.st_dev else { return false }
        return unlinkat(folder, name, 0) == 0
    }

    /// The render kept for `key` and its bytes' SHA-256, when its seal and digest hold; an entry
    /// that does not is not used, and removed only when its header is sealed (`removeIfSealed`).
    func load(_ key: String) -> (rendered: Rendered, digest: String)? {
        guard Self.isKey(key), lock.withLock({ sizes[key] != nil }) else { return nil }
        let fd = openat(folder, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { forget(key); return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int64(info.st_size) <= limit + 4096 else { close(fd); remove(key); return nil }
        var data = Data(count: Int(info.st_size))
        let count = data.withUnsafeMutableBytes { raw -> Int in
            var done = 0
            while done < raw.count {
                let read = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(done))
                if read <= 0 { break }
                done += read
            }
            return done
        }
        close(fd)
        guard count == data.count, let newline = data.firstIndex(of: 0x0A), newline < 512 else { remove(key); return nil }
        let fields = String(decoding: data[..<newline], as: UTF8.self).split(separator: " ").map(String.init)
        let bytes = Data(data[(newline + 1)...])
        guard fields.count == 6, fields[0] == "derive-render/1", let width = Int(fields[2]), let height = Int(fields[3]),
              header(key: key, digest: fields[1], width: width, height: height, format: fields[4]) == String(decoding: data[...newline], as: UTF8.self),
              ContentDigests.digest(bytes) == fields[1] else {
            remove(key)
            return nil
        }
        return (Rendered(bytes: bytes, width: width, height: height, format: fields[4]), fields[1])
    }

    /// Keeps a finished render (written whole under a temporary name, then renamed to its key
    /// only while nothing has that name: a file there is never replaced), unless it would take
    /// the cache past its limit.
    func store(_ key: String, rendered: Rendered, digest: String) {
        guard Self.isKey(key), !rendered.format.contains(" "), !rendered.format.contains("\n") else { return }
        var entry = Data(header(key: key, digest: digest, width: rendered.width, height: rendered.height, format: rendered.format).utf8)
        entry.append(rendered.bytes)
        let size = Int64(entry.count)
        let room = lock.withLock { () -> Bool in
            guard sizes[key] == nil, total + size <= limit else { return false }
            sizes[key] = size
            total += size
            return true
        }
        guard room else { return }
        let temporary = ".\(key).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { forget(key); return }
        let written = entry.withUnsafeBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let count = write(fd, raw.baseAddress! + done, raw.count - done)
                if count <= 0 { return false }
                done += count
            }
            return true
        }
        close(fd)
        guard written, Self.placeNoReplace(folder, temporary, key) else {
            _ = unlinkat(folder, temporary, 0)
            forget(key)
            return
        }
    }

    /// Renames `temporary` to `key` unless a file has that name (`RENAME_NOREPLACE`; where the
    /// file system has no such rename, only when nothing is there just before).
    static func placeNoReplace(_ folder: Int32, _ temporary: String, _ key: String) -> Bool {
        if Renaming.rename(folder, temporary, folder, key, flags: Renaming.noReplace) == 0 { return true }
        guard errno == EINVAL || errno == ENOSYS else { return false }
        var info = stat()
        guard fstatat(folder, key, &info, AT_SYMLINK_NOFOLLOW) != 0, errno == ENOENT else { return false }
        return renameat(folder, temporary, folder, key) == 0
    }

    /// Drops the entry (its output was written and recorded, or it did not hold): removed only
    /// when it is sealed as Derive's, never used again either way.
    func remove(_ key: String) {
        guard Self.isKey(key) else { return }
        Self.removeIfSealed(key, in: folder, seals: seals)
        forget(key)
    }

    private func forget(_ key: String) {
        lock.withLock { if let size = sizes.removeValue(forKey: key) { total -= size } }
    }

    /// Removes the folder and the entries sealed by this user's Derive (`derive clean`; without
    /// `seals`, none); returns the names of the entries kept (empty when the folder went, or
    /// was not there).
    static func removeFolder(inStateFolder stateFolder: String, seals: StateSeals?) -> [String] {
        let state = open(stateFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard state >= 0 else { return [] }
        defer { close(state) }
        let fd = openat(state, StateFiles.buildRenders, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        var names: [String] = []
        if let directory = fdopendir(fd) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if name != ".", name != ".." { names.append(name) }
            }
            let kept = names.filter { name in !(seals.map { removeIfSealed(name, in: fd, seals: $0) } ?? false) }
            closedir(directory)
            _ = unlinkat(state, StateFiles.buildRenders, AT_REMOVEDIR)
            return kept.sorted()
        }
        close(fd)
        return []
    }
}
