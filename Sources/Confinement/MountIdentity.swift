import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which mount an open folder is on. `O_NOFOLLOW` stops at a symbolic link but not at a mount
/// point: a folder below a bucket where another folder is mounted (`mount --bind src out/sub`)
/// leads out of the bucket like a link would (attack 36's finding 1). The mount id (`statx`'s
/// `STATX_MNT_ID`, Linux 5.8) tells every mount apart, a bind mount of the same file system
/// included; where the kernel has none, the device alone (which misses such a bind mount).
///
/// A walk that only goes down from a folder reaches a folder with that folder's mount id only
/// if it crossed no mount point: each mount is attached at one place, so one look at the last
/// folder of a walk tells whether any folder on the way was a mount point.
public struct MountIdentity: Hashable, Sendable {
    /// The kernel's mount id; nil when it gives none.
    public let id: UInt64?
    /// The file system's device.
    public let device: UInt64

    /// Of the open file `fd`: one `statx` (or `fstat`); nil when it fails.
    public static func of(_ fd: Int32) -> MountIdentity? {
        if let statx {
            // struct statx (the kernel's layout): stx_mask at 0, stx_dev_major at 136,
            // stx_dev_minor at 140, stx_mnt_id at 144; 256 bytes in all.
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 8)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
            if statx(fd, "", 0x1000 /* AT_EMPTY_PATH */, mountIDMask, buffer) == 0 {
                let mask = buffer.load(fromByteOffset: 0, as: UInt32.self)
                let device = UInt64(buffer.load(fromByteOffset: 136, as: UInt32.self)) << 32 | UInt64(buffer.load(fromByteOffset: 140, as: UInt32.self))
                return MountIdentity(id: mask & mountIDMask != 0 ? buffer.load(fromByteOffset: 144, as: UInt64.self) : nil, device: device)
            }
            if errno != ENOSYS { return nil }
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return MountIdentity(id: nil, device: UInt64(info.st_dev))
    }

    /// Whether the two are one mount: the same id, or where either has none, the same device.
    /// Not the device as well when both have ids: a btrfs subvolume has a device of its own on
    /// the same mount, and is no mount point. (Devices from `statx` and `fstat` are never mixed:
    /// one process uses one of them.)
    public func isSameMount(as other: MountIdentity) -> Bool {
        if let id, let otherID = other.id { return id == otherID }
        return device == other.device
    }

    /// The mount points of this process's mount namespace (`/proc/self/mountinfo`'s fifth
    /// field, its octal escapes undone); empty where there is none.
    public static func mountPoints() -> [String] {
        MountTable.current().mounts.map(\.point)
    }

    /// A mountinfo path: a space, tab, newline or backslash in it is written `\ooo` (octal).
    static func unescaped(_ field: [UInt8]) -> String {
        var bytes: [UInt8] = []
        var index = 0
        while index < field.count {
            if field[index] == UInt8(ascii: "\\"), index + 3 < field.count,
               let value = UInt8(String(decoding: field[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(field[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let mountIDMask: UInt32 = 0x1000   // STATX_MNT_ID
    private typealias Statx = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UInt32, UnsafeMutableRawPointer) -> Int32
    /// glibc's `statx` (2.28+), looked up once: Swift's Glibc module does not declare it.
    private static let statx: Statx? = dlsym(dlopen(nil, RTLD_NOW), "statx").map { unsafeBitCast($0, to: Statx.self) }
}
