import Crypto
import Manifest
import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a file's bytes can be had back from git: the file is tracked in the repository's HEAD
/// commit at exactly its path, and its bytes (read with no filter: no line-ending conversion, no
/// LFS smudge) are exactly that blob. Derive replaces or deletes a file on `derive.lock`'s word
/// alone (a line of another recipe in a fresh clone; an output adopted unverified whose recipe
/// cannot be rendered again) only when this proves it: the lock is untrusted input, but what git
/// holds at HEAD is lost by nobody (`git checkout -- PATH` gives it back).
///
/// git is asked only for the candidate paths (`prefetch`, or one path when `proves` asks for
/// one not fetched), as literal pathspecs (`GIT_LITERAL_PATHSPECS=1`: `*`, `?`, `[` and a leading
/// `:` are parts of a name), in batches bounded in argument bytes, with a fixed environment, one
/// deadline and one bound on all its answers together. No git, not a repository, no HEAD, a
/// folder outside the repository, a git that fails, hangs or answers too much or garbage:
/// nothing is proven (and git is not asked again).
public final class GitProof: @unchecked Sendable {
    /// The folder git runs in (the manifest's); listed paths are relative to it.
    public let folder: String
    /// The folders whose files may be proven (absolute paths): the manifest's buckets.
    public let folders: [String]
    /// The `git` command run (`nil`: looked up in /usr/bin, /usr/local/bin, /bin), for tests.
    let git: String?
    let deadline: TimeInterval
    let maxBytes: Int
    /// The most bytes of pathspecs one git command is given (each with its terminating NUL).
    let batchBytes: Int

    private let lock = NSLock()
    /// Absolute path → git object id at HEAD (regular files only), for the paths asked.
    private var listing: [String: String] = [:]
    /// The paths git was asked about (or that are outside `folders`, never asked).
    private var asked: Set<String> = []
    /// Why git proves nothing, once it failed (`nil` while it did not, or was not asked).
    private var failure: String?
    /// When git was first run (the deadline covers every batch), and the bytes it answered.
    private var started: Date?
    private var answered = 0

    public init(folder: String, folders: [String], git: String? = nil, deadline: TimeInterval = 20, maxBytes: Int = 64 << 20,
                batchBytes: Int = 64 << 10) {
        self.folder = URL(literalFilePath: folder).standardizedFileURL.path
        self.folders = folders.map { URL(literalFilePath: $0).standardizedFileURL.path }
        self.git = git
        self.deadline = deadline
        self.maxBytes = maxBytes
        self.batchBytes = batchBytes
    }

    /// Whether the file at `path` holds bytes whose SHA-256 is `digest` and that are exactly the
    /// blob HEAD tracks at that path. The file is read once for both ids, so what is proven is the
    /// bytes the caller checks again (by `digest`) at the moment it replaces or deletes them.
    public func proves(_ path: String, digest: String) -> Bool {
        let path = URL(literalFilePath: path).standardizedFileURL.path
        guard let id = headId(path), let ids = Self.ids(ofFileAt: path, objectIdLength: id.count) else { return false }
        return ids.sha256 == digest && ids.object == id
    }

    /// Asks git about `paths` at once (in batches), so that `proves` does not run git per path.
    public func prefetch(_ paths: some Sequence<String>) {
        lock.lock()
        defer { lock.unlock() }
        fetch(paths.map { URL(literalFilePath: $0).standardizedFileURL.path })
    }

    /// Why nothing is proven (git missing or failing), once asked; nil otherwise.
    public var whyNothing: String? { lock.lock(); defer { lock.unlock() }; return failure }

    /// HEAD's object id at `path` (a regular file), git asked on first use.
    func headId(_ path: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        if !asked.contains(path) { fetch([path]) }
        return listing[path]
    }

    /// Asks git about the paths not asked yet (lock held): those inside a bucket folder, each
    /// as a literal pathspec relative to `folder` (absolute outside it).
    private func fetch(_ paths: [String]) {
        var specs: [String] = []
        for path in paths where !asked.contains(path) {
            asked.insert(path)
            guard folders.contains(where: { path.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else { continue }
            specs.append(path.hasPrefix(folder + "/") ? String(path.dropFirst(folder.count + 1)) : path)
        }
        var batch: [String] = []
        var size = 0
        for spec in specs.sorted() {
            if !batch.isEmpty, size + spec.utf8.count + 1 > batchBytes {
                list(batch)
                batch = []
                size = 0
            }
            batch.append(spec)
            size += spec.utf8.count + 1
        }
        if !batch.isEmpty { list(batch) }
    }

    /// One `ls-tree` of HEAD over `specs`, within what is left of the deadline and the bound.
    private func list(_ specs: [String]) {
        guard failure == nil else { return }
        let start = started ?? Date()
        started = start
        let left = deadline - Date().timeIntervalSince(start)
        do {
            guard left > 0 else { throw Failure(description: "git did not finish within \(Int(deadline)) s") }
            let answer = try run(["ls-tree", "-r", "-z", "HEAD", "--"] + specs, deadline: left, maxBytes: maxBytes - answered)
            answered += answer.count
            listing.merge(try Self.parse(answer, relativeTo: folder)) { _, new in new }
        } catch {
            failure = "\(error)"
            listing = [:]
        }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// `MODE TYPE ID\tPATH\0` entries: regular files' ids by absolute path. An entry not of that
    /// shape makes the whole answer garbage (nothing proven).
    static func parse(_ answer: Data, relativeTo folder: String) throws -> [String: String] {
        var found: [String: String] = [:]
        for entry in answer.split(separator: 0) {
            guard let tab = entry.firstIndex(of: 9) else { throw Failure(description: "git ls-tree gave an entry Derive cannot read") }
            let fields = String(decoding: entry[entry.startIndex..<tab], as: UTF8.self).split(separator: " ")
            let name = String(decoding: entry[(tab + 1)...], as: UTF8.self)
            guard fields.count == 3, fields[2].count == 40 || fields[2].count == 64,
                  fields[2].allSatisfy({ $0.isHexDigit && !$0.isUppercase }), !name.isEmpty else {
                throw Failure(description: "git ls-tree gave an entry Derive cannot read")
            }
            // Regular files only: a symbolic link, a submodule or a folder proves no file's bytes.
            guard fields[0] == "100644" || fields[0] == "100755", fields[1] == "blob" else { continue }
            let path = name.hasPrefix("/") ? name : folder + "/" + name
            found[URL(literalFilePath: path).standardizedFileURL.path] = String(fields[2])
        }
        return found
    }

    /// The git object id of `bytes` as a blob: SHA-1 (40 hex) or SHA-256 (64 hex) of
    /// `blob SIZE\0` and the bytes.
    public static func objectId(of bytes: Data, length: Int = 40) -> String {
        var hasher = ObjectHasher(length: length, size: bytes.count)
        hasher.update(bytes)
        return hasher.finish()
    }

    struct ObjectHasher {
        var sha1: Insecure.SHA1?
        var sha256: SHA256?
        init(length: Int, size: Int) {
            let header = Data("blob \(size)".utf8) + Data([0])
            if length == 64 { sha256 = SHA256(); sha256?.update(data: header) } else { sha1 = Insecure.SHA1(); sha1?.update(data: header) }
        }
        mutating func update(_ data: Data) { sha1?.update(data: data); sha256?.update(data: data) }
        func finish() -> String {
            let bytes: [UInt8] = sha1.map { Array($0.finalize()) } ?? sha256.map { Array($0.finalize()) } ?? []
            return bytes.map { String(format: "%02x", $0) }.joined()
        }
    }

    /// The SHA-256 and the git object id of the regular file at `path`, from one read (never
    /// through a symbolic link); nil when it cannot be read whole.
    static func ids(ofFileAt path: String, objectIdLength: Int) -> (sha256: String, object: String)? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = Int(info.st_size)
        var object = ObjectHasher(length: objectIdLength, size: size)
        var content = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 { if errno == EINTR { continue }; return nil }
            if count == 0 { break }
            let data = Data(buffer[0..<count])
            object.update(data)
            content.update(data: data)
            total += count
            if total > size { return nil }
        }
        guard total == size else { return nil }
        return (content.finalize().map { String(format: "%02x", $0) }.joined(), object.finish())
    }

    static let environment: [String: String] = [
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C",
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        // A pathspec is the name it spells: no glob, no magic (`:(…)`, `:!`).
        "GIT_LITERAL_PATHSPECS": "1",
    ]

    /// Runs git in `folder`: its standard output, refused past `maxBytes` or `deadline` seconds.
    func run(_ arguments: [String], deadline: TimeInterval, maxBytes: Int) throws -> Data {
        let executable: String
        if let git {
            executable = git
        } else if let found = ["/usr/bin", "/usr/local/bin", "/bin"].first(where: { access($0 + "/git", X_OK) == 0 }) {
            executable = found + "/git"
        } else {
            throw Failure(description: "git is not installed")
        }
        let process = Process()
        process.executableURL = URL(literalFilePath: executable)
        process.arguments = ["--no-pager", "-c", "core.fsmonitor=false"] + arguments
        process.environment = Self.environment
        process.currentDirectoryURL = URL(literalFilePath: folder)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw Failure(description: "cannot run git: \(error)") }
        let timer = DispatchWorkItem { [process] in if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + deadline, execute: timer)
        defer { timer.cancel() }
        var data = Data()
        var tooLarge = false
        while true {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            data.append(chunk)
            if data.count > maxBytes {
                tooLarge = true
                try? out.fileHandleForReading.close()
                kill(process.processIdentifier, SIGKILL)
                break
            }
        }
        process.waitUntilExit()
        if tooLarge { throw Failure(description: "git's answers are larger than \(self.maxBytes) bytes") }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw Failure(description: process.terminationReason == .uncaughtSignal ? "git did not finish within \(Int(self.deadline)) s" : "git failed")
        }
        return data
    }
}

extension GitProof {
    /// The proof for `manifest`'s buckets, git run in the manifest's folder.
    public convenience init(manifest: Manifest, manifestPath: String) {
        self.init(folder: URL(literalFilePath: manifestPath).standardizedFileURL.deletingLastPathComponent().path,
                  folders: manifest.buckets.map(\.path))
    }
}
