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
    /// Said in the doubt of a file while the notes cannot be read.
    public static let unreadableMarker = "which notes the files builds took over from other projects"

    struct Note: Equatable, Sendable {
        var path: String
        var identity: FileIdentity
        var manifest: String

        var line: String {
            let pair = "[" + JSONText.string(path) + "," + JSONText.string(manifest) + "]"
            return "took \(identity.device) \(identity.inode) \(identity.birth) \(pair)\n"
        }

        /// Whether the noted file may still be somewhere: it is at its path, or its folder is
        /// gone from where it was (renamed with it: `mv shared shared2`, a sync tool's moment
        /// away), and never a note whose folder is there without it (deleted, or replaced).
        /// Attack 56c's H1: a note dropped while its folder was away for a moment, and notes
        /// matched by path alone, let a renamed folder's file be adopted and deleted.
        var mayBeThere: Bool {
            if identity.isFile(at: path) { return true }
            var info = stat()
            return lstat((path as NSString).deletingLastPathComponent, &info) != 0
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

    /// What the notes file holds: its notes (none when it is not there), or why it cannot be
    /// read (then nothing is written over it, and a file it might name is doubt).
    enum Contents: Sendable {
        case notes([Note])
        case unreadable(String)
    }

    /// Notes `taken` (real paths, each with the identity of the file just installed there) as
    /// installed by `manifest`'s build. A note whose very file is still there is never dropped:
    /// when the new ones do not fit (`maxNotes`, the token's bytes), none is written. Returns a
    /// warning when this build's takeovers are not noted (the file unreadable, full, not written).
    public static func note(_ taken: [(path: String, identity: FileIdentity)], manifest: String) -> String? {
        guard !taken.isEmpty else { return nil }
        let folder: Int32
        do { folder = try StateFolderTrust.openTokenFolder(create: true) } catch { return "the takeover notes cannot be kept (\(error))" }
        defer { close(folder) }
        while flock(folder, LOCK_EX) != 0, errno == EINTR {}
        defer { flock(folder, LOCK_UN) }
        let old: [Note]
        switch read() {
        case .notes(let notes): old = notes
        case .unreadable(let why): return "the takeover notes \(path ?? tokenName) \(why): this build's takeovers are not noted; move it away (the next --overwrite build writes it anew)"
        }
        let fresh = taken.map { Note(path: $0.path, identity: $0.identity, manifest: manifest) }
        // Kept: notes whose very file may still be there, at a path not noted anew.
        let kept = old.filter { note in note.mayBeThere && !fresh.contains { PathKey.same($0.path, note.path) } }
        let notes = kept + fresh
        let text = header + "\n" + notes.map(\.line).joined()
        guard notes.count <= maxNotes, text.utf8.count <= StateFolderTrust.maxTokenBytes else {
            return "the takeover notes \(path ?? tokenName) are full (\(kept.count) files other builds took over are still there; at most \(maxNotes) notes, "
                + "\(StateFolderTrust.maxTokenBytes) bytes): this build's \(fresh.count) takeovers are not noted, and none noted before is dropped; "
                + "a note goes once its file does, so remove the taken-over files no project needs any more (or move the notes away, and their protection with them)"
        }
        do { try StateFolderTrust.writeToken(text, name: tokenName) } catch { return "the takeover notes were not written (\(error))" }
        return nil
    }

    /// Why notes for files at `paths` (real paths) cannot be written now: the notes cannot be
    /// read, or they would not fit (`note` keeps every note whose file may be there, and drops
    /// only those at a path noted anew); nil when they can. Asked before a takeover, which is
    /// refused rather than made un-noted (attack 56c's M1: a takeover past the limit went ahead
    /// with a warning, and the project it took the file from later adopted and deleted it).
    public static func cannotNote(_ paths: [String], manifest: String) -> String? {
        guard !paths.isEmpty else { return nil }
        guard path != nil else { return nil }
        let old: [Note]
        switch read() {
        case .notes(let notes): old = notes
        case .unreadable(let why): return "the takeover notes \(path ?? tokenName) \(why); move them away (the next --overwrite build writes them anew)"
        }
        let kept = old.filter { note in note.mayBeThere && !paths.contains { PathKey.same($0, note.path) } }
        // The new lines at their longest: every number at 20 digits.
        let widest = FileIdentity(device: UInt64.max, inode: UInt64.max)
        let fresh = paths.map { Note(path: $0, identity: widest, manifest: manifest) }
        let bytes = header.utf8.count + 1 + (kept + fresh).reduce(0) { $0 + $1.line.utf8.count + 20 }
        guard kept.count + fresh.count <= maxNotes, bytes <= StateFolderTrust.maxTokenBytes else {
            return "the takeover notes \(path ?? tokenName) are full (\(kept.count) files other builds took over are still there; at most \(maxNotes) notes, "
                + "\(StateFolderTrust.maxTokenBytes) bytes); a note goes once its file does, so remove the taken-over files no project needs any more"
        }
        return nil
    }

    /// Where the notes file is (nil: no state home).
    static var path: String? { ProjectRegistry.path.map { ($0 as NSString).deletingLastPathComponent + "/" + tokenName } }

    static func read() -> Contents {
        guard let folder = try? StateFolderTrust.openTokenFolder(create: false) else { return .notes([]) }
        close(folder)
        guard let notesPath = path else { return .notes([]) }
        var info = stat()
        guard lstat(notesPath, &info) == 0 else { return errno == ENOENT ? .notes([]) : .unreadable("cannot be read (\(String(cString: strerror(errno))))") }
        guard let data = StateFolderTrust.readToken(name: tokenName) else {
            return .unreadable((info.st_mode & S_IFMT) != S_IFREG ? "is not a regular file" : "cannot be read as Derive's (more than \(StateFolderTrust.maxTokenBytes) bytes, or not this user's)")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        guard lines.first == Substring(header) else { return .unreadable("does not start with '\(header)'") }
        var notes: [Note] = []
        for line in lines.dropFirst() {
            guard let note = Note.parse(line) else { return .unreadable("holds a line that is not a note (garbled or cut short)") }
            notes.append(note)
        }
        return .notes(notes)
    }

    /// The notes as read once.
    public struct Notes: Sendable {
        let contents: Contents
        public static func read() -> Notes { Notes(contents: TakeoverNotes.read()) }
    }

    /// Who took over the very file at `path` (which is still there), by the notes.
    public enum Answer: Equatable {
        /// The manifest (not the one asking) whose build took it over and installed it.
        case taker(String)
        /// The notes cannot be read: why, said as the cause (with the file's path).
        case unreadable(String)
    }

    /// The manifest (not `owner`) whose build took over and installed the very file at `path`,
    /// which is still there; nil when no note says so. From notes read once (`Notes`): a command
    /// asks of many files.
    public static func taker(of path: String, besides owner: String, in contents: Notes) -> Answer? {
        switch contents.contents {
        case .unreadable(let why): return .unreadable("the state home's takeover notes \(Self.path ?? tokenName) \(why)")
        case .notes(let notes):
            guard !notes.isEmpty, let file = FileIdentity.ofRegularFile(path) else { return nil }
            // By the very file (device, inode, birth) wherever it lies now: a folder renamed
            // since holds it under another path (attack 56c's H1).
            return notes.last { note in
                note.identity == file && !PathKey.same(note.manifest, owner) && note.identity.isFile(at: path)
            }.map { .taker($0.manifest) }
        }
    }

    /// Whether the latest note of the very file at `path` (still there) names `manifest`'s build
    /// as the one that took it over and installed it.
    public static func tookOver(_ path: String, by manifest: String, in contents: Notes) -> Bool {
        guard case .notes(let notes) = contents.contents, !notes.isEmpty, let file = FileIdentity.ofRegularFile(path),
              let latest = notes.last(where: { $0.identity == file && $0.identity.isFile(at: path) }) else { return false }
        return PathKey.same(latest.manifest, manifest)
    }

    /// The very files `manifest`'s builds took over, by identity (read once by a build, which
    /// carries each note over to the file it installs anew where one lies).
    public static func taken(by manifest: String) -> Set<FileIdentity> {
        guard case .notes(let notes) = read() else { return [] }
        return Set(notes.filter { PathKey.same($0.manifest, manifest) }.map(\.identity))
    }
}
