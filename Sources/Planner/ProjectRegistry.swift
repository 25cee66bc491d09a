import Confinement
import Foundation
import GRDB
import Manifest
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
/// Bounded: at most `maxEntries` lines and `StateFolderTrust.maxTokenBytes` bytes, `maxBuckets`
/// folders a line. A line whose manifest, lock and state folder are all gone is dropped when the
/// registry is written; no other line ever is (at the limit the build says so and is not recorded,
/// found from its state's tokens instead: `recovered`). What the registry lost (removed, moved
/// away, never written) is found again from the state home's tokens on every read. Never written inside one of the building
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
        /// Bucket name → its folder as the manifest named it (absolute, its last name not
        /// followed), for those of `buckets` where that differs from the real folder (a link);
        /// a bucket not here was named by its real folder (or by an older Derive's line). Why: a bucket whose path still
        /// reads the same while its folder is gone (its link removed) was not re-pointed, so the
        /// folder it led to (`buckets`) still holds the files its lock records (attack 54a).
        public var declared: [String: String] = [:]

        public init(manifest: String, lock: String, state: String, buckets: [String: String], declared: [String: String] = [:]) {
            self.manifest = manifest; self.lock = lock; self.state = state; self.buckets = buckets
            self.declared = declared.filter { buckets[$0.key] != nil }
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
    /// Written by a build that found every project the state home's tokens still name (its own
    /// lines, and those `recovered` added): reads trust it whole, with no token read. Version 1
    /// (an older Derive's, which recovered nothing) is read as incomplete.
    static let header = "derive-projects 2"
    static let incompleteHeader = "derive-projects 1"
    /// Kept beside the registry while it may lack a project the state home holds (a build that
    /// could not record itself: the limit, a write that failed): reads recover from the tokens
    /// again until a build writes the registry whole.
    static let incompleteMark = "projects.incomplete"
    public static let maxEntries = 1024
    /// Said when a project cannot be added for the limits (`register`).
    public static let limitReached = "the most it holds"
    public static let maxBuckets = 64

    /// The registry's path, for messages; nil when no folder of tokens is known.
    public static var path: String? { StateBinding.folder().map { $0 + "/" + tokenName } }

    /// The registry's lines, then the projects it lost that the state home still holds
    /// (`recovered`); those alone when it is not there (removed, moved away as the advice for one
    /// that cannot be read says, or never written: a state home inside a bucket). A registry there
    /// that cannot be read is doubt, as is a state home holding more tokens than are read.
    public static func read() -> Contents {
        guard let path else { return .entries([]) }
        var registered: [Entry] = []
        var complete = false
        var info = stat()
        if !(lstat(path, &info) != 0 && errno == ENOENT) {
            guard let data = StateFolderTrust.readToken(name: tokenName) else {
                return .unreadable("the registry of built projects \(path) cannot be read (not a regular file of yours of at most \(StateFolderTrust.maxTokenBytes) bytes, or a folder on the way to it is not yours)")
            }
            guard let (entries, whole) = parseMarked(data) else {
                return .unreadable("the registry of built projects \(path) \(whyUnparsed(data))")
            }
            registered = entries
            complete = whole && lstat(markPath ?? "", &info) != 0 && errno == ENOENT
        }
        // Read whole by the build that wrote it: no token is read (thousands of them, a state
        // home's history, made every validate and serve rescan read each: 0.4 s → 6.4 s).
        if complete { return .entries(registered) }
        switch recovered(except: Set(registered.map(\.state))) {
        case .entries(let found): return .entries(found + registered)
        case .unreadable(let why): return .unreadable(why)
        }
    }

    /// The registry's own lines, without what `recovered` adds, and whether they are whole (its
    /// header says a build wrote it with every project the tokens name, and no mark says one
    /// failed since); none, not whole, when it is not there.
    static func readLines() -> (contents: Contents, whole: Bool) {
        guard let path else { return (.entries([]), true) }
        var info = stat()
        if lstat(path, &info) != 0, errno == ENOENT { return (.entries([]), false) }
        guard let data = StateFolderTrust.readToken(name: tokenName) else {
            return (.unreadable("the registry of built projects \(path) cannot be read (not a regular file of yours of at most \(StateFolderTrust.maxTokenBytes) bytes, or a folder on the way to it is not yours)"), false)
        }
        guard let (entries, whole) = parseMarked(data) else {
            return (.unreadable("the registry of built projects \(path) \(whyUnparsed(data))"), false)
        }
        return (.entries(entries), whole && lstat(markPath ?? "", &info) != 0 && errno == ENOENT)
    }

    /// The mark's path (`incompleteMark`), nil when no folder of tokens is known.
    static var markPath: String? { StateBinding.folder().map { $0 + "/" + incompleteMark } }

    /// Marks the registry as possibly lacking a project (read recovers from the tokens again).
    static func markIncomplete() {
        try? StateFolderTrust.writeToken("derive: the registry of built projects may lack a project; the next build that records one writes it whole\n", name: incompleteMark)
    }

    /// Tokens of build states read at most by `recovered` (a secret per state folder this user
    /// ever built, gone ones too); beyond, the lookup is doubt rather than a guess.
    public static let maxStateTokens = 8 * maxEntries

    /// The projects the state home still holds and the registry does not name (attack 51a's 2: a
    /// registry removed, moved away, or a folder, a link or too big while a project built, lost a
    /// live far project, whose file the site then adopted and cleaned). Each state this user's
    /// Derive sealed has its secret `states/<sha>`, naming the state's database, and most have its
    /// lock's provenance `<sha>.lock`, naming the lock and the bucket folders it was written for.
    /// A project is taken when its state folder or its lock is still there: its manifest as the
    /// state's owner record names it (else the lock's first line), its buckets from the
    /// provenance (else the folders its state records outputs in). `except`: states already named.
    static func recovered(except named: Set<String>) -> Contents {
        guard let descriptor = try? StateFolderTrust.openTokenFolder(create: false) else { return .entries([]) }
        guard let listing = fdopendir(dup(descriptor)) else { close(descriptor); return .entries([]) }
        close(descriptor)
        defer { closedir(listing) }
        var names: [String] = []
        while let item = readdir(listing) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard StateBinding.isToken(name) else { continue }
            names.append(name)
            if names.count > maxStateTokens {
                return .unreadable("the state home \(StateBinding.folder() ?? "") holds more than \(maxStateTokens) build states' tokens, more than Derive reads to find the projects the registry of built projects lost; remove the tokens of build states that are gone (their state.sqlite is no longer at the path their 'state' line names)")
            }
        }
        var found: [Entry] = []
        for name in names.sorted() {
            guard let entry = recoveredEntry(token: name), !named.contains(entry.state) else { continue }
            found.append(entry)
        }
        return .entries(found)
    }

    /// The project the secret `name` (and its lock's provenance) names, when its state folder or lock is still there.
    static func recoveredEntry(token name: String) -> Entry? {
        guard let secret = StateFolderTrust.readToken(name: name) else { return nil }
        var database: String?
        for line in String(decoding: secret, as: UTF8.self).split(separator: "\n") where line.hasPrefix("state ") {
            database = jsonString(line.dropFirst(6))
        }
        guard let database, database.hasPrefix("/") else { return nil }
        let state = (database as NSString).deletingLastPathComponent
        var lock: String?
        var buckets: [String: String] = [:]
        if let provenance = StateFolderTrust.readToken(name: name + ".lock") {
            for line in String(decoding: provenance, as: UTF8.self).split(separator: "\n") {
                if line.hasPrefix("path ") { lock = jsonString(line.dropFirst(5)) }
                // `bucket DEVICE INODE ["name","/real"]`
                if line.hasPrefix("bucket "), let open = line.firstIndex(of: "["),
                   let pair = try? JSONSerialization.jsonObject(with: Data(line[open...].utf8)) as? [String],
                   pair.count == 2, pair[1].hasPrefix("/"), buckets.count < maxBuckets {
                    buckets[pair[0]] = pair[1]
                }
            }
        }
        var info = stat()
        let hasState = lstat(database, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        let hasLock = lock.map { lstat($0, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG } ?? false
        guard hasState || hasLock else { return nil }
        var manifest: String?
        if hasState { manifest = recordedOwner(database) }
        if manifest == nil, hasLock, let lock { manifest = NeighbourProjects.manifestNamed(byLock: lock) }
        guard let manifest, manifest.hasPrefix("/") else { return nil }
        if buckets.isEmpty, hasState {
            for (output, folder) in ForeignRecordedOutputs.stateOutputs(state: state, manifest: manifest) where !folder.isEmpty {
                guard let slash = output.firstIndex(of: "/"), buckets.count < maxBuckets else { continue }
                buckets[String(output[..<slash])] = folder
            }
        }
        return Entry(manifest: manifest, lock: lock ?? (manifest as NSString).deletingPathExtension + ".lock", state: state, buckets: buckets)
    }

    private static func jsonString<S: StringProtocol>(_ text: S) -> String? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) as? String
    }

    /// The manifest the state database at `database` names as its owner (read-only), nil when none.
    private static func recordedOwner(_ database: String) -> String? {
        guard (try? StateFolderTrust.checkDatabaseFiles(database)) != nil else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: database, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        return (try? queue.read { db in try StateOwner.recordedOwner(db) })?.manifest
    }

    static func parse(_ data: Data) -> [Entry]? { parseMarked(data)?.entries }

    /// Why `parseMarked` refused `data`, said as the cause (attack 52a's F11: 1 070 well-formed
    /// lines were "not Derive's lines").
    static func whyUnparsed(_ data: Data) -> String {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        if lines.first == Substring(header) || lines.first == Substring(incompleteHeader), lines.count > maxEntries + 1 {
            return "holds \(lines.count - 1) lines, more than the \(maxEntries) a registry holds (a build never writes more: added by hand or by another tool)"
        }
        return "does not hold Derive's lines"
    }

    /// The lines, and whether the header says they are whole (`header`, not `incompleteHeader`).
    /// The last registry parsed is kept by its very bytes: serve reads it at each rescan, and 910
    /// lines parsed each time cost more than the rest of a rescan (s53).
    static func parseMarked(_ data: Data) -> (entries: [Entry], whole: Bool)? {
        if let kept = lastParsed.get(), kept.data == data { return kept.parsed }
        let parsed = parseMarkedAfresh(data)
        lastParsed.set((data, parsed))
        return parsed
    }
    private static let lastParsed = LastParsed()

    /// The last registry parsed, shared by the threads of one process.
    private final class LastParsed: @unchecked Sendable {
        private let lock = NSLock()
        private var kept: (data: Data, parsed: (entries: [Entry], whole: Bool)?)?
        func get() -> (data: Data, parsed: (entries: [Entry], whole: Bool)?)? { lock.withLock { kept } }
        func set(_ value: (data: Data, parsed: (entries: [Entry], whole: Bool)?)) { lock.withLock { kept = value } }
    }

    static func parseMarkedAfresh(_ data: Data) -> (entries: [Entry], whole: Bool)? {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(header) || lines.first == Substring(incompleteHeader), lines.count <= maxEntries + 1 else { return nil }
        var entries: [Entry] = []
        for line in lines.dropFirst() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let manifest = object["manifest"] as? String, let lock = object["lock"] as? String,
                  let state = object["state"] as? String, let buckets = object["buckets"] as? [String: String],
                  manifest.hasPrefix("/"), lock.hasPrefix("/"), state.hasPrefix("/"), buckets.count <= maxBuckets,
                  buckets.values.allSatisfy({ $0.hasPrefix("/") }) else { return nil }
            // Optional: lines of an older Derive have none.
            var declared = object["declared"] as? [String: String] ?? [:]
            if !declared.values.allSatisfy({ $0.hasPrefix("/") }) || declared.count > maxBuckets { declared = [:] }
            entries.append(Entry(manifest: manifest, lock: lock, state: state, buckets: buckets, declared: declared))
        }
        return (entries, lines.first == Substring(header))
    }

    static func encode(_ entries: [Entry]) -> String {
        var text = header + "\n"
        for entry in entries {
            var object: [String: Any] = ["manifest": entry.manifest, "lock": entry.lock, "state": entry.state, "buckets": entry.buckets]
            if !entry.declared.isEmpty { object["declared"] = entry.declared }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { continue }
            text += String(decoding: data, as: UTF8.self) + "\n"
        }
        return text
    }

    /// A bucket's folder as its manifest names it: its parent's real path and its own last name,
    /// which is never followed (a link there is what `Entry.declared` tells from its target).
    public static func declaredName(_ path: String) -> String {
        let standard = URL(literalFilePath: path).standardizedFileURL.path
        let parent = (standard as NSString).deletingLastPathComponent
        guard !parent.isEmpty, standard != "/" else { return standard }
        let real = realName(parent)
        return (real == "/" ? "" : real) + "/" + (standard as NSString).lastPathComponent
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

    /// The lines, each whose manifest, lock and state are no longer where it names them rewritten
    /// where its state folder lies now when it moved (`MovedStateFolder`, by the folder's identity).
    public static func followingMoves(_ entries: [Entry]) -> [Entry] {
        entries.map { entry in
            guard isGone(entry), let now = MovedStateFolder.find(registered: entry.state) else { return entry }
            return MovedStateFolder.moved(entry, to: now)
        }
    }

    /// At most `maxBuckets` of `buckets` (name → folder): those `outputs` names (the buckets its
    /// rules and index write to) first, then the others by name. Why: the line kept the first 64
    /// by name, and a far taker with 72 buckets lost the one holding its outputs; the original
    /// then adopted its file and `clean` deleted it (attack 52a's F7).
    public static func keptBuckets(_ buckets: [String: String], outputs: Set<String>) -> [String: String] {
        guard buckets.count > maxBuckets else { return buckets }
        let ordered = buckets.sorted { a, b in
            let (aOut, bOut) = (outputs.contains(a.key), outputs.contains(b.key))
            return aOut != bOut ? aOut : a.key < b.key
        }
        return Dictionary(uniqueKeysWithValues: ordered.prefix(maxBuckets).map { ($0.key, $0.value) })
    }

    /// `entry` with the folders its project's line recorded (same state folder or manifest) for
    /// buckets `entry` no longer declares while its lock still records them (a line or a left
    /// line in that bucket): the folder those lines count through (`RegisteredWriters.lockFolders`).
    /// Attack 56c's H3: a taker cut to `version: 1` after losing its state kept its file as one it
    /// left in place, but its next build wrote its line with no bucket, and the site it took the
    /// file from adopted and deleted it. A bucket the lock no longer records goes.
    public static func carryingRecordedBuckets(_ entry: Entry) -> Entry {
        guard case .entries(let lines) = readLines().contents,
              let old = lines.last(where: { $0.state == entry.state || $0.manifest == entry.manifest }) else { return entry }
        let undeclared = old.buckets.filter { entry.buckets[$0.key] == nil }
        guard !undeclared.isEmpty, let (_, lock) = ForeignClaims.readLock(entry.lock) else { return entry }
        let recorded = Set((lock.entries.values.map(\.path) + lock.left.values.map(\.path)).compactMap { path in
            path.split(separator: "/", maxSplits: 1).first.map(String.init)
        })
        var carried = entry
        for (name, folder) in undeclared where recorded.contains(name) {
            carried.buckets[name] = folder
            if let declared = old.declared[name] { carried.declared[name] = declared }
        }
        return carried
    }

    /// Whether nothing of the entry is there any more (manifest, lock and state folder all gone).
    static func isGone(_ entry: Entry) -> Bool {
        [entry.manifest, entry.lock, entry.state].allSatisfy { path in
            var info = stat()
            return lstat(path, &info) != 0 && errno == ENOENT
        }
    }

    /// Whether the registry holds `entry`'s very line: one read of its bytes, no parse (a no-op
    /// build asks it, to register a project renamed or moved since: attack 51a's 1b c).
    public static func isRegistered(_ entry: Entry) -> Bool {
        guard let data = StateFolderTrust.readToken(name: tokenName) else { return false }
        // Only in a registry known whole: one that is not is written whole by the next build.
        var info = stat()
        guard data.starts(with: Data((header + "\n").utf8)), lstat(markPath ?? "", &info) != 0, errno == ENOENT else { return false }
        let line = Data(("\n" + encode([entry]).dropFirst(header.utf8.count + 1)).utf8)
        return data.range(of: line) != nil
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
            entry.declared = entry.declared.filter { entry.buckets[$0.key] != nil }
        }
        // A quick look first: a build of an unchanged project writes nothing.
        if isRegistered(entry) { return }
        let descriptor = try StateFolderTrust.openTokenFolder(create: true)
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0, errno == EINTR {}
        defer { flock(descriptor, LOCK_UN) }
        var entries: [Entry]
        let (contents, whole) = readLines()
        var recoveredWhole = whole
        switch contents {
        case .entries(let known):
            entries = known
            // Not known whole (missing, an older Derive's, a build since that could not record
            // itself): the projects the tokens still name join it, so that it is whole again.
            if !whole {
                switch recovered(except: Set(known.map(\.state))) {
                case .entries(let found): entries = found + entries; recoveredWhole = true
                case .unreadable: recoveredWhole = false
                }
            }
        // Never written over (its doubt stands), but said (attack 51a's 2). Moved away, the lines
        // it held come back from the state home (`recovered`), and the next build writes it anew.
        case .unreadable(let why): throw PlanError(message: why + "; move it away (the next build writes it anew, and the projects it named are found again from the state home)")
        }
        if entries.contains(entry), whole { return }
        // Only lines of this project's old self, or of projects whose manifest, lock and state
        // are all gone: a line whose lock or state is still there is never dropped (attack 51a's
        // 2b: the "oldest" line dropped at the limit was a live far taker's).
        // A project moved since (its state found by its identity) is kept where it lies now,
        // never dropped as gone (attack 52a's F1: the taker's line went at the next build).
        entries = followingMoves(entries)
        // A gone line whose state was not searched for to the end (`MovedStateFolder.Answer.unsearched`)
        // may have moved: kept, never dropped on a guess.
        entries.removeAll { $0.state == entry.state || $0.manifest == entry.manifest
            || (isGone($0) && MovedStateFolder.answer(registered: $0.state) != .unsearched) }
        entries.append(entry)
        let text = encode(entries)
        guard entries.count <= maxEntries, text.utf8.count <= StateFolderTrust.maxTokenBytes else {
            markIncomplete()
            throw PlanError(message: "the registry of built projects \(path) holds \(entries.count - 1) projects whose manifest, lock or build state is still there, "
                + "\(limitReached) (\(maxEntries) lines, \(StateFolderTrust.maxTokenBytes) bytes): no line is dropped; remove the manifest, lock and build state of projects "
                + "you no longer build (a line goes at the next build once all three are gone), or set XDG_STATE_HOME to another folder for some of them")
        }
        do {
            try StateFolderTrust.writeToken(recoveredWhole ? text : incompleteHeader + text.dropFirst(header.utf8.count), name: tokenName)
        } catch {
            markIncomplete()
            throw error
        }
        if recoveredWhole { StateFolderTrust.removeToken(name: incompleteMark) }
    }
}
