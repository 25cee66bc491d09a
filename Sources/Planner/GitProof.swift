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
/// git runs once per instance (a build session shares one): one `ls-tree` of HEAD over every
/// bucket folder of the manifest, with a fixed environment, a deadline and a bound on its answer.
/// No git, not a repository, no HEAD, a folder outside the repository, a git that fails, hangs
/// or answers too much or garbage: nothing is proven.
public final class GitProof: @unchecked Sendable {
    /// The folder git runs in (the manifest's); listed paths are relative to it.
    public let folder: String
    /// The folders listed (absolute paths): the manifest's buckets.
    public let folders: [String]
    /// The `git` command run (`nil`: looked up in /usr/bin, /usr/local/bin, /bin), for tests.
    let git: String?
    let deadline: TimeInterval
    let maxBytes: Int

    private let lock = NSLock()
    /// Absolute path → git object id at HEAD (regular files only), once listed.
    private var listing: [String: String]?
    /// Why git proves nothing, once asked (`nil` while it did or was not asked).
    private var failure: String?

    public init(folder: String, folders: [String], git: String? = nil, deadline: TimeInterval = 20, maxBytes: Int = 64 << 20) {
        self.folder = URL(literalFilePath: folder).standardizedFileURL.path
        self.folders = folders
        self.git = git
        self.deadline = deadline
        self.maxBytes = maxBytes
    }

    /// Whether the file at `path` holds bytes whose SHA-256 is `digest` and that are exactly the
    /// blob HEAD tracks at that path. The file is read once for both ids, so what is proven is the
    /// bytes the caller checks again (by `digest`) at the moment it replaces or deletes them.
    public func proves(_ path: String, digest: String) -> Bool {
        let path = URL(literalFilePath: path).standardizedFileURL.path
        guard let id = headListing()[path], let ids = Self.ids(ofFileAt: path, objectIdLength: id.count) else { return false }
        return ids.sha256 == digest && ids.object == id
    }

    /// Why nothing is proven (git missing or failing), once asked; nil otherwise.
    public var whyNothing: String? { lock.lock(); defer { lock.unlock() }; return failure }

    /// HEAD's regular files under `folders`, listed on first use.
    func headListing() -> [String: String] {
        lock.lock()
        defer { lock.unlock() }
        if let listing { return listing }
        var found: [String: String] = [:]
        do {
            let specs = folders.map { folder -> String in
                let path = URL(literalFilePath: folder).standardizedFileURL.path
                if path == self.folder { return "." }
                return path.hasPrefix(self.folder + "/") ? "./" + String(path.dropFirst(self.folder.count + 1)) : path
            }
            let answer = try run(["ls-tree", "-r", "-z", "HEAD", "--"] + (specs.isEmpty ? ["."] : specs))
            found = try Self.parse(answer, relativeTo: self.folder)
        } catch {
            failure = "\(error)"
            found = [:]
        }
        listing = found
        return found
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
    ]

    /// Runs git in `folder`: its standard output, refused past `maxBytes` or the deadline.
    func run(_ arguments: [String]) throws -> Data {
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
        if tooLarge { throw Failure(description: "git's answer is larger than \(maxBytes) bytes") }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw Failure(description: process.terminationReason == .uncaughtSignal ? "git did not finish within \(Int(deadline)) s" : "git failed")
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
