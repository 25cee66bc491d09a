import Confinement
import Planner
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Files of one git revision, read with the `git` command: the commit is resolved once, then each
/// file is looked up in its tree (a blob with a regular file's mode only: a symbolic link or a
/// folder in the revision is refused, as the disk loader refuses them) and read with a byte limit.
/// git runs with a fixed environment (no user or system configuration, no pager, no prompt, C
/// locale) and a deadline, so what a user's configuration says cannot change what is reviewed.
public struct GitRevision: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The folder git runs in (the manifest's folder); paths are relative to it.
    public let folder: String
    /// What the user wrote (`HEAD`, `origin/main`), for messages.
    public let name: String
    /// The full commit hash `name` resolved to.
    public let commit: String
    /// The longest a git command may run.
    public static let deadline: TimeInterval = 30

    /// Resolves `revision` to a commit in the repository holding `folder`.
    public init(_ revision: String, folder: String) throws {
        guard !revision.isEmpty, revision.utf8.count <= 256, !revision.hasPrefix("-"),
              !revision.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F || $0 == ":" }) else {
            throw Failure("'\(revision)' is not a git revision Derive accepts: give a branch, tag or commit (no spaces, ':' or leading '-')")
        }
        let output: Data
        do {
            output = try Self.run(["rev-parse", "--verify", "--quiet", "\(revision)^{commit}"], in: folder, maxBytes: 4096)
        } catch let failure as Failure {
            throw Failure("'\(revision)' is not a commit in the git repository at \(folder) (\(failure.description)); check the name with 'git log'")
        }
        let commit = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard commit.count >= 40, commit.allSatisfy(\.isHexDigit) else {
            throw Failure("'\(revision)' is not a commit in the git repository at \(folder); check the name with 'git log'")
        }
        self.folder = folder
        self.name = revision
        self.commit = commit
    }

    /// The bytes of `path` (relative to `folder`) at this revision, at most `maxBytes`.
    public func read(_ path: String, maxBytes: Int) throws -> Data {
        // `-z`: one entry `MODE TYPE HASH\tPATH\0`, never quoted.
        let listing = try Self.run(["ls-tree", "-z", commit, "--", "./" + path], in: folder, maxBytes: 64 << 10)
        guard let entry = listing.split(separator: 0).first, let tab = entry.firstIndex(of: 9) else {
            throw Failure("\(path): no such file at \(name)")
        }
        let fields = String(decoding: entry[entry.startIndex..<tab], as: UTF8.self).split(separator: " ")
        guard fields.count == 3 else { throw Failure("\(path): git listed an entry Derive cannot read at \(name)") }
        switch (fields[0], fields[1]) {
        case ("100644", "blob"), ("100755", "blob"): break
        case ("120000", _): throw Failure("\(path) is a symbolic link at \(name); manifests are read without following links")
        default: throw Failure("\(path) is not a regular file at \(name) (a \(fields[1]))")
        }
        let hash = String(fields[2])
        guard hash.allSatisfy(\.isHexDigit) else { throw Failure("\(path): git listed an entry Derive cannot read at \(name)") }
        // The size first: a blob over the limit is refused without reading it.
        let sizeText = try Self.run(["cat-file", "-s", hash], in: folder, maxBytes: 64)
        guard let size = Int(String(decoding: sizeText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure("\(path): git gave no size at \(name)")
        }
        guard size <= maxBytes else { throw Failure("\(path) at \(name) is \(size) bytes, larger than \(maxBytes) bytes, the limit for a manifest") }
        return try Self.run(["show", hash], in: folder, maxBytes: maxBytes, what: "\(path) at \(name)")
    }

    /// The reader `ManifestLoader.fileReader` takes.
    public var fileReader: @Sendable (String, Int) throws -> Data {
        let revision = self
        return { path, maxBytes in try revision.read(path, maxBytes: maxBytes) }
    }

    static func gitExecutable() throws -> String {
        guard let found = GitCommand.executable() else {
            throw Failure("git is not installed (looked in /usr/bin, /usr/local/bin, /bin); install it with 'apt-get install git'")
        }
        return found
    }

    /// Runs `git ARGS` in `folder` (`GitCommand`: no configuration but the repository's, no
    /// transport, killed with its children at the deadline); its standard output, refused past
    /// `maxBytes` or the deadline; a failure carries git's message.
    static func run(_ arguments: [String], in folder: String, maxBytes: Int, what: String? = nil) throws -> Data {
        let outcome: GitCommand.Outcome
        do { outcome = try GitCommand.run(arguments, in: folder, git: try gitExecutable(), deadline: deadline, maxBytes: maxBytes) } catch let error as Failure {
            throw error
        } catch {
            throw Failure("cannot run git in \(folder): \(error)")
        }
        if outcome.tooLarge { throw Failure("\(what ?? "git's answer") is larger than \(maxBytes) bytes, the limit for a manifest") }
        if outcome.timedOut { throw Failure("git \(arguments.first ?? "") in \(folder) did not finish within \(Int(deadline)) s") }
        guard outcome.succeeded else {
            let message = outcome.errorText
            if let what { throw Failure("cannot read \(what): \(message.isEmpty ? "git failed" : message)") }
            throw Failure(message.isEmpty ? "git \(arguments.first ?? "") failed in \(folder)" : "git: \(message)")
        }
        return outcome.output
    }
}
