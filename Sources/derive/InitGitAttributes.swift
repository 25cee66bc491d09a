import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `.gitattributes` lines `derive init` makes sure of. The lock and the index are compared
/// byte for byte, so git must never turn their line endings into CRLF (a clone made with
/// `core.autocrlf=true` did, and every build then refused the index: round 29's F11): each is
/// marked `-text`. A user's `.gitattributes` keeps every line; only the missing lines are added.
enum InitGitAttributes {
    static let fileName = ".gitattributes"
    static let comment = "# Derive's control files are compared byte for byte: git must never change their line endings (written by derive init)"

    /// What `ensure` did.
    enum Outcome: Equatable {
        case written, extended, unchanged
        /// Left as it is, and why (a link, not a regular file, unreadable, changed meanwhile).
        case refused(String)
    }

    /// The line marking `path` (relative to the folder) `-text`, anchored to this folder.
    static func line(_ path: String) -> String { "/" + path + " -text" }

    /// Whether a line of a `.gitattributes` already keeps git off `path`'s line endings: its
    /// pattern names exactly `path` (anchored or not) and it sets `-text` or `binary`.
    static func covers(_ line: Substring, _ path: String) -> Bool {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let pattern = fields.first, pattern == path || pattern == "/" + path else { return false }
        return fields.dropFirst().contains { $0 == "-text" || $0 == "binary" }
    }

    /// The bytes `existing` becomes with a line for each of `paths` it lacks; nil when it lacks none.
    static func extended(_ existing: [UInt8], paths: [String]) -> [UInt8]? {
        let text = String(decoding: existing, as: UTF8.self)
        // Swift reads "\r\n" as one character, not "\n": a CRLF file's lines are split on both.
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        let missing = paths.filter { path in !lines.contains { covers($0, path) } }
        guard !missing.isEmpty else { return nil }
        // A file written with CRLF line ends is extended in kind.
        let end = text.contains("\r\n") ? "\r\n" : "\n"
        var added = existing.isEmpty || existing.last == UInt8(ascii: "\n") ? "" : end
        added += ([comment] + missing.map(line)).joined(separator: end) + end
        return existing + Array(added.utf8)
    }

    /// Makes sure `.gitattributes` here marks each of `paths` `-text`: created whole when absent
    /// (`StarterManifest.createWhole`), else extended by a whole new file renamed over it, only
    /// while it still holds the bytes read (a user's edit meanwhile is never lost). Never
    /// through a symbolic link.
    static func ensure(paths: [String]) -> Outcome {
        ensure(fileName) { extended($0, paths: paths) }
    }

    /// Makes sure the file `fileName` here holds what `extend` adds (nil: nothing to add), as
    /// `ensure(paths:)` does for `.gitattributes`.
    static func ensure(_ fileName: String, extend: ([UInt8]) -> [UInt8]?) -> Outcome {
        var info = stat()
        if lstat(fileName, &info) != 0 {
            guard errno == ENOENT else { return .refused(String(cString: strerror(errno))) }
            guard let bytes = extend([]) else { return .unchanged }
            if StarterManifest.createWhole(fileName, bytes: bytes) == nil { return .written }
        }
        guard lstat(fileName, &info) == 0 else { return .refused(String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .refused((info.st_mode & S_IFMT) == S_IFLNK ? "it is a symbolic link, which derive init does not follow" : "it is not a regular file")
        }
        guard let existing = read(fileName) else { return .refused("it cannot be read (\(String(cString: strerror(errno))))") }
        guard let bytes = extend(existing) else { return .unchanged }
        // Replaced by a new file, it would become this user's: only a file this user owns and may
        // write is (attack 42c's L4: a root-owned, read-only .gitignore in nobody's folder was
        // renamed over and became nobody's).
        guard access(fileName, W_OK) == 0 else { return .refused("this user may not write it") }
        guard info.st_uid == geteuid() else { return .refused("it belongs to another user (uid \(info.st_uid))") }
        let temporary = ".\(fileName).\(getpid()).derive-tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, info.st_mode & 0o7777)
        guard fd >= 0 else { return .refused(String(cString: strerror(errno))) }
        defer { unlink(temporary) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fchmod(fd, info.st_mode & 0o7777) == 0 && fsync(fd) == 0
        close(fd)
        guard written else { return .refused(String(cString: strerror(errno))) }
        // Still the file read, with the bytes read: else the user's edit stands and nothing is added.
        var now = stat()
        guard lstat(fileName, &now) == 0, now.st_ino == info.st_ino, now.st_dev == info.st_dev, read(fileName) == existing else {
            return .refused("it changed while derive init extended it")
        }
        guard rename(temporary, fileName) == 0 else { return .refused(String(cString: strerror(errno))) }
        return .extended
    }

    /// A regular file's bytes (at most 1 MiB, never through a link), or nil.
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let limit = 1 << 20
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            bytes += buffer.prefix(count)
            if bytes.count > limit { errno = EFBIG; return nil }
        }
    }
}

/// The `.gitignore` line `derive init` makes sure of: the build state (`.derive/`) is this
/// clone's own (which files this user's builds wrote, with their digests and times), never
/// committed (attack 42b's L-d: `git add -A` after init committed `state.sqlite` and
/// `build.lock`, and every clone then set that state aside as another project's, leaving
/// untracked files after each build). A user's `.gitignore` keeps every line; the line is added
/// only when no line already names the folder.
enum InitGitIgnore {
    static let fileName = ".gitignore"
    static let comment = "# Derive's build state: each clone keeps its own (written by derive init)"
    static let line = "/.derive/"

    /// Whether a line already keeps `.derive` out of git (anchored or not, with or without `/`),
    /// read as git reads it: only unescaped trailing spaces are dropped; a leading space or tab, a
    /// trailing tab or a no-break space are part of the pattern (attack 42c's L3: ` .derive` was
    /// counted, git matched nothing, and `git add -A` took the state).
    static func covers(_ line: Substring) -> Bool {
        var pattern = line
        while pattern.last == " ", !pattern.dropLast().hasSuffix("\\") { pattern = pattern.dropLast() }
        return [".derive", ".derive/", "/.derive", "/.derive/"].contains(String(pattern))
    }

    /// The bytes `existing` becomes with the line; nil when a line already covers it.
    static func extended(_ existing: [UInt8]) -> [UInt8]? {
        let text = String(decoding: existing, as: UTF8.self)
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard !lines.contains(where: covers) else { return nil }
        let end = text.contains("\r\n") ? "\r\n" : "\n"
        var added = existing.isEmpty || existing.last == UInt8(ascii: "\n") ? "" : end
        added += comment + end + line + end
        return existing + Array(added.utf8)
    }

    static func ensure() -> InitGitAttributes.Outcome { InitGitAttributes.ensure(fileName, extend: extended) }
}
