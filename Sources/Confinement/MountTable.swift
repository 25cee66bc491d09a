import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The mounts of this process's mount namespace, as `/proc/self/mountinfo` lists them: what
/// each shows (its file system's device and the folder of it at its root) and where.
///
/// Real paths alone miss files shared through a bind mount: a bucket folder that is a bind
/// mount of a folder inside another bucket (attack 36c's H1) has a real path of its own. Its
/// place — the device and the path on that device — is the same as the other's folder.
public struct MountTable: Sendable {
    public struct Mount: Sendable {
        /// The kernel's mount id (what `statx` gives as `STATX_MNT_ID`).
        public let id: UInt64
        /// The file system's device, `major:minor`.
        public let device: String
        /// The folder of the file system shown at the mount point.
        public let root: String
        /// Where it is mounted.
        public let point: String
    }

    /// Where a file lies on its file system, whatever mount shows it.
    public struct Place: Hashable, Sendable {
        public let device: String
        public let path: String

        /// Whether `other` is this folder or lies below it.
        public func holds(_ other: Place) -> Bool {
            device == other.device && MountTable.rest(of: other.path, below: path) != nil
        }
    }

    public let mounts: [Mount]

    /// The table now, at most 1 MiB of it read; empty where there is none (no /proc). Read once
    /// per `ReadSnapshot` (a no-op near 64 sibling projects read it 129 times).
    public static func current() -> MountTable {
        ReadSnapshot.answer("mount table", "") { readNow() }
    }

    /// `current()` read now.
    static func readNow() -> MountTable {
        // Read to its end: /proc gives its files no size for `readAll` to trust.
        let fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return MountTable(mounts: []) }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while data.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 { if errno == EINTR { continue }; return MountTable(mounts: []) }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return MountTable(mounts: data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            // "36 35 98:0 /mnt1 /mnt2 rw,noatime ...": id, parent id, device, root, mount point.
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard fields.count > 4, let id = UInt64(String(decoding: fields[0], as: UTF8.self)) else { return nil }
            return Mount(id: id, device: String(decoding: fields[2], as: UTF8.self),
                         root: MountIdentity.unescaped(Array(fields[3])), point: MountIdentity.unescaped(Array(fields[4])))
        })
    }

    /// The place of a real path (no link on it; its end need not exist yet): the mount that
    /// shows it — the one its deepest existing folder is on, by mount id, or where the kernel
    /// gives none, the last-mounted of the longest mount points holding it — its device, and
    /// its root joined with the rest of the path. Nil when no mount holds it.
    public func place(of path: String) -> Place? {
        let holding = mounts.filter { Self.rest(of: path, below: $0.point) != nil }
        var mount = holding.last { candidate in holding.allSatisfy { $0.point.utf8.count <= candidate.point.utf8.count } }
        if let id = Self.mountID(of: path), let exact = holding.last(where: { $0.id == id }) { mount = exact }
        guard let mount, let rest = Self.rest(of: path, below: mount.point) else { return nil }
        return Place(device: mount.device, path: rest.isEmpty ? mount.root : (mount.root == "/" ? "/" : mount.root + "/") + rest)
    }

    /// The path after `folder` ("" when it is the folder), on bytes and whole names: nil when
    /// the path is not at or below it (`/a/bc` is not below `/a/b`).
    static func rest(of path: String, below folder: String) -> String? {
        if path.utf8.elementsEqual(folder.utf8) { return "" }
        let prefix = Array((folder == "/" ? "/" : folder + "/").utf8), bytes = Array(path.utf8)
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        return String(decoding: bytes[prefix.count...], as: UTF8.self)
    }

    /// `O_PATH` (Linux's generic value, x86-64 and arm64 included): a look at where a file is
    /// needs no permission to read it. Swift's Glibc module does not export the name.
    private static let openPathOnly: Int32 = 0o10000000

    /// The mount id of the deepest existing folder on `path`; nil where the kernel gives none.
    static func mountID(of path: String) -> UInt64? {
        var probe = path
        while true {
            let fd = open(probe, openPathOnly | O_CLOEXEC)
            if fd >= 0 { defer { close(fd) }; return MountIdentity.of(fd)?.id }
            guard probe != "/", !probe.isEmpty else { return nil }
            probe = (probe as NSString).deletingLastPathComponent
        }
    }
}
