import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The projects this user's Derive built, kept outside every project: the token `projects` in
/// the folder of tokens (`$XDG_STATE_HOME/derive/states/projects`, else
/// `~/.local/state/derive/states/projects`; 0600, written whole and renamed into place). Each
/// line names one manifest, its lock, its build state folder and its buckets' folders, as the
/// file system named them at its last build that wrote anything.
///
/// Why: the claim lookup finds another project by looking around a file (`ForeignProjectFiles`:
/// folders above, beside and below, within bounds). A project whose lock and state lie behind a
/// symlinked folder or at an absolute path far away, and whose manifest was then removed, left
/// nothing there to find: the original adopted its file as a "restored copy" and `clean` deleted
/// it (attack 50a's F1). The registry names it wherever its files lie; the lookup asks it of a
/// file in one of the registered buckets' folders (`ForeignRecordedOutputs.installerClaim`).
///
/// Bounded: at most `maxEntries` lines and `StateFolderTrust.maxTokenBytes` bytes (the oldest
/// lines go first), `maxBuckets` folders a line. A line whose manifest, lock and state folder are
/// all gone is dropped when the registry is written. Never written inside one of the building
/// manifest's buckets (a rule could write over it, serve could answer it). A registry that is
/// there but cannot be read is doubt: nothing is adopted on a guess then (`ForeignClaimLookup`).
public enum ProjectRegistry {
    public struct Entry: Sendable, Equatable {
        /// The manifest as its state's owner record names it (`StateOwner.name`).
        public var manifest: String
        /// Its lock and build state folder (absolute, links on the way resolved).
        public var lock: String
        public var state: String
        /// Bucket name → its folder (absolute, real).
        public var buckets: [String: String]

        public init(manifest: String, lock: String, state: String, buckets: [String: String]) {
            self.manifest = manifest; self.lock = lock; self.state = state; self.buckets = buckets
        }

        /// Whether the real path `real` lies in one of its buckets' folders.
        public func holds(_ real: String) -> Bool {
            buckets.values.contains { folder in real.utf8.starts(with: ((folder == "/" ? "" : folder) + "/").utf8) }
        }
    }

    /// What the registry holds: its lines, or why it cannot be read (doubt).
    public enum Contents: Sendable {
        case entries([Entry])
        case unreadable(String)
    }

    static let tokenName = "projects"
    static let header = "derive-projects 1"
    public static let maxEntries = 1024
    public static let maxBuckets = 64

    /// The registry's path, for messages; nil when no folder of tokens is known.
    public static var path: String? { StateBinding.folder().map { $0 + "/" + tokenName } }

    /// The registry's lines; none when it is not there (nothing built yet, or no home known).
    public static func read() -> Contents {
        guard let path else { return .entries([]) }
        var info = stat()
        if lstat(path, &info) != 0, errno == ENOENT { return .entries([]) }
        guard let data = StateFolderTrust.readToken(name: tokenName) else {
            return .unreadable("the registry of built projects \(path) cannot be read (not a regular file of yours of at most \(StateFolderTrust.maxTokenBytes) bytes, or a folder on the way to it is not yours)")
        }
        guard let entries = parse(data) else {
            return .unreadable("the registry of built projects \(path) does not hold Derive's lines")
        }
        return .entries(entries)
    }

    static func parse(_ data: Data) -> [Entry]? {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(header), lines.count <= maxEntries + 1 else { return nil }
        var entries: [Entry] = []
        for line in lines.dropFirst() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let manifest = object["manifest"] as? String, let lock = object["lock"] as? String,
                  let state = object["state"] as? String, let buckets = object["buckets"] as? [String: String],
                  manifest.hasPrefix("/"), lock.hasPrefix("/"), state.hasPrefix("/"), buckets.count <= maxBuckets,
                  buckets.values.allSatisfy({ $0.hasPrefix("/") }) else { return nil }
            entries.append(Entry(manifest: manifest, lock: lock, state: state, buckets: buckets))
        }
        return entries
    }

    static func encode(_ entries: [Entry]) -> String {
        var text = header + "\n"
        for entry in entries {
            let object: [String: Any] = ["manifest": entry.manifest, "lock": entry.lock, "state": entry.state, "buckets": entry.buckets]
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { continue }
            text += String(decoding: data, as: UTF8.self) + "\n"
        }
        return text
    }

    /// `path` with every link on the way resolved, as far as it exists (a bucket folder a first
    /// build has yet to make keeps its missing tail as written).
    public static func realName(_ path: String) -> String {
        var head = URL(literalFilePath: path).standardizedFileURL.path
        var tail: [String] = []
        while head != "/", !head.isEmpty {
            if let resolved = realpath(head, nil) {
                defer { free(resolved) }
                let base = String(cString: resolved)
                return ([base == "/" ? "" : base] + tail.reversed()).joined(separator: "/")
            }
            tail.append((head as NSString).lastPathComponent)
            head = (head as NSString).deletingLastPathComponent
        }
        return "/" + tail.reversed().joined(separator: "/")
    }

    /// Whether nothing of the entry is there any more (manifest, lock and state folder all gone).
    static func isGone(_ entry: Entry) -> Bool {
        [entry.manifest, entry.lock, entry.state].allSatisfy { path in
            var info = stat()
            return lstat(path, &info) != 0 && errno == ENOENT
        }
    }

    /// Records `entry` (a changed line replaces its old one, last). Not written when the registry would
    /// lie in one of `entry`'s buckets' folders, nor over a registry that cannot be read (its
    /// doubt stands until the user moves it away). Serialised with other builds by a lock on the
    /// folder of tokens. Throws when it cannot be written.
    public static func register(_ entry: Entry) throws {
        guard let path else { return }
        let folder = RealFolder.of((path as NSString).deletingLastPathComponent)
        if entry.holds(folder + "/" + tokenName) || entry.buckets.values.contains(folder) {
            // Said, not silent (attack 51a's 1): XDG_STATE_HOME inside a bucket.
            throw PlanError(message: "it would lie in a bucket of this manifest (\(path)): set XDG_STATE_HOME outside the buckets")
        }
        var entry = entry
        if entry.buckets.count > maxBuckets {
            entry.buckets = Dictionary(uniqueKeysWithValues: entry.buckets.sorted { $0.key < $1.key }.prefix(maxBuckets).map { ($0.key, $0.value) })
        }
        // A quick look first: a build of an unchanged project writes nothing.
        if case .entries(let known) = read(), known.contains(entry) { return }
        let descriptor = try StateFolderTrust.openTokenFolder(create: true)
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0, errno == EINTR {}
        defer { flock(descriptor, LOCK_UN) }
        var entries: [Entry]
        switch read() {
        case .entries(let known): entries = known
        // Never written over (its doubt stands), but said (attack 51a's 2).
        case .unreadable(let why): throw PlanError(message: why + "; move it away (the next build writes it anew)")
        }
        if entries.contains(entry) { return }
        entries.removeAll { $0.state == entry.state || $0.manifest == entry.manifest || isGone($0) }
        entries.append(entry)
        if entries.count > maxEntries { entries.removeFirst(entries.count - maxEntries) }
        var text = encode(entries)
        while text.utf8.count > StateFolderTrust.maxTokenBytes, entries.count > 1 {
            entries.removeFirst(max(1, entries.count / 8))
            text = encode(entries)
        }
        try StateFolderTrust.writeToken(text, name: tokenName)
    }
}
