import Confinement
import Foundation
import Manifest
import ProcessLanguage

/// The lock beside the manifest: what every output is (action key, digest, size, format), so a
/// fresh clone adopts outputs instead of re-rendering them and a review diff shows what changed.
///
/// Format: JSON lines, sorted by output. The first line names the format; every other line is one
/// object with the same keys in the same order, so a diff shows one line per changed output and
/// any key (spaces, newlines, quotes, non-ASCII) round-trips through JSON's escapes:
///
///     {"format":"derive.lock/2","manifest":"site.yaml","index":"site/index.json","indexDigest":"…","note":"…"}
///     {"path":"site/thumbs/a b.jpg","actionKey":"…","digest":"…","width":240,"height":160,"bytes":9120,"format":"jpg"}
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

    public var entries: PathDictionary<Entry>
    /// The file name of the manifest that owns the lock, named in the first line: a lock naming
    /// another manifest is that manifest's (`lock:` pointing at a neighbour's lock) and is never
    /// overwritten or deleted. Nil in locks written before it was kept.
    public var manifest: String?
    /// The index written with the lock (first line); nil without `index:` or in older locks.
    public var index: Index?

    public init(entries: [Entry], manifest: String? = nil, index: Index? = nil) {
        self.entries = PathDictionary(entries.map { ($0.path, $0) }, uniquingKeysWith: { _, b in b })
        self.manifest = manifest
        self.index = index
    }

    public static let formatName = "derive.lock/2"
    public static let header = #"{"format":"derive.lock/2","note":"one output per line; written by derive build, do not edit"}"#

    public var text: String { Self.text(sorted: entries.keys.sorted().map { entries[$0]! }, manifest: manifest, index: index) }

    /// The first line: the format, the manifest that owns the lock when known, and the index
    /// written with it when there is one.
    public static func header(manifest: String?, index: Index? = nil) -> String {
        guard manifest != nil || index != nil else { return Self.header }
        var fields = [#""format":"derive.lock/2""#]
        if let manifest { fields.append(#""manifest":"# + Self.quote(manifest)) }
        if let index { fields.append(#""index":"# + Self.quote(index.path) + #","indexDigest":"# + Self.quote(index.digest)) }
        fields.append(#""note":"one output per line; written by derive build, do not edit""#)
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The lock's text for entries already sorted by path (one per path).
    public static func text(sorted: [Entry], manifest: String?, index: Index? = nil) -> String {
        var lines = [Self.header(manifest: manifest, index: index)]
        lines.reserveCapacity(sorted.count + 1)
        for entry in sorted {
            lines.append("{\"path\":\(Self.quote(entry.path)),\"actionKey\":\(Self.quote(entry.actionKey)),\"digest\":\(Self.quote(entry.digest)),"
                         + "\"width\":\(entry.width),\"height\":\(entry.height),\"bytes\":\(entry.bytes),\"format\":\(Self.quote(entry.format))}")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The largest lock Derive reads (about 500 000 outputs at ~250 bytes a line): a larger file is
    /// refused from its size before a byte is read (`BuildSession.refuseOversizedLock`).
    public static let maxBytes = 128 << 20

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
        entries.reserveCapacity(lines.count)
        for line in lines {
            guard let entry = try? decoder.decode(Entry.self, from: Data(line.utf8)) else { return nil }
            entries.append(entry)
        }
        return LockFile(entries: entries, manifest: owner(Data(first.utf8)), index: index(Data(first.utf8)))
    }

    /// `data` with the entry lines for `paths` taken out, every other byte kept (what a lock
    /// differing only by those lines is compared as). A line that is not an entry is kept.
    public static func dropping(_ paths: PathSet, from data: Data) -> Data {
        let decoder = JSONDecoder()
        var kept: [Data.SubSequence] = []
        for (number, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if number > 0, let entry = try? decoder.decode(Entry.self, from: Data(line)), paths.contains(entry.path) { continue }
            kept.append(line)
        }
        return Data(kept.joined(separator: [UInt8(ascii: "\n")]))
    }

    /// The index a lock's first line records, nil when it records none.
    static func index(_ firstLine: Data) -> Index? {
        guard let object = try? JSONSerialization.jsonObject(with: firstLine) as? [String: Any],
              let path = object["index"] as? String, let digest = object["indexDigest"] as? String else { return nil }
        return Index(path: path, digest: digest)
    }

    /// Whether a file is a Derive lock (its first line is a `derive.lock/...` header, of any
    /// version, even if the rest is truncated): only such a file may be overwritten or deleted.
    /// A file holding only a prefix of that header (empty, or cut after a few bytes) is Derive's
    /// lock truncated too: no byte in it is another tool's, so check and build treat it alike.
    public static func isDeriveLock(_ data: Data) -> Bool {
        let marker = Data(#"{"format":"derive.lock/"#.utf8)
        return data.starts(with: marker) || (data.count < marker.count && marker.starts(with: data))
    }

    /// The manifest a lock's first line names, nil when it names none (or is not a lock).
    public static func owner(_ data: Data) -> String? {
        let first = data.prefix { $0 != UInt8(ascii: "\n") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(first)) as? [String: Any] else { return nil }
        return object["manifest"] as? String
    }

    /// Whether a file is a Derive lock this manifest may overwrite or delete: a Derive lock that
    /// names no manifest, or names `manifest` (the manifest's file name).
    public static func isOurs(_ data: Data, manifest: String) -> Bool {
        guard isDeriveLock(data) else { return false }
        let owner = owner(data)
        return owner == nil || owner == manifest
    }

    /// Why a file at the lock path is not this manifest's, with how to fix it.
    public static func notOursMessage(_ display: String, data: Data) -> String {
        if isDeriveLock(data), let owner = owner(data) {
            return "\(display) is the lock of \(owner), not of this manifest; Derive will not overwrite or delete it: name another file with 'lock:' in the manifest"
        }
        return notOursMessage(display)
    }

    /// Why a file at the lock path is not Derive's, with how to fix it.
    public static func notOursMessage(_ display: String) -> String {
        "\(display) exists and is not a Derive lock (another tool's file?); Derive will not overwrite or delete it: name another file with 'lock:' in the manifest, or move it"
    }

    static func isHeader(_ line: Substring) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return false }
        return object["format"] as? String == formatName
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

    /// The lock beside the manifest: `derive.lock` for every manifest until per-manifest locks land.
    public static func path(forManifest manifest: String) -> String {
        URL(fileURLWithPath: manifest).standardizedFileURL.deletingLastPathComponent().appendingPathComponent("derive.lock").path
    }
}
