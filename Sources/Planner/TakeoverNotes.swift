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
/// lock): a header, then one line a file, `took DEVICE INODE BIRTH ["PATH","MANIFEST","MDEV MINO MBIRTH"]`
/// (the manifest file's own identity third, then `"SIZE SHA256"`, the installed bytes), or
/// `taking DEVICE INODE BIRTH [...]` while a build makes it. At most
/// `maxNotes`; a note whose file is no longer that very file is dropped when the next is written.
public enum TakeoverNotes {
    static let tokenName = "takeovers"
    static let header = "derive-takeovers 1"
    static let maxNotes = 4_096
    /// Said in the doubt of a file while the notes cannot be read.
    public static let unreadableMarker = "which notes the files builds took over from other projects"

    struct Note: Equatable, Sendable {
        var path: String
        /// The file installed; none (zeros) for a takeover still being made (`pending`).
        var identity: FileIdentity
        var manifest: String
        /// The manifest's own file (device, inode, birth) when it was noted; nil in an older
        /// note. Attack 57a's 3: a note naming the taker by path alone made another project moved
        /// to that path (`mv B B2; mv A B`) the taker: it adopted the file and `clean` deleted it.
        var manifestFile: FileIdentity? = nil
        /// A takeover an `--overwrite` build is about to make (`taking`), noted before it writes
        /// anything and replaced by the installed file's note when it ends: a build killed between
        /// its install and its note, or whose note could not be written, left the file un-noted
        /// (attack 57a's 1 and 2). It matches whatever file has its name in that very folder
        /// (`folder`), renamed or not (57b's 2: a folder renamed after the kill lost the
        /// protection), or is at its path, unless that is still the file it was taking over
        /// (`identity`: the taker never replaced it; 57b's 5: a killed taker's pending notes made
        /// the site's own files doubt for ever).
        var pending = false
        /// The folder (device, inode) the file was taken over in (nil in an older note).
        var folder: FileIdentity? = nil
        /// The bytes installed (size and SHA-256; nil in an older note): a file at the note's path
        /// holding them, the very file gone, is a copy of the taker's (restored from a backup,
        /// `cp -a`; attack 57b's 4: the original adopted such a copy as its own and deleted it).
        var bytes: Bytes? = nil

        struct Bytes: Equatable, Sendable {
            var size: Int64
            var sha256: String
        }

        /// `taking D I B [PATH, MANIFEST, MID, FOLDER]`, `took D I B [PATH, MANIFEST, MID, BYTES, FOLDER]`:
        /// the fields after the manifest optional from the end (an older note's), `0 0 0` and `-`
        /// standing for one not known before a later one.
        var line: String {
            var fields = [JSONText.string(path), JSONText.string(manifest)]
            let file = manifestFile ?? FileIdentity(device: 0, inode: 0)
            let later = pending ? folder != nil : bytes != nil || folder != nil
            if manifestFile != nil || pending || later { fields.append(JSONText.string("\(file.device) \(file.inode) \(file.birth)")) }
            if !pending, bytes != nil || folder != nil { fields.append(JSONText.string(bytes.map { "\($0.size) \($0.sha256)" } ?? "-")) }
            if let folder { fields.append(JSONText.string("\(folder.device) \(folder.inode)")) }
            return "\(pending ? "taking" : "took") \(identity.device) \(identity.inode) \(identity.birth) [" + fields.joined(separator: ",") + "]\n"
        }

        /// Whether the noted file may still be somewhere: it is at its path, or its folder is
        /// gone from where it was (renamed with it: `mv shared shared2`, a sync tool's moment
        /// away), and never a note whose folder is there without it (deleted, or replaced).
        /// Attack 56c's H1: a note dropped while its folder was away for a moment, and notes
        /// matched by path alone, let a renamed folder's file be adopted and deleted.
        /// A pending note: while any file is at its path, or its folder is gone. An installed
        /// file's note also while a copy of its bytes is at its path (`copyIsAt`).
        /// Nor while another folder than its own is at its folder's path (58b's 1 and 3: the
        /// folder renamed, a new one made at its name: the note was dropped while its file was
        /// still there, in the renamed folder, and the original adopted and cleaned it).
        /// An installed file's note also while its very file lies under another name in its folder
        /// (58b: `mv a.jpg a.old` for a moment while another takeover rewrote the notes dropped it,
        /// and the original adopted and cleaned the file once it was back).
        func mayBeThere(_ folders: FolderFiles) -> Bool {
            var info = stat()
            if pending ? lstat(path, &info) == 0 : identity.isFile(at: path) || copyIsAt(path) { return true }
            let folder = (path as NSString).deletingLastPathComponent
            guard lstat(folder, &info) == 0, inItsFolder else { return true }
            return !pending && folders.holds(identity, in: folder)
        }

        /// Whether the folder at this note's folder path is the very folder it was noted in (or
        /// the note does not say which: an older note's): only then does what is at its path, or
        /// is not, say anything of its file.
        var inItsFolder: Bool {
            guard let folder, folder.inode != 0 else { return true }
            return FileIdentity.of((path as NSString).deletingLastPathComponent) == folder
        }

        /// Whether the regular file at `file` (not this note's very file) holds the bytes this
        /// note's build installed.
        func copyIsAt(_ file: String) -> Bool {
            guard !pending, let bytes, !identity.isFile(at: file) else { return false }
            return TakeoverNotes.bytes(at: file, size: bytes.size) == bytes
        }

        /// Whether this pending note is about the file at `path` (`real`: its real path).
        func pendingCovers(_ path: String, real: String) -> Bool {
            guard pending, !(identity.inode != 0 && identity.isFile(at: path)) else { return false }
            if PathKey.same(self.path, real) || PathKey.same(ForeignProjectFiles.realPath(self.path), real) { return true }
            guard let folder, folder.inode != 0, (real as NSString).lastPathComponent == (self.path as NSString).lastPathComponent else { return false }
            return FileIdentity.ofFolder((real as NSString).deletingLastPathComponent) == folder
        }

        /// Whether the manifest at `other` (as its state's owner record names it) is the one this
        /// note names: the very same file (renamed since: `mv b.yaml c.yaml`), or, in an older
        /// note, the same path. A file of another identity at that path is not (attack 57a's 3;
        /// an editor that saves a new file makes the taker's own note doubt, never adoption).
        func names(_ other: String) -> Bool {
            guard let file = manifestFile else { return PathKey.same(manifest, other) }
            return file.isFile(at: other)
        }

        init(path: String, identity: FileIdentity, manifest: String, manifestFile: FileIdentity? = nil, pending: Bool = false,
             folder: FileIdentity? = nil, bytes: Bytes? = nil) {
            self.path = path; self.identity = identity; self.manifest = manifest; self.manifestFile = manifestFile; self.pending = pending
            self.folder = folder; self.bytes = bytes
        }

        static func parse(_ line: Substring) -> Note? {
            let fields = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
            guard fields.count == 5, fields[0] == "took" || fields[0] == "taking",
                  let device = UInt64(fields[1]), let inode = UInt64(fields[2]), let birth = Int64(fields[3]),
                  let values = (try? JSONSerialization.jsonObject(with: Data(fields[4].utf8))) as? [String],
                  (2...(fields[0] == "taking" ? 4 : 5)).contains(values.count),
                  values[0].hasPrefix("/"), values[1].hasPrefix("/") else { return nil }
            var identity = FileIdentity(device: device, inode: inode)
            identity.birth = birth
            var manifestFile: FileIdentity?
            if values.count >= 3 {
                let parts = values[2].split(separator: " ")
                guard parts.count == 3, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), let birth = Int64(parts[2]) else { return nil }
                if inode != 0 {
                    manifestFile = FileIdentity(device: device, inode: inode)
                    manifestFile?.birth = birth
                }
            }
            var folder: FileIdentity?
            var bytes: Bytes?
            let pending = fields[0] == "taking"
            if !pending, values.count >= 4, values[3] != "-" {
                let parts = values[3].split(separator: " ")
                guard parts.count == 2, let size = Int64(parts[0]), size >= 0, parts[1].utf8.count == 64,
                      parts[1].utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
                bytes = Bytes(size: size, sha256: String(parts[1]))
            }
            if values.count == (pending ? 4 : 5) {
                let parts = values[values.count - 1].split(separator: " ")
                guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
                folder = FileIdentity(device: device, inode: inode)
            }
            return Note(path: values[0], identity: identity, manifest: values[1], manifestFile: manifestFile, pending: pending, folder: folder, bytes: bytes)
        }
    }

    /// The regular files of folders, by identity, listed once per rewrite of the notes and only
    /// for a note whose file is not at its path in its folder: is that very file there under
    /// another name? At most `maxListed` entries a folder (past them: taken as there).
    final class FolderFiles {
        static let maxListed = 100_000
        /// Each folder's regular files: their names by identity (nil: past `maxListed`).
        private var listed: [String: [FileIdentity: [String]]?] = [:]

        func holds(_ file: FileIdentity, in folder: String) -> Bool {
            if listed[folder] == nil { listed[folder] = .some(Self.list(folder)) }
            guard let files = listed[folder] ?? nil else { return true }
            guard let names = files[file] else { return false }
            // A name that is not UTF-8 cannot be asked again by path: taken as there.
            return file.birth == 0 || names.contains { $0.contains("\u{FFFD}") || file.isFile(at: folder + "/" + $0) }
        }

        /// The regular files in `folder` (no link followed), their names by identity, in one
        /// listing; nil past `maxListed` entries.
        private static func list(_ folder: String) -> [FileIdentity: [String]]? {
            let fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return [:] }
            guard let directory = fdopendir(fd) else { close(fd); return [:] }
            defer { closedir(directory) }
            var found: [FileIdentity: [String]] = [:]
            var count = 0
            while let entry = readdir(directory) {
                count += 1
                if count > maxListed { return nil }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                var info = stat()
                guard name != ".", name != "..", fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                found[FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)), default: []].append(name)
            }
            return found
        }
    }

    /// What the notes file holds: its notes (none when it is not there), or why it cannot be
    /// read (then nothing is written over it, and a file it might name is doubt).
    enum Contents: Sendable {
        case notes([Note])
        case unreadable(String)
    }

    /// Notes, before an `--overwrite` build writes anything, that it is taking over the files at
    /// `paths` (real paths): a takeover is never made un-noted. Returns why they cannot be noted
    /// (no state home of this user's, the notes unreadable or full, the write failed): the build
    /// is refused then (attack 56c's M1: a takeover past the limit went ahead with a warning, and
    /// the project it took the file from later adopted and deleted it; 57a's 1: the same with
    /// notes that could not be written). A note whose file may still be there is never dropped.
    /// `before`: the identity of each file it takes over (the note does not count while that
    /// very file is still there).
    public static func reserve(_ files: [(path: String, before: FileIdentity)], manifest: String) -> String? {
        guard !files.isEmpty else { return nil }
        let mine = manifestFile(manifest)
        return rewrite { old in
            let folders = FolderFiles()
            let kept = old.filter { note in
                note.mayBeThere(folders) && !(note.pending && note.names(manifest) && note.inItsFolder && files.contains { PathKey.same($0.path, note.path) })
            }
            return kept + files.map { file in
                Note(path: file.path, identity: file.before, manifest: manifest, manifestFile: mine, pending: true,
                     folder: FileIdentity.ofFolder((file.path as NSString).deletingLastPathComponent))
            }
        }
    }

    /// Notes `taken` (real paths, each with the identity of the file just installed there) as
    /// installed by `manifest`'s build, in place of its pending notes at `reserved`; a pending
    /// note of a path it did not install there goes (the file there is what was there). A note
    /// whose very file is still there is never dropped. Returns a warning when they are not
    /// written (the pending notes then stay: the files remain the taker's in doubt).
    /// `installed`: the real paths of every file the build installed: another build's pending
    /// note there goes too (whatever it was taking, this build's file is there now: 57b's 5, a
    /// dead taker's pending note outlived the site's own rebuilds).
    public static func note(_ taken: [(path: String, identity: FileIdentity)], reserved: [String],
                            installed: [(path: String, identity: FileIdentity)] = [], manifest: String) -> String? {
        guard !taken.isEmpty || !reserved.isEmpty || !installed.isEmpty else { return nil }
        // Nothing to change, nothing written (every build asks).
        if taken.isEmpty, reserved.isEmpty {
            guard case .notes(let notes) = read(), notes.contains(where: { note in
                (note.pending || !note.identity.isFile(at: note.path)) && note.inItsFolder && installed.contains { PathKey.same($0.path, note.path) }
            }) else { return nil }
        }
        let mine = manifestFile(manifest)
        // Read before the lock is taken: the files are this build's, and may be large.
        let bytes = taken.map { Self.bytes(ofVeryFile: $0.identity, at: $0.path) }
        let why = rewrite { old in
            let folders = FolderFiles()
            // Checked again under the lock: another build may have installed its file since.
            let fresh = zip(taken, bytes).filter { $0.0.identity.isFile(at: $0.0.path) }.map {
                Note(path: $0.0.path, identity: $0.0.identity, manifest: manifest, manifestFile: mine,
                     folder: FileIdentity.ofFolder(($0.0.path as NSString).deletingLastPathComponent), bytes: $0.1)
            }
            // Kept: notes whose file may still be there, but a note at a path noted anew whose
            // very file is gone (57b's 1: builds taking one path at once dropped the note of the
            // file that was there), this build's own pending ones, and pending ones where it installed.
            let kept = old.filter { note in
                note.mayBeThere(folders)
                    && !(!note.pending && !note.identity.isFile(at: note.path) && note.inItsFolder && fresh.contains { PathKey.same($0.path, note.path) }
                         && !folders.holds(note.identity, in: (note.path as NSString).deletingLastPathComponent))
                    && !(note.pending && note.names(manifest) && note.inItsFolder && reserved.contains { PathKey.same($0, note.path) })
                    // Only where this build's very file is still there (another build may have installed since).
                    // An installed file's note too once its very file is gone from there: what
                    // is there now is this build's own, not a copy of the taker's.
                    && !((note.pending || !note.identity.isFile(at: note.path)) && note.inItsFolder
                         && installed.contains { PathKey.same($0.path, note.path) && $0.identity.isFile(at: $0.path) })
            }
            return kept + fresh
        }
        return why.map { "\($0): this build's takeovers stay noted as being made (doubt for the projects they were taken from)" }
    }

    /// Writes the notes `change` makes of the ones there, under the token folder's lock; why not
    /// (no state home, unreadable, full, not written), nil when written.
    private static func rewrite(_ change: ([Note]) -> [Note]) -> String? {
        let folder: Int32
        do { folder = try StateFolderTrust.openTokenFolder(create: true) } catch { return "the takeover notes cannot be kept (\(error))" }
        defer { close(folder) }
        while flock(folder, LOCK_EX) != 0, errno == EINTR {}
        defer { flock(folder, LOCK_UN) }
        let old: [Note]
        switch read() {
        case .notes(let notes): old = notes
        case .unreadable(let why): return "the takeover notes \(path ?? tokenName) \(why); " + advice(why)
        }
        let notes = change(old)
        // Room for every pending note to become an installed file's (three numbers of 20 digits).
        let text = header + "\n" + notes.map(\.line).joined()
        let room = notes.filter(\.pending).count * 60
        guard notes.count <= maxNotes, text.utf8.count + room <= StateFolderTrust.maxTokenBytes else {
            let live = notes.filter { !$0.pending && $0.identity.isFile(at: $0.path) }.count
            return "the takeover notes \(path ?? tokenName) are full (at most \(maxNotes) notes, \(StateFolderTrust.maxTokenBytes) bytes): "
                + "\(live) of the files they name are still there, the others' folders are gone (removed, or moved away) or their builds are still being made; "
                + "a note goes once its file does and its folder is there: remove the taken-over files no project needs any more, "
                + "or the lines of folders you removed for good from that file"
        }
        do { try StateFolderTrust.writeToken(text, name: tokenName) } catch { return "the takeover notes \(path ?? tokenName) were not written (\(error))" }
        return nil
    }

    /// What to do with notes that cannot be read (`why`): a bad line is repaired or removed, for
    /// each other line still protects a file (attack 57a's 5: moving the whole file away, as
    /// advised, dropped the live notes too, and the original adopted and deleted a taken file).
    public static func advice(_ why: String) -> String {
        why.contains(" at line ") ? "repair or remove that line (each other line still protects a file; moving the whole file away drops their protection too)"
            : "move it away (the next --overwrite build writes it anew; the files it noted lose its protection)"
    }

    /// Where the notes file is (nil: no state home).
    static var path: String? { ProjectRegistry.path.map { ($0 as NSString).deletingLastPathComponent + "/" + tokenName } }

    static func read() -> Contents {
        guard let folder = try? StateFolderTrust.openTokenFolder(create: false) else { return .notes([]) }
        close(folder)
        guard let notesPath = path else { return .notes([]) }
        var info = stat()
        guard lstat(notesPath, &info) == 0 else { return errno == ENOENT ? .notes([]) : .unreadable("cannot be read (\(String(cString: strerror(errno))))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .unreadable("is not a regular file") }
        guard info.st_size > 0 else { return .unreadable("is empty (a notes file starts with '\(header)')") }
        guard let data = StateFolderTrust.readToken(name: tokenName) else {
            return .unreadable(info.st_uid != geteuid() ? "is not this user's" : info.st_size > StateFolderTrust.maxTokenBytes
                ? "holds more than \(StateFolderTrust.maxTokenBytes) bytes" : "cannot be read as Derive's (a folder on the way to it is not this user's)")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(header) else { return .unreadable("does not start with '\(header)'") }
        var notes: [Note] = []
        for (number, line) in lines.enumerated().dropFirst() where !(line.isEmpty && number == lines.count - 1) {
            guard let note = Note.parse(line) else { return .unreadable("holds a line that is not a note at line \(number + 1) (garbled or cut short)") }
            notes.append(note)
        }
        return .notes(notes)
    }

    /// The notes as read once.
    public struct Notes: Sendable {
        let contents: Contents
        public static func read() -> Notes { Notes(contents: TakeoverNotes.read()) }
    }

    /// Who took over the file at `path` (which is still there), by the notes.
    public enum Answer: Equatable {
        /// The manifest (not the one asking) whose build took this very file over and installed it.
        case taker(String)
        /// The manifest (not the one asking) whose build was taking the file at that path over
        /// and did not note its end (killed, or its note not written).
        case taking(String)
        /// The manifest (not the one asking) whose build took over and installed a file at that
        /// path that is gone, when the file there holds its very bytes (a copy: restored, copied back).
        case copy(String)
        /// The notes cannot be read: why, said as the cause (with the file's path).
        case unreadable(String)
    }

    /// The manifest (not `owner`) whose build took over and installed the very file at `path`
    /// (the latest note of that file decides), or was taking the file at that path over; nil
    /// when no note says so. From notes read once (`Notes`): a command asks of many files.
    public static func taker(of path: String, besides owner: String, in contents: Notes) -> Answer? {
        switch contents.contents {
        case .unreadable(let why): return .unreadable("the state home's takeover notes \(Self.path ?? tokenName) \(why)")
        case .notes(let notes):
            guard !notes.isEmpty else { return nil }
            // By the very file (device, inode, birth) wherever it lies now: a folder renamed
            // since holds it under another path (attack 56c's H1).
            if let file = FileIdentity.ofRegularFile(path),
               let latest = notes.last(where: { !$0.pending && $0.identity == file && $0.identity.isFile(at: path) }) {
                if !latest.names(owner) { return .taker(latest.manifest) }
            }
            let real = ForeignProjectFiles.realPath(path)
            if let copied = latestCopy(at: path, real: real, in: notes), !copied.names(owner) { return .copy(copied.manifest) }
            return notes.last { $0.pendingCovers(path, real: real) && !$0.names(owner) }.map { .taking($0.manifest) }
        }
    }

    /// The latest installed file's note of the path `path` (`real`: its real path) whose very
    /// file is gone from it, when the file there holds the bytes it installed (57b's 4); nil otherwise.
    static func latestCopy(at path: String, real: String, in notes: [Note]) -> Note? {
        // The very file there has a note of its own: that one says whose it is.
        if let file = FileIdentity.ofRegularFile(path), notes.contains(where: { !$0.pending && $0.identity == file && $0.identity.isFile(at: path) }) { return nil }
        guard let latest = notes.last(where: { !$0.pending && $0.bytes != nil && (PathKey.same($0.path, path) || PathKey.same($0.path, real))
            && !$0.identity.isFile(at: $0.path) }), latest.copyIsAt(path) else { return nil }
        return latest
    }

    /// Whether the latest note of the very file at `path` (still there) names `manifest`'s build
    /// (the very manifest file: `Note.names`) as the one that took it over and installed it; or,
    /// that very file gone, the file there is a copy of the bytes its build installed at that path
    /// (`latestCopy`: restored from a backup, the taker's own).
    public static func tookOver(_ path: String, by manifest: String, in contents: Notes) -> Bool {
        guard case .notes(let notes) = contents.contents, !notes.isEmpty, let file = FileIdentity.ofRegularFile(path) else { return false }
        if let latest = notes.last(where: { !$0.pending && $0.identity == file && $0.identity.isFile(at: path) }) { return latest.names(manifest) }
        return latestCopy(at: path, real: ForeignProjectFiles.realPath(path), in: notes)?.names(manifest) ?? false
    }

    /// The size and SHA-256 of the very file `identity` at `path` (no link followed), nil when
    /// another file or none is there, or it cannot be read.
    static func bytes(ofVeryFile identity: FileIdentity, at path: String) -> Note.Bytes? {
        bytes(at: path) { UInt64($0.st_dev) == identity.device && UInt64($0.st_ino) == identity.inode }
    }

    /// The size and SHA-256 of the regular file at `path` when it is `size` bytes long (nil
    /// otherwise: only a file of that size is read).
    static func bytes(at path: String, size: Int64) -> Note.Bytes? {
        bytes(at: path) { Int64($0.st_size) == size }
    }

    /// The size and SHA-256 of the regular file at `path` (no link followed, not blocking on a
    /// fifo put there) when its status passes `wanted`.
    private static func bytes(at path: String, where wanted: (stat) -> Bool) -> Note.Bytes? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, wanted(info),
              let digest = RealDisk.digest(of: fd) else { return nil }
        return Note.Bytes(size: Int64(info.st_size), sha256: digest)
    }

    /// The manifest file's own identity as a note keeps it: device, inode and birth (58a's 6: the
    /// birth was never kept, so a new manifest given the freed inode number at the taker's path
    /// would be the taker). A time of change is no birth (a rename moves it): 0 then.
    static func manifestFile(_ manifest: String) -> FileIdentity? {
        guard var file = FileIdentity.ofRegularFile(manifest) else { return nil }
        file.birth = max(0, FileBirth.of(manifest) ?? 0)
        return file
    }

    /// The paths of the pending notes (takeovers a build began and did not note the end of), for
    /// a build to tell which of its outputs, up to date ones included, lie where one is.
    public static func pendingPaths() -> [String] {
        guard case .notes(let notes) = read() else { return [] }
        return notes.filter(\.pending).map(\.path)
    }

    /// The very files `manifest`'s builds took over (`own`), and those any build took over
    /// (`all`), by identity: read once by a build, which carries each note over to the file it
    /// installs anew where one lies (`all`: where its own state records that very file as the one
    /// it installed, whichever manifest file the note names).
    public static func taken(by manifest: String) -> (own: Set<FileIdentity>, all: Set<FileIdentity>) {
        guard case .notes(let notes) = read() else { return ([], []) }
        let installed = notes.filter { !$0.pending }
        return (Set(installed.filter { $0.names(manifest) }.map(\.identity)), Set(installed.map(\.identity)))
    }
}
