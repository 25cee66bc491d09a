import Confinement
import Foundation
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// The no-op witness keeps the mount points old outputs are kept behind as it keeps symbolic
/// links (atk37b's leftover of finding 7: with only links kept, no witness was ever saved while
/// a mount point hid old outputs, so every run made a full plan). Each is a `^"path" TOKEN`
/// line, TOKEN naming the mount now there (`mountToken`): the witness holds only while the same
/// mount is at that path, so the run after it goes (or another is mounted there) plans, and
/// deletes Derive's files the mount hid.
extension NoOpWitness {
    static let mountPrefix = UInt8(ascii: "^")

    /// The mount at `path`, when `path` is a mount point: its mount id and device, and the
    /// device and inode of the folder there (`MountIdentity`); nil when it is none, or cannot be opened.
    static func mountToken(_ path: String) -> String? {
        guard MountIdentity.mountPoints().contains(path) else { return nil }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard let mount = MountIdentity.of(fd), fstat(fd, &info) == 0 else { return nil }
        return "\(mount.id.map(String.init) ?? "-"):\(mount.device):\(info.st_dev):\(info.st_ino)"
    }

    /// The witness's line for each place old outputs are kept behind (a link or a mount point),
    /// sorted; nil when one is neither now (no witness: the next run plans).
    static func keptPlaceLines(_ places: [String]) -> [String]? {
        var lines: [String] = []
        for place in places.sortedByBytes() {
            if isSymbolicLink(place) {
                lines.append("@" + JSONText.string(place))
            } else if let token = mountToken(place) {
                lines.append("^" + JSONText.string(place) + " " + token)
            } else {
                return nil
            }
        }
        return lines
    }

    /// `^"path" TOKEN` → (path, token); nil when the line is not of that shape.
    static func mountEntry(_ line: ArraySlice<UInt8>) -> (path: String, token: String)? {
        guard line.first == mountPrefix, let space = line.lastIndex(of: 0x20), space > line.startIndex + 1,
              let path = unquote(line[(line.startIndex + 1)..<space]) else { return nil }
        let token = String(decoding: line[(space + 1)...], as: UTF8.self)
        return token.isEmpty ? nil : (path, token)
    }

    /// Whether each kept place is still what it was when saved: a link still a link, a mount
    /// point still the same mount.
    static func keptPlacesHold(_ saved: Saved) -> Bool {
        saved.links.allSatisfy { place in saved.mounts[place].map { mountToken(place) == $0 } ?? isSymbolicLink(place) }
    }
}
