import Confinement
import Foundation
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// Which folders on the way to a state folder Derive made (attack 37b's F9: `state: /abs/home`,
/// where the user had made `home/` before the first build, and `clean` removed it). Noted when
/// they are made (`StateFolderTrust.makeFolder`), beside the user's state secret and outside the
/// project (`<key>.folders`, one line a folder: `made DEVICE INODE BIRTH "PATH"`), so `clean`
/// removes only those, once empty, and only while each is the very folder made (device, inode and
/// birth): a folder the user made, or made again after Derive's was deleted, is theirs.
public enum StateFolderMade {
    struct Made: Equatable {
        var path: String
        var identity: FileIdentity
        var birth: Int64

        var line: String { "made \(identity.device) \(identity.inode) \(birth) \(JSONText.string(path))\n" }

        /// Whether the folder at `path` is still the one made.
        var isThere: Bool {
            guard let now = FileIdentity.ofFolder(path), now == identity else { return false }
            return birth == 0 || FileBirth.of(path) == birth
        }

        static func of(_ path: String) -> Made? {
            FileIdentity.ofFolder(path).map { Made(path: path, identity: $0, birth: FileBirth.of(path) ?? 0) }
        }

        static func parse(_ line: Substring) -> Made? {
            let fields = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
            guard fields.count == 5, fields[0] == "made", let device = UInt64(fields[1]), let inode = UInt64(fields[2]), let birth = Int64(fields[3]),
                  let path = (try? JSONSerialization.jsonObject(with: Data(fields[4].utf8), options: .fragmentsAllowed)) as? String else { return nil }
            return Made(path: path, identity: FileIdentity(device: device, inode: inode), birth: birth)
        }
    }

    /// The token file's name for the state folder `folder` (its real path while it is there).
    static func name(forState folder: String) -> String {
        StateBinding.key(forState: folder + "/" + StateFiles.database).key + ".folders"
    }

    /// The note of the folder at `path` as it was before this process made that folder (a build
    /// makes its state folder before it plans): the folder Derive made there earlier, which a
    /// copy's folder is told from (`ForeignRecordedOutputs.isCopyOfOwnState`; attack 56b's M2:
    /// plan refused, and the build, having noted its new folder, adopted).
    static func madeBefore(_ path: String, stateFolder folder: String) -> Made? {
        if let kept = beforeThisProcess.kept(path) { return kept }
        return read(name: name(forState: folder)).last { PathKey.same($0.path, path) }
    }
    private static let beforeThisProcess = Before()

    private final class Before: @unchecked Sendable {
        private let lock = NSLock()
        private var notes: [String: Made?] = [:]
        func keep(_ path: String, _ made: Made?) { lock.withLock { if notes[path] == nil { notes[path] = .some(made) } } }
        func kept(_ path: String) -> Made?? { lock.withLock { notes[path] } }
    }

    static func read(name: String) -> [Made] {
        guard let data = StateFolderTrust.readToken(name: name) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap(Made.parse)
    }

    /// Notes `made` (real paths, outermost first), just made on the way to the state folder
    /// `folder`, with the notes before it whose folders are still the ones made. Best effort: a
    /// folder not noted is kept by `clean` (and named), never removed on a guess.
    static func note(_ made: [String], stateFolder folder: String) {
        let name = name(forState: folder)
        let previous = read(name: name)
        // What was noted of each folder before this process made it again (first time only).
        for path in made { beforeThisProcess.keep(path, previous.last { PathKey.same($0.path, path) }) }
        let kept = previous.filter { old in old.isThere && !made.contains(old.path) }
        let lines = (kept + made.compactMap(Made.of)).map(\.line).joined()
        try? StateFolderTrust.writeToken(lines, name: name)
    }

    /// What `clean` does with the state folder once its own files are gone: the folders Derive
    /// made on the way to it (the state folder and the ones above it), still the ones made,
    /// deepest first, are removed when empty (`rmdir`: never recursively); the note goes once none
    /// of them is left. Returns whether the state folder itself was one Derive made.
    public static func removeEmpty(stateFolder folder: String) -> Bool {
        let name = name(forState: folder)
        let made = read(name: name).filter(\.isThere)
        let real = RealFolder.of(folder)
        let madeState = made.contains { $0.path == real }
        // Deepest first: only the state folder and the folders above it, never one below.
        for entry in made.sorted(by: { $0.path.utf8.count > $1.path.utf8.count })
        where entry.path == real || real.hasPrefix(entry.path == "/" ? "/" : entry.path + "/") {
            _ = rmdir(entry.path)
        }
        let left = made.filter(\.isThere)
        if left.isEmpty { StateFolderTrust.removeToken(name: name) } else if left != made { try? StateFolderTrust.writeToken(left.map(\.line).joined(), name: name) }
        return madeState
    }
}
