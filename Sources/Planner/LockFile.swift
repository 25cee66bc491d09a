import Confinement
import Foundation
import Manifest
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// The lock beside the manifest: what every output is (action key, digest, size, format), so a
/// fresh clone adopts outputs instead of re-rendering them and a review diff shows what changed.
///
/// Format: JSON lines, sorted by output. The first line names the format; every other line is one
/// object with the same keys in the same order, so a diff shows one line per changed output and
/// any key (spaces, newlines, quotes, non-ASCII) round-trips through JSON's escapes:
///
///     {"format":"derive.lock/2","manifest":"site.yaml","index":"site/index.json","indexDigest":"…","note":"…"}
///     {"path":"site/thumbs/a b.jpg","actionKey":"…","digest":"…","width":240,"height":160,"bytes":9120,"format":"jpg"}
///
/// Files a build left in place instead of deleting them (an old output it cannot prove it wrote,
/// an old index changed since) follow the outputs, sorted, one `left` line each, with the ACL the
/// file was left under and why (`LockFile.Left`). A lock holding such lines is
/// `derive.lock/3`: a Derive that knows only `/2` finds it not a valid lock, trusts none of it
/// (adopts and deletes nothing on its word) and rewrites it. A lock without them is written as
/// `/2`, byte for byte as before; both are read.
///
///     {"left":"site/internal/a-100.webp","acl":"private","why":"known only from the lock"}
public struct LockFile: Sendable, Hashable {
    public struct Entry: Sendable, Hashable, Codable {
        public var path: String
        public var actionKey: String
        public var digest: String
        public var width: Int
        public var height: Int
        public var bytes: Int64
        /// The output's format as recorded (`jpg`, `json`, ...).
        public var format: String

        public init(path: String, actionKey: String, digest: String, width: Int, height: Int, bytes: Int64, format: String = "") {
            self.path = path; self.actionKey = actionKey; self.digest = digest
            self.width = width; self.height = height; self.bytes = bytes; self.format = format
        }
    }

    /// The index the build wrote with this lock: its `bucket/path` and the digest of its bytes.
    /// Kept in the lock (not only in the state) so that, with the state lost, a build still finds
    /// an index left at an old path when `index:` moved, and deletes it only while it holds
    /// exactly those bytes.
    public struct Index: Sendable, Hashable {
        public var path: String
        public var digest: String
        public init(path: String, digest: String) { self.path = path; self.digest = digest }
    }

    /// A file a build left in place (not an output: nothing is adopted, rebuilt or deleted on
    /// its word) with the ACL it was left under: serve never answers its key more publicly, with
    /// or without a build state (a clone), until a build finds the file gone and drops the line.
    public struct Left: Sendable, Hashable, Codable {
        /// `bucket/key`.
        public var path: String
        /// The ACL the file had when the build left it (`BucketACL`'s raw value).
        public var acl: String
        /// Why it was left: `known only from the lock` (`, changed since` when its bytes are not
        /// the line's), `changed since Derive wrote it`, `not the file Derive wrote there`, `old index`, `in doubt: …`.
        public var why: String

        /// The file's place: its path relative to the lock's folder (the bucket's folder + the
        /// key), or absolute when the bucket's folder is outside it; nil when it is the same text
        /// as `path` (a bucket named as its folder: not written). A left record names a file, not
        /// a key (round 21's N5): serve applies it under every key that reaches that file, and a
        /// build re-keys it to the bucket holding that folder now.
        public var file: String?
        /// The file was gone when the build wrote the line (round 21's N4): a private record is
        /// kept a while after its file goes, so a file put back there is answered privately.
        public var gone: Bool?
        /// The state's `leftFiles` row's digest of the file ("" unknown). In the lock only on a
        /// `known only from the lock` line: the digest of the output line it replaced, which the
        /// file held when the build left it (attack 46c's t24/t25: the lock's own record of
        /// Derive's bytes vouches for the file as that line did, should the output come back).
        public var digest: String = ""
        /// The time (seconds since 1970) a build first found the file gone (0: present). In the
        /// state's row, and in the lock as `"goneSince"` on a gone line (round 22's V5: `clean`
        /// removes the state, and a lock line without it restarted the 30 days at every stateless
        /// build). A lock's date counts only where the state has no row for the place
        /// (`Planner.keptLeftLines`); a lock from before it was written reads as 0.
        public var goneSince: Int64 = 0
        /// Not written: the file there now holds other bytes than the file left there (the
        /// state's digest), so the build names it (round 22's V3); it stays as private as before.
        public var otherBytes = false

        public init(path: String, acl: String, why: String, file: String? = nil, gone: Bool = false, digest: String = "", goneSince: Int64 = 0) {
            self.path = path; self.acl = acl; self.why = why
            self.file = file == path ? nil : file
            self.gone = gone ? true : nil
            self.digest = digest; self.goneSince = goneSince
        }

        enum CodingKeys: String, CodingKey { case path = "left", acl, why, digest, file, gone, goneSince }

        /// Whether the lock writes `digest` on this line (`digest`).
        var digestInLock: Bool { why == Self.lockOnly && !digest.isEmpty && !isGone }

        /// `goneSince` is optional in the lock (written only on gone lines, and not by older Derives).
        public init(from decoder: any Decoder) throws {
            let values = try decoder.container(keyedBy: CodingKeys.self)
            path = try values.decode(String.self, forKey: .path)
            acl = try values.decode(String.self, forKey: .acl)
            why = try values.decode(String.self, forKey: .why)
            file = try values.decodeIfPresent(String.self, forKey: .file)
            gone = try values.decodeIfPresent(Bool.self, forKey: .gone)
            let digest = try values.decodeIfPresent(String.self, forKey: .digest) ?? ""
            self.digest = why == Self.lockOnly && gone != true ? digest : ""
            let since = try values.decodeIfPresent(Int64.self, forKey: .goneSince) ?? 0
            goneSince = gone == true ? max(since, 0) : 0
        }

        /// Where the file is, relative to the lock's folder (or absolute).
        public var place: String { file ?? path }
        public var isGone: Bool { gone ?? false }
        public var aclValue: BucketACL { BucketACL(rawValue: acl) ?? .private }

        public static let lockOnly = "known only from the lock"
        /// A file only the lock names whose bytes are not its line's any more (an optimiser
        /// recompressed it, an edit): still no more public than serve gave it while the lock
        /// listed it (round 21's N3).
        public static let lockOnlyChanged = "known only from the lock, changed since"
        public static let changed = "changed since Derive wrote it"
        public static let notDerives = "not the file Derive wrote there"
        public static let oldIndex = "old index"
        /// A file left because a neighbour may own it (`NeighbourDoubt`): the true reason, never
        /// "not the file Derive wrote there" for a file Derive did write (attack 51a's 9).
        public static func inDoubt(_ doubt: String) -> String { "in doubt: \(doubt)" }
    }

    public var entries: PathDictionary<Entry>
    /// Files left in place, by path (never a path `entries` holds).
    public var left: PathDictionary<Left> = [:]
    /// The file name of the manifest that owns the lock, named in the first line: a lock naming
    /// another manifest is that manifest's (`lock:` pointing at a neighbour's lock) and is never
    /// overwritten or deleted. Nil in locks written before it was kept.
    public var manifest: String?
    /// The index written with the lock (first line); nil without `index:` or in older locks.
    public var index: Index?

    public init(entries: [Entry], manifest: String? = nil, index: Index? = nil, left: [Left] = []) {
        self.entries = PathDictionary(entries.map { ($0.path, $0) }, uniquingKeysWith: { _, b in b })
        self.manifest = manifest
        self.index = index
        for line in left where self.entries[line.path] == nil { self.left[line.path] = line }
    }

    public static let formatName = "derive.lock/2"
    /// The format of a lock holding `left` lines (older Derives refuse it whole).
    public static let leftFormatName = "derive.lock/3"
    public static let header = #"{"format":"derive.lock/2","note":"# + LockFile.quote(LockFirstLine.note) + "}"

    public var text: String {
        Self.text(sorted: entries.keys.sorted().map { entries[$0]! }, manifest: manifest, index: index,
                  left: left.keys.sorted().map { left[$0]! })
    }

    /// The first line: the format, the manifest that owns the lock when known, and the index
    /// written with it when there is one.
    public static func header(manifest: String?, index: Index? = nil, withLeft: Bool = false) -> String {
        guard manifest != nil || index != nil || withLeft else { return Self.header }
        var fields = [#""format":"# + quote(withLeft ? leftFormatName : formatName)]
        if let manifest { fields.append(#""manifest":"# + Self.quote(manifest)) }
        if let index { fields.append(#""index":"# + Self.quote(index.path) + #","indexDigest":"# + Self.quote(index.digest)) }
        fields.append(#""note":"# + quote(LockFirstLine.note))
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The lock's text for entries already sorted by path (one per path), then the files left in
    /// place, sorted by path too (none at an entry's path).
    public static func text(sorted: [Entry], manifest: String?, index: Index? = nil, left: [Left] = []) -> String {
        String(decoding: data(sorted: sorted, manifest: manifest, index: index, left: left), as: UTF8.self)
    }

    /// `text`'s bytes, written into one buffer (issue 15): a 10 000-line lock was 10 000 strings
    /// built by interpolation, then joined, then copied into `Data` (2.8% of an edited build).
    /// `linesText` is the same text line by line, the reference `LockFileTextTests` holds it to.
    public static func data(sorted: [Entry], manifest: String?, index: Index? = nil, left: [Left] = []) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256 * (sorted.count + left.count + 1))
        out.append(contentsOf: header(manifest: manifest, index: index, withLeft: !left.isEmpty).utf8)
        func quoted(_ text: String) {
            if text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) {
                out.append(contentsOf: quote(text).utf8)
            } else {
                out.append(0x22); out.append(contentsOf: text.utf8); out.append(0x22)
            }
        }
        func literal(_ text: StaticString) { out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) }
        func number<N: BinaryInteger>(_ value: N) { out.append(contentsOf: String(value).utf8) }
        for entry in sorted {
            literal("\n{\"path\":"); quoted(entry.path)
            literal(",\"actionKey\":"); quoted(entry.actionKey)
            literal(",\"digest\":"); quoted(entry.digest)
            literal(",\"width\":"); number(entry.width)
            literal(",\"height\":"); number(entry.height)
            literal(",\"bytes\":"); number(entry.bytes)
            literal(",\"format\":"); quoted(entry.format)
            literal("}")
        }
        for line in left {
            literal("\n{\"left\":"); quoted(line.path)
            literal(",\"acl\":"); quoted(line.acl)
            literal(",\"why\":"); quoted(line.why)
            if line.digestInLock { literal(",\"digest\":"); quoted(line.digest) }
            if let file = line.file, file != line.path { literal(",\"file\":"); quoted(file) }
            if line.isGone {
                literal(",\"gone\":true")
                if line.goneSince > 0 { literal(",\"goneSince\":"); number(line.goneSince) }
            }
            literal("}")
        }
        out.append(0x0A)
        return Data(out)
    }

    /// The lock's text built line by line (how `text` was written before issue 15): the
    /// reference `data` must equal byte for byte.
    static func linesText(sorted: [Entry], manifest: String?, index: Index? = nil, left: [Left] = []) -> String {
        var lines = [Self.header(manifest: manifest, index: index, withLeft: !left.isEmpty)]
        lines.reserveCapacity(sorted.count + left.count + 1)
        for entry in sorted {
            lines.append("{\"path\":\(Self.quote(entry.path)),\"actionKey\":\(Self.quote(entry.actionKey)),\"digest\":\(Self.quote(entry.digest)),"
                         + "\"width\":\(entry.width),\"height\":\(entry.height),\"bytes\":\(entry.bytes),\"format\":\(Self.quote(entry.format))}")
        }
        for line in left {
            var text = "{\"left\":\(Self.quote(line.path)),\"acl\":\(Self.quote(line.acl)),\"why\":\(Self.quote(line.why))"
            if line.digestInLock { text += ",\"digest\":\(Self.quote(line.digest))" }
            if let file = line.file, file != line.path { text += ",\"file\":\(Self.quote(file))" }
            if line.isGone {
                text += ",\"gone\":true"
                if line.goneSince > 0 { text += ",\"goneSince\":\(line.goneSince)" }
            }
            lines.append(text + "}")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The largest lock Derive reads (about 500 000 outputs at ~250 bytes a line): a larger file is
    /// refused from its size before a byte is read (`BuildSession.refuseOversizedLock`).
    public static let maxBytes = 128 << 20

    /// Why `text`, which `parse` refuses, is not a valid lock, in words for a message: a
    /// merge-conflict marker with its line number, or truncated or edited.
    public static func unreadable(_ text: String) -> String {
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            for marker in ["<<<<<<<", "|||||||", "=======", ">>>>>>>"] where line.hasPrefix(marker) {
                return "is not a valid lock: line \(number) is a merge-conflict marker (\(marker))"
            }
        }
        return "is not a valid lock (truncated or edited)"
    }

    /// Parses a lock; nil when any line is not a valid entry (a truncated or hand-edited lock is
    /// not trusted at all: the next build rewrites it from the state). A last line without its
    /// newline is whole when it parses (an editor or a merge drops that newline; a cut inside a
    /// line leaves JSON that does not parse).
    public static func parse(_ text: String) -> LockFile? {
        // Split on the byte, a trailing CR dropped: "\r\n" is one Character, so a lock git wrote
        // with CRLF (`core.autocrlf`) was one line to `split(separator: "\n")` (attack 16 V5).
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).compactMap { line -> Substring? in
            let bytes = line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...]
            return bytes.isEmpty ? nil : Substring(String(decoding: bytes, as: UTF8.self))
        }
        guard let first = lines.first, isHeader(first) else { return nil }
        lines.removeFirst()
        let decoder = JSONDecoder()
        var entries: [Entry] = []
        var left: [Left] = []
        entries.reserveCapacity(lines.count)
        let leftAllowed = format(first) == leftFormatName
        for line in lines {
            if let entry = try? decoder.decode(Entry.self, from: Data(line.utf8)) {
                entries.append(entry)
            } else if leftAllowed, let line = try? decoder.decode(Left.self, from: Data(line.utf8)), BucketACL(rawValue: line.acl) != nil {
                left.append(line)
            } else {
                return nil
            }
        }
        return LockFile(entries: entries, manifest: owner(Data(first.utf8)), index: index(Data(first.utf8)), left: left)
    }

    /// `data` with the entry lines for `paths` taken out, every other byte kept (what a lock
    /// differing only by those lines is compared as). A line that is not an entry is kept.
    public static func dropping(_ paths: PathSet, from data: Data) -> Data {
        let decoder = JSONDecoder()
        var kept: [Data.SubSequence] = []
        var leftKept = false
        for (number, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if number > 0, let entry = try? decoder.decode(Entry.self, from: Data(line)), paths.contains(entry.path) { continue }
            if number > 0, let left = try? decoder.decode(Left.self, from: Data(line)) {
                if paths.contains(left.path) { continue }
                leftKept = true
            }
            kept.append(line)
        }
        // A lock left with no `left` line is written as `/2` (its first line says so).
        if !leftKept, let first = kept.first {
            let marker = Data(#""format":"derive.lock/3""#.utf8), plain = Data(#""format":"derive.lock/2""#.utf8)
            if let range = Data(first).range(of: marker) {
                var line = Data(first)
                line.replaceSubrange(range, with: plain)
                kept[0] = line[...]
            }
        }
        return Data(kept.joined(separator: [UInt8(ascii: "\n")]))
    }

    /// The index a lock's first line records, nil when it records none.
    public static func index(_ firstLine: Data) -> Index? {
        guard let object = try? JSONSerialization.jsonObject(with: firstLine) as? [String: Any],
              let path = object["index"] as? String, let digest = object["indexDigest"] as? String else { return nil }
        return Index(path: path, digest: digest)
    }

    /// Whether a file is a Derive lock (its first line is a `derive.lock/...` header, of any
    /// version, even if the rest is truncated): only such a file may be overwritten or deleted.
    /// A file holding only a prefix of that header (empty, or cut after a few bytes) is Derive's
    /// lock truncated too: no byte in it is another tool's, so check and build treat it alike.
    /// The entry lines of a lock's bytes: all of them when it parses, else every whole line that
    /// is an entry of a text holding a lock's header (a merge conflict's markers, a last line cut
    /// short, skipped): a lock that does not parse still says what it recorded (attack 46a's H3, H7).
    public static func salvagedEntries(_ data: Data) -> [Entry] {
        if let lock = parse(String(decoding: data, as: UTF8.self)) { return Array(lock.entries.values) }
        guard data.range(of: ProjectMarkers.lockMarker) != nil else { return [] }
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(Entry.self, from: Data($0)) }
    }

    public static func isDeriveLock(_ data: Data) -> Bool {
        let marker = ProjectMarkers.lockMarker
        return data.starts(with: marker) || (data.count < marker.count && marker.starts(with: data))
    }

    /// The manifest a lock's first line names, nil when it names none (or is not a lock).
    public static func owner(_ data: Data) -> String? { LockOwnerName.owner(data) }

    /// Whether a file is a Derive lock this manifest may overwrite or delete: a Derive lock that
    /// names no manifest, names `manifest` (the manifest's name from the lock's folder), or names
    /// one that was in this manifest's folder and is no longer there (`succeeds`).
    public static func isOurs(_ data: Data, manifest: String, lockPath: String) -> Bool {
        guard isDeriveLock(data) else { return false }
        guard let owner = owner(data), owner != manifest else { return true }
        return succeeds(owner: owner, manifest: manifest, lockPath: lockPath)
    }

    /// Whether `manifest` takes over the lock at `lockPath` recorded for `owner`
    /// (`LockOwnerName.succeeds`, which validate asks too).
    public static func succeeds(owner: String, manifest: String, lockPath: String) -> Bool {
        LockOwnerName.succeeds(owner: owner, manifest: manifest, lockPath: lockPath)
    }

    /// The note a manifest taking over a renamed manifest's lock gives (once), nil when none is due.
    public static func takeOverNote(_ display: String, data: Data, manifest: String, lockPath: String) -> String? {
        guard isDeriveLock(data), let owner = owner(data), owner != manifest, succeeds(owner: owner, manifest: manifest, lockPath: lockPath) else { return nil }
        return "derive: note: \(display) was the lock of \(owner), which is no longer there; \(manifest) takes it over (the manifest was renamed)\n"
    }

    /// Why a file at the lock path is not this manifest's, with how to fix it. With `manifest`
    /// (this manifest's name from the lock's folder, as `isOurs` takes it) and `lockPath`, the
    /// lock's owner is named from this manifest's folder, and deleting it is advised only where
    /// the lock then passes to this manifest (`succeeds`): attack 48b's F4, `sub/locks/n.lock is
    /// the lock of ../n.yaml` named a file that is not there from the user's folder, and advised
    /// a deletion after which the build refused again.
    public static func notOursMessage(_ display: String, data: Data, manifest: String? = nil, lockPath: String? = nil) -> String {
        if isDeriveLock(data), let owner = owner(data) {
            var named = owner
            var passes = true
            if let manifest, let lockPath {
                let folder = URL(literalFilePath: URL(literalFilePath: lockPath).standardizedFileURL.deletingLastPathComponent().path + "/")
                let ownerPath = URL(literalFilePath: owner, relativeTo: folder).standardizedFileURL.path
                let manifestPath = URL(literalFilePath: manifest, relativeTo: folder).standardizedFileURL.path
                named = ownerName(manifestPath: ownerPath, lockPath: manifestPath)
                passes = (owner as NSString).deletingLastPathComponent == (manifest as NSString).deletingLastPathComponent
            }
            return "\(display) is the lock of \(named), not of this manifest; Derive will not overwrite or delete it: name another file with 'lock:' in the manifest"
                + (passes ? " (or, if \(named) is no longer used, delete it: its lock then passes to this manifest)" : "")
        }
        // Another manifest's `index:` written there (attack 41c's C8): said as what it is.
        if isDeriveIndex(data) {
            return "\(display) holds a Derive index (the JSON another manifest's 'index:' writes), not a lock; Derive will not overwrite or delete it: "
                + "give that manifest's 'index:' another path and delete this file (its next build writes the index where 'index:' says), or name another file with 'lock:' in this manifest"
        }
        return notOursMessage(display)
    }

    /// Whether `data` is a Derive index (`IndexJSON`): a JSON object with a numeric `version` and
    /// a `sources` object at its top.
    static func isDeriveIndex(_ data: Data) -> Bool {
        guard data.first == UInt8(ascii: "{"), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["version"] is NSNumber && object["sources"] is [String: Any]
    }

    /// Why a file at the lock path is not Derive's, with how to fix it.
    public static func notOursMessage(_ display: String) -> String {
        "\(display) exists and is not a Derive lock (another tool's file?); Derive will not overwrite or delete it: name another file with 'lock:' in the manifest, or move it"
    }

    static func isHeader(_ line: Substring) -> Bool {
        let name = format(line)
        return name == formatName || name == leftFormatName
    }

    static func format(_ line: Substring) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return object["format"] as? String
    }

    /// A JSON string literal (the shared writer).
    public static func quote(_ text: String) -> String { JSONText.string(text) }

    /// Where a lock entry's file is: its path parsed as `bucket/key`, the key validated on its
    /// bytes as every object key is (no `.`, `..` or empty segments); nil when the bucket is not
    /// in the manifest. A lock is untrusted input (a clone, a pull request): nothing it names is
    /// touched unless this holds.
    public struct PlacedEntry: Sendable { public var bucket: Bucket; public var file: String }
    public struct BadPath: Error, CustomStringConvertible, Sendable {
        public var description: String
    }
    public static func place(_ path: String, in manifest: Manifest) -> Result<PlacedEntry?, BadPath> {
        guard let (bucketName, key) = PathKey.split(path) else { return .failure(BadPath(description: "its path '\(path)' is not bucket/key")) }
        do {
            _ = try ObjectKey(fileName: Array(key.utf8))
        } catch {
            return .failure(BadPath(description: "its path '\(path)' is not a valid object key (\(error))"))
        }
        guard let bucket = manifest.bucket(named: bucketName) else { return .success(nil) }
        return .success(PlacedEntry(bucket: bucket, file: bucket.path + "/" + key))
    }

    /// The place of `key` of `bucket` (`Left.place`): the bucket's folder relative to the lock's
    /// folder (absolute when outside it) + `/` + the key. Every key that reaches one file has one place.
    public static func place(bucket: Bucket, key: String, manifest: Manifest) -> String {
        folderPlace(bucket.path, manifest: manifest) + key
    }

    /// `folder` relative to the lock's folder with a trailing `/` ("" for that folder itself).
    static func folderPlace(_ folder: String, manifest: Manifest) -> String {
        let base = (manifest.lockFile as NSString).deletingLastPathComponent
        if folder == base { return "" }
        if base == "/" { return String(folder.dropFirst()) + "/" }
        if folder.hasPrefix(base + "/") { return String(folder.dropFirst(base.count + 1)) + "/" }
        return folder + "/"
    }

    /// The bucket of the manifest whose folder holds `place` now, with the key there (the longest
    /// folder wins; nil when none does: a bucket removed, or moved to another folder).
    public static func bucket(holding place: String, in manifest: Manifest) -> (bucket: Bucket, key: String)? {
        var best: (bucket: Bucket, key: String, length: Int)?
        for bucket in manifest.buckets {
            let prefix = folderPlace(bucket.path, manifest: manifest)
            guard place.hasPrefix(prefix), place.count > prefix.count, prefix.count >= (best?.length ?? -1) else { continue }
            let key = String(place.dropFirst(prefix.count))
            guard (try? ObjectKey(fileName: Array(key.utf8))) != nil else { continue }
            best = (bucket, key, prefix.count)
        }
        return best.map { ($0.bucket, $0.key) }
    }

    /// `line` placed in `manifest` as it is now: its place (a line without one, from before
    /// places were kept: where its bucket's folder is, unless a bucket's folder holds its path
    /// as a place) and its path re-keyed to the bucket whose folder holds that place now (a
    /// bucket renamed over the same folder: round 21's N5). `placed`: the line's place is known
    /// (a state's record), never guessed from its bucket's name.
    public static func located(_ line: Left, in manifest: Manifest, placed: Bool = false) -> Left {
        var line = line
        if !placed, line.file == nil, bucket(holding: line.path, in: manifest) == nil,
           let (name, key) = PathKey.split(line.path), let bucket = manifest.bucket(named: name) {
            line.file = place(bucket: bucket, key: key, manifest: manifest)
        }
        let place = line.place
        if let (bucket, key) = bucket(holding: place, in: manifest) { line.path = bucket.name + "/" + key }
        line.file = place == line.path ? nil : place
        return line
    }

    /// The lock beside the manifest: `derive.lock` for every manifest until per-manifest locks land.
    public static func path(forManifest manifest: String) -> String {
        URL(literalFilePath: manifest).standardizedFileURL.deletingLastPathComponent().appendingPathComponent("derive.lock").path
    }
}
