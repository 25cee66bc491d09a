import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The names a manifest of one stem could have: Derive reads a manifest of any name, so
/// `derive.yaml`, `derive.YML`, `derive.json` and `derive` all default to `derive.lock`.
extension ControlFiles {
    static let manifestExtensions = ["yaml", "yml", "json"]
    /// `.yaml`, `.yml`, `.json` as bytes (`hasManifestExtension`).
    static let manifestSuffixes = manifestExtensions.map { Array(("." + $0).utf8) }

    /// The files in `folder` a manifest of `stem` could be, the extension compared without
    /// case (`derive.YAML` and `derive.yaml` find each other, whichever is validated).
    /// The folder is listed once per `ReadSnapshot` (attack 52c's 1: every sibling's own load
    /// listed the shared folder again, 90 listings in one no-op beside 64 siblings).
    static func manifestCandidates(stem: String, in folder: String) -> [String] {
        let names = ReadSnapshot.answer("folder names", folder) { (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] }
        return names.filter { name in
            guard name != stem else { return true }
            guard name.hasPrefix(stem + ".") else { return false }
            return manifestExtensions.contains(String(name.dropFirst(stem.count + 1)).lowercased())
        }.sorted().map { folder + "/" + $0 }
    }

    /// The manifests in `folder` of any name (a manifest's extension, any stem) that parse as
    /// one: the neighbours whose lock and state folder a manifest's are compared with, by the
    /// validator and by `derive init`.
    static func manifests(in folder: String) -> [String] {
        manifestNames(in: folder).sorted().map { folder + "/" + $0 }.filter(couldBeManifest)
    }

    /// The names in `folder` with a manifest's extension (`hasManifestExtension`), as
    /// `FileManager.contentsOfDirectory` filtered by it would give them, but read with `readdir`
    /// and judged on the entry's bytes first: a name is made a `String` only when it ends in
    /// `.yaml`, `.yml` or `.json` in any case. Every no-op's validation lists each folder above
    /// the buckets (`foreignStateFolder`), `/tmp` with its thousands of names included, and
    /// Foundation made a string (and an array of them) of every name there (issue 15).
    /// `ManifestExtensionTests` compares it with the Foundation listing. Kept while the folder's
    /// stamp stays (`StampedAnswers`: an entry added, removed or renamed changes its times), so
    /// each folder is listed once per process however many neighbours walk past it (attack 50c's M5).
    static func manifestNames(in folder: String) -> [String] {
        listedManifestNames.answer(folder, stamping: [folder]) { manifestNamesListedNow(in: folder) }
    }

    static let listedManifestNames = StampedAnswers<[String]>()

    /// `manifestNames` listed now (the slow path the kept answers must equal).
    static func manifestNamesListedNow(in folder: String) -> [String] {
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name: String? = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: UInt8.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) { start in
                    let bytes = UnsafeBufferPointer(start: start, count: strlen(UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)))
                    // The byte test `hasManifestExtension` starts with; "." and ".." never pass it.
                    guard endsLikeManifest(bytes) else { return nil }
                    return String(decoding: bytes, as: UTF8.self)
                }
            }
            if let name, hasManifestExtension(name) { names.append(name) }
        }
        return names
    }

    /// `hasManifestExtension`'s byte test on a name's bytes, by index: whether they end in one of
    /// `manifestSuffixes`, each byte compared with `| 0x20` (so it passes a few names that are no
    /// manifest's, such as `a\u{0E}yaml`, which the exact test then turns down). Most names fail at
    /// their last byte; the generic `zip` over reversed bytes was most of a debug no-op's listing.
    static func endsLikeManifest(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for suffix in manifestSuffixes where bytes.count >= suffix.count {
            let start = bytes.count - suffix.count
            var index = suffix.count - 1
            while index >= 0, bytes[start + index] | 0x20 == suffix[index] { index -= 1 }
            if index < 0 { return true }
        }
        return false
    }

    /// Whether `name`'s extension (`NSString.pathExtension`, without case) is a manifest's.
    /// Validation lists every folder above each bucket (`foreignStateFolder`), `/tmp` with its
    /// thousands of entries included: `pathExtension` on each name was two thirds of a one-edit
    /// plan at 4 000 outputs (issue 15). Such a name ends in `.` and the extension's letters in
    /// ASCII (only ASCII letters lower to them), so that byte test comes first and the exact one
    /// decides for the few names it passes (`ManifestExtensionTests`).
    static func hasManifestExtension(_ name: String) -> Bool {
        let bytes = name.utf8
        guard manifestSuffixes.contains(where: { suffix in
            bytes.count >= suffix.count && zip(bytes.reversed(), suffix.reversed()).allSatisfy { $0 | 0x20 == $1 }
        }) else { return false }
        return manifestExtensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// A regular file (through links) at one of those names that parses as a manifest: a YAML
    /// (or JSON) mapping with `version` and `buckets`, `derivatives` or `include` at its top, so
    /// a shell wrapper called `derive` or a `derive.json` of another tool is not taken for one.
    static func couldBeManifest(_ path: String) -> Bool {
        manifestText(path).map { couldBeManifest(contents: $0) } ?? false
    }

    /// `couldBeManifest` on a file's bytes (`ProjectMarkers.why`: what serve's writers never create).
    /// Judged once per process for the same bytes (attack 50c's M5: each sibling's manifest was
    /// parsed again by every check that met it); texts up to 64 KiB, at most 1 024 of them, kept.
    static func couldBeManifest(contents data: Data) -> Bool {
        guard data.count <= 64 << 10 else { return couldBeManifestParsing(contents: data) }
        if let known = judgedManifests.withLock({ $0[data] }) { return known }
        let judged = couldBeManifestParsing(contents: data)
        judgedManifests.withLock { kept in
            if kept.count >= 1024 { kept.removeAll() }
            kept[data] = judged
        }
        return judged
    }

    private static let judgedManifests = LockedBox<[Data: Bool]>([:])

    /// `couldBeManifest` parsing the bytes now.
    static func couldBeManifestParsing(contents data: Data) -> Bool {
        guard data.count <= ProjectMarkers.maxManifestBytes, !data.contains(0),
              let node = try? YAMLLoader.load(data, file: "manifest"), case .mapping(let pairs) = node.kind else { return false }
        // What the loader requires of a root manifest (`version`), and something to build.
        let keys = Set(pairs.compactMap { $0.key.scalar })
        return keys.contains("version") && !keys.isDisjoint(with: ["buckets", "derivatives", "include"])
    }
}

extension ControlFiles {
    /// A regular file at a manifest's name whose text does not parse as YAML at all but reads like
    /// a manifest being edited (a `version:` or `buckets:` or `derivatives:` key at the start of a
    /// line): a project mid-edit (attack 41c's C2: `from: [oops` appended to sub/derive.yaml made
    /// it no manifest, and `--overwrite` then wrote over it, its lock and its sources).
    static func looksLikeBrokenManifest(_ path: String) -> Bool {
        manifestText(path).map { looksLikeBrokenManifest(contents: $0, besideState: besideState(path), ownState: besideOwnState(path), path: path) } ?? false
    }

    /// `looksLikeBrokenManifest` on a file's bytes; `besideState`: its folder holds `.derive`.
    /// `ownState`: the state folder or the Derive lock of this very file's stem is beside it
    /// (`.derive/STEM`, `STEM.lock`): only then is a near-empty file, or a mapping of manifest
    /// keys alone, a manifest cut back (a `{}` settings file beside another manifest's `.derive`
    /// is no project). `path`: the file's, when it is one on disk: a text that does not parse and
    /// declares a lock that is a Derive lock, or a state folder holding a state database, is beside
    /// its own state wherever those lie (`declaresOwnState`; attack 46b's N2).
    static func looksLikeBrokenManifest(contents data: Data, besideState: Bool, ownState: Bool = false, path: String? = nil) -> Bool {
        guard data.count <= ProjectMarkers.maxManifestBytes, !data.contains(0) else { return false }
        // Emptied (a save cut short, `truncate`) beside Derive's state: a built project's manifest
        // mid-edit (attack 43b's finding 1), as one with a syntax error is.
        if data.isEmpty { return besideState }
        // Near empty (a newline, a comment, a BOM, `{}`, `---`, `null`) beside its state or lock:
        // emptied as well (attack 46b's N3: only 0 bytes counted).
        if ownState {
            let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\u{FEFF}", with: "")
            let kept = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }.joined()
            if ["", "{}", "[]", "{", "[", "---", "...", "null", "~", "---...", "{}}"].contains(kept) { return true }
        }
        if let node = try? YAMLLoader.load(data, file: "manifest") {
            // Parsed: a mapping of manifest keys only (`version: 1` alone) beside its state or
            // lock is one cut back (attack 46b's N3); a package.json beside it never is.
            guard ownState, case .mapping(let pairs) = node.kind, !pairs.isEmpty else { return false }
            return pairs.allSatisfy { pair in pair.key.scalar.map { ManifestLoader.topLevelKeys.contains($0) || $0.hasPrefix("x-") } ?? false }
        }
        let text = String(decoding: data, as: UTF8.self)
        if ["version:", "buckets:", "derivatives:"].contains(where: { key in text.hasPrefix(key) || text.contains("\n" + key) }) { return true }
        // Beside Derive's state or lock, any spelling of a manifest's key in a file that does not
        // parse (JSON cut short, a flow mapping, quoted keys: attack 46a's H9); or declaring, in
        // any spelling, its `lock:` or `state:` moved where its lock or state database lies
        // (attack 46b's N2: with them moved, it was no project, and its outputs nobody's).
        guard ["version", "buckets", "derivatives"].contains(where: { text.contains($0) }) else { return false }
        return ownState || (path.map { declaresOwnState($0, data) } ?? false)
    }

    /// The lock and state folder a sibling manifest uses: its top-level `lock:` and `state:`
    /// (relative to its folder), else the defaults of its stem. A sibling that cannot be read
    /// as YAML (mid-edit) is read line by line for a top-level `lock:` or `state:` with a plain
    /// value (attack 46a's H2: with its lock and state moved, its defaults named nothing, and its
    /// private outputs were served and deleted), in any spelling (`declaredControlFiles`), else
    /// taken to use the defaults.
    /// Kept while the manifest's stamp stays (`StampedAnswers`, attack 50c's M5).
    static func controlFiles(ofSibling path: String) -> (lock: String, state: String) {
        let found = siblingControlFiles.answer(path, stamping: [path]) { controlFilesReadNow(ofSibling: path) }
        return (found[0], found[1])
    }

    static let siblingControlFiles = StampedAnswers<[String]>()

    /// `controlFiles(ofSibling:)` read now.
    static func controlFilesReadNow(ofSibling path: String) -> [String] {
        let found = controlFilesParsing(ofSibling: path)
        return [found.lock, found.state]
    }

    private static func controlFilesParsing(ofSibling path: String) -> (lock: String, state: String) {
        let url = URL(literalFilePath: path)
        let base = url.deletingLastPathComponent()
        let stem = url.deletingPathExtension().lastPathComponent
        var lock = base.appendingPathComponent(stem + ".lock").standardizedFileURL.path
        var state = base.appendingPathComponent(".derive/" + stem).standardizedFileURL.path
        if let data = FileManager.default.contents(atPath: path),
           let node = try? YAMLLoader.load(data, file: path), case .mapping(let pairs) = node.kind {
            for pair in pairs {
                guard let value = pair.value.scalar, !value.isEmpty else { continue }
                let resolved = URL(literalFilePath: value, relativeTo: URL(literalFilePath: base.path + "/")).standardizedFileURL.path
                if pair.key.scalar == "lock" { lock = resolved }
                if pair.key.scalar == "state" { state = resolved }
            }
        } else if let data = FileManager.default.contents(atPath: path), data.count <= ProjectMarkers.maxManifestBytes {
            // Any spelling: block lines, a flow mapping, JSON, quoted keys (attack 46b's N2: only
            // block lines were read, and a JSON or flow manifest's moved lock and state were lost).
            let declared = declaredControlFiles(ofBroken: path, data)
            if let found = declared.lock { lock = found }
            if let found = declared.state { state = found }
        }
        return (lock, state)
    }

    /// Whether the sibling manifest at `path` would use this manifest's lock or state folder.
    func sharesControlFiles(withSibling path: String) -> Bool {
        let shared = Self.shared(Self.controlFiles(ofSibling: path), lock: manifest.lockFile, state: manifest.stateFolder)
        return shared.lock || shared.state
    }

    /// Which of a lock and a state folder a sibling's control files (`theirs`) are too.
    static func shared(_ theirs: (lock: String, state: String), lock: String, state: String) -> (lock: Bool, state: Bool) {
        (FileSystemPath(manifest: theirs.lock).sameFile(as: FileSystemPath(manifest: lock)),
         FileSystemPath(manifest: theirs.state).sameFile(as: FileSystemPath(manifest: state)))
    }
}

/// The manifests in a folder that a new manifest of `stem` would share its default lock and
/// state folder with (`derive init` beside a `derive.yml`: attack round 25).
public enum SiblingManifests {
    /// Whether a change at `path`, a file in `manifest`'s folder, may change what another manifest
    /// there writes or records (`neighbourLocks`): a file at a manifest's name (made, edited,
    /// removed) that parses as one or is gone now, or a neighbour's lock. The names narrowing gives
    /// are decided by them (attack 46c's t15: `build --watch` did not see a new neighbour writing
    /// `a-800.webp`). This manifest's own files are the caller's to leave out.
    public static func neighbourChange(_ path: String, besides manifest: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        if ControlFiles.hasManifestExtension(name) {
            var info = stat()
            return lstat(path, &info) != 0 || ControlFiles.couldBeManifest(path) || ControlFiles.looksLikeBrokenManifest(path)
        }
        guard ProjectMarkers.isLockName(name) else { return false }
        let folder = FileSystemPath(manifest: (path as NSString).deletingLastPathComponent)
        return neighbourLocks(of: manifest).contains { neighbour in
            (neighbour.lock as NSString).lastPathComponent == name
                && FileSystemPath(manifest: (neighbour.lock as NSString).deletingLastPathComponent).sameFile(as: folder)
        }
    }

    /// Whether `path`, a file at a manifest's name that does not parse as one, reads like a
    /// manifest being edited (`ControlFiles.looksLikeBrokenManifest`), not another tool's file.
    public static func looksMidEdit(_ path: String) -> Bool {
        ControlFiles.looksLikeBrokenManifest(path)
    }

    public static func existing(stem: String, in folder: String) -> [String] {
        ControlFiles.manifestCandidates(stem: stem, in: folder).filter(ControlFiles.couldBeManifest)
    }

    /// The files a new manifest of `stem` may not be written beside (`derive init`): those above,
    /// and every other file (through links) at a manifest's name with an extension (`derive.yml`,
    /// `derive.JSON`) whatever it holds. One that does not parse yet (a typo, `{}`, empty) is a
    /// manifest in the making: once it parses, the validator takes it as a sibling of the new one
    /// and both are refused (issue #13). The name without extension counts only as the validator
    /// counts it: a file `derive` is the program or its wrapper script far more often.
    /// The manifests in `folder` of any name that a new manifest `name` (absent yet: its lock and
    /// state are its stem's defaults) would share its lock or state folder with, read as the
    /// validator reads a sibling (`site.yaml` with `lock: derive.lock` or `state: .derive/derive`
    /// beside a new `derive.yaml`: attack 13b's finding 6), each with what it shares.
    public static func sharingControlFiles(withNew name: String, in folder: String) -> [(manifest: String, lock: Bool, state: Bool)] {
        let new = folder + "/" + name
        let ours = ControlFiles.controlFiles(ofSibling: new)
        return ControlFiles.manifests(in: folder)
            .filter { $0 != new }
            .compactMap { candidate in
                let shared = ControlFiles.shared(ControlFiles.controlFiles(ofSibling: candidate), lock: ours.lock, state: ours.state)
                return shared.lock || shared.state ? (candidate, shared.lock, shared.state) : nil
            }
    }

    public static func blockingNewManifest(stem: String, in folder: String) -> [String] {
        ControlFiles.manifestCandidates(stem: stem, in: folder).filter { candidate in
            if ControlFiles.couldBeManifest(candidate) { return true }
            guard (candidate as NSString).lastPathComponent != stem else { return false }
            var info = stat()
            return stat(candidate, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
    }
}

extension SiblingManifests {
    /// The state folders of the other manifests in `manifest`'s folder (their `state:`, else
    /// their stem's default), `ownState` (this manifest's) left out: the states whose records
    /// say which files those neighbours wrote, so this manifest never adopts, replaces or
    /// deletes them (attack 40a's A3: `cp derive.yaml site.yaml` took derive.yaml's outputs over).
    public static func neighbourStateFolders(of manifest: String, ownState: String) -> [String] {
        let manifest = URL(literalFilePath: manifest).standardizedFileURL.path
        let ownState = URL(literalFilePath: ownState).standardizedFileURL.path
        let folder = (manifest as NSString).deletingLastPathComponent
        let own = FileSystemPath(manifest: manifest), state = FileSystemPath(manifest: ownState)
        return ControlFiles.manifests(in: folder)
            .filter { !FileSystemPath(manifest: $0).sameFile(as: own) }
            .map { ControlFiles.controlFiles(ofSibling: $0).state }
            .filter { !FileSystemPath(manifest: $0).sameFile(as: state) }
    }
}

extension SiblingManifests {
    /// The refusal of an output at another manifest's lock: one text for `validate` and `plan`.
    /// `gone`: its manifest is no longer there, its lock and state left (they still claim its outputs).
    public static func lockTargetMessage(path: String, owner: String, output: String, gone: Bool = false) -> String {
        let whose = gone ? "another manifest, which is no longer there (its lock and state still claim its outputs)" : "another manifest"
        return "\(path) is the lock of \(owner), \(whose); \(output) may not be written over it, with or without --overwrite (two manifests never touch each other's files): change the rule's 'to:'"
    }

    /// The manifest (not `manifest`, this one) whose lock the file at `path` is: a manifest in
    /// its folder of the lock's stem (`sub/derive.lock` → `sub/derive.yaml`) that uses it as its
    /// lock; nil when none does. Only a name ending in `.lock` is looked at, so an output path
    /// costs one suffix test (attack 40a's A6: an output written over another project's lock).
    public static func lockOwner(of path: String, besides manifest: String) -> String? {
        let name = (path as NSString).lastPathComponent
        guard name.count > 5, name.lowercased().hasSuffix(".lock") else { return nil }
        let path = URL(literalFilePath: path).standardizedFileURL.path
        let folder = (path as NSString).deletingLastPathComponent
        let own = FileSystemPath(manifest: URL(literalFilePath: manifest).standardizedFileURL.path), file = FileSystemPath(manifest: path)
        return ControlFiles.manifestCandidates(stem: String(name.dropLast(5)), in: folder).first { candidate in
            !FileSystemPath(manifest: candidate).sameFile(as: own) && ControlFiles.couldBeManifest(candidate)
                && FileSystemPath(manifest: ControlFiles.controlFiles(ofSibling: candidate).lock).sameFile(as: file)
        }
    }
}

extension SiblingManifests {
    /// A neighbour's lock: the manifest and the lock it writes, and whether it is read as a
    /// manifest (`couldBeManifest`; its `lock:` read) or only named like one (it does not parse:
    /// its stem's default lock is the one it last wrote, as far as anything can tell).
    public struct NeighbourLock: Sendable, Equatable {
        public var manifest: String
        public var lock: String
        public var parses: Bool
    }

    /// The lock `manifest` uses as its neighbours read it (its `lock:`, else its stem's default):
    /// the lock `neighbourLocks` leaves out as this manifest's own.
    public static func ownLock(of manifest: String) -> String {
        ControlFiles.controlFiles(ofSibling: URL(literalFilePath: manifest).standardizedFileURL.path).lock
    }

    /// The locks of the other manifests in `manifest`'s folder (their `lock:`, else their stem's
    /// default), this manifest's own lock left out: without a state (a fresh clone, `rm -rf
    /// .derive`) a neighbour's lock is the only record of the files it wrote (attack 40a's A3
    /// without a state). A file there with a manifest's extension that does not parse (a bad edit)
    /// still counts, with its stem's default lock: its files are refused, never taken over.
    public static func neighbourLocks(of manifest: String) -> [NeighbourLock] {
        let manifest = URL(literalFilePath: manifest).standardizedFileURL.path
        let folder = (manifest as NSString).deletingLastPathComponent
        let own = FileSystemPath(manifest: manifest)
        let ownLock = FileSystemPath(manifest: ControlFiles.controlFiles(ofSibling: manifest).lock)
        var locks: [NeighbourLock] = []
        for name in ControlFiles.manifestNames(in: folder).sorted() {
            let candidate = folder + "/" + name
            guard !FileSystemPath(manifest: candidate).sameFile(as: own) else { continue }
            var info = stat()
            guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            let parses = ControlFiles.couldBeManifest(candidate)
            // One that does not parse: the lock it declares in any spelling when that is a Derive
            // lock (attack 46b's N2: moved, in JSON or flow style), else its stem's default.
            let declared = ControlFiles.controlFiles(ofSibling: candidate).lock
            let lock = parses || ControlFiles.isDeriveLock(declared) ? declared
                : URL(literalFilePath: candidate).deletingPathExtension().path + ".lock"
            guard !FileSystemPath(manifest: lock).sameFile(as: ownLock) else { continue }
            locks.append(NeighbourLock(manifest: candidate, lock: lock, parses: parses))
        }
        return locks
    }
}
