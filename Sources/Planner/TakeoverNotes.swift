import Confinement
import Foundation
import Manifest
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// The files this user's builds took over from another project with `--overwrite`, noted in the
/// state home by the very file installed (device, inode, birth), where it lies and the manifest
/// whose build installed it. Why: the project that took a file over is asked through its build
/// state, found where the registry of built projects names it or by a bounded search; moved out of
/// the search's reach (`mv far/x/y/z/B other/q/r/B`, not built since) it was not found, and the
/// original adopted the file as a "restored copy" of its own and `clean` deleted it (attack 56a's
/// F3). The note follows the file, not the project: while that very file is there, the original
/// knows another build installed it, wherever that project went or whatever it lost.
///
/// `TAKEOVERS` in the state's token folder (0600, written whole and renamed, under the folder's
/// lock): a header, then one line a file, `took DEVICE INODE BIRTH ["PATH","MANIFEST"]`. At most
/// `maxNotes`; a note whose file is no longer that very file is dropped when the next is written.
public enum TakeoverNotes {
    static let tokenName = "takeovers"
    static let header = "derive-takeovers 1"
    static let maxNotes = 4_096

    struct Note: Equatable {
        var path: String
        var identity: FileIdentity
        var manifest: String

        var line: String {
            let pair = "[" + JSONText.string(path) + "," + JSONText.string(manifest) + "]"
            return "took \(identity.device) \(identity.inode) \(identity.birth) \(pair)\n"
        }

        static func parse(_ line: Substring) -> Note? {
            let fields = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
            guard fields.count == 5, fields[0] == "took", let device = UInt64(fields[1]), let inode = UInt64(fields[2]), let birth = Int64(fields[3]),
                  let pair = (try? JSONSerialization.jsonObject(with: Data(fields[4].utf8))) as? [String], pair.count == 2,
                  pair[0].hasPrefix("/"), pair[1].hasPrefix("/") else { return nil }
            var identity = FileIdentity(device: device, inode: inode)
            identity.birth = birth
            return Note(path: pair[0], identity: identity, manifest: pair[1])
        }
    }

    /// Notes `taken` (real paths, each with the identity of the file just installed there) as
    /// installed by `manifest`'s build. Best effort: a note not written leaves the file to the
    /// other checks, as before.
    public static func note(_ taken: [(path: String, identity: FileIdentity)], manifest: String) {
        guard !taken.isEmpty, let folder = try? StateFolderTrust.openTokenFolder(create: true) else { return }
        defer { close(folder) }
        while flock(folder, LOCK_EX) != 0, errno == EINTR {}
        defer { flock(folder, LOCK_UN) }
        let fresh = taken.map { Note(path: $0.path, identity: $0.identity, manifest: manifest) }
        // Kept: notes whose very file is still there, at a path not noted anew.
        let kept = read().filter { old in old.identity.isFile(at: old.path) && !fresh.contains { PathKey.same($0.path, old.path) } }
        let notes = (kept + fresh).suffix(maxNotes)
        try? StateFolderTrust.writeToken(header + "\n" + notes.map(\.line).joined(), name: tokenName)
    }

    static func read() -> [Note] {
        guard let data = StateFolderTrust.readToken(name: tokenName) else { return [] }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        guard lines.first == Substring(header) else { return [] }
        return lines.dropFirst().compactMap(Note.parse)
    }

    /// The manifest (not `owner`) whose build took over and installed the very file at `path`,
    /// which is still there; nil when no note says so.
    public static func taker(of path: String, besides owner: String) -> String? {
        let real = ForeignProjectFiles.realPath(path)
        return read().last { note in
            PathKey.same(note.path, real) && !PathKey.same(note.manifest, owner) && note.identity.isFile(at: path)
        }?.manifest
    }
}
