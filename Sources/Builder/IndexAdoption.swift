import Confinement
import Foundation
import Manifest
import Planner

/// Whether an index found without a record of writing these bytes (a fresh clone, a removed or
/// recovered state, a build that raced another) is Derive's: its bytes must be exactly what
/// Derive writes for some of the outputs the lock (or the state) vouches for, each with the
/// size, dimensions and format vouched for. Some, not all: two builds racing, or a build killed
/// between the lock and the index, leave an index listing a subset (or none) of the lock's
/// outputs; it is rebuilt from the lock rather than refused. Anything else is a user's file and
/// is left alone.
enum IndexAdoption {
    /// The most bytes an index Derive writes for `outputs` outputs can hold: 1 MiB plus 64 KiB an
    /// output (a derivative's line, its picture entries and HTML, its source's key, colour and
    /// placeholder take a few KiB at most). A file named as the index (the lock's first line is
    /// untrusted; the index path may hold a user's file) is read only up to that: a larger one is
    /// not Derive's index and costs no memory.
    static func maxBytes(outputs: Int) -> Int { (1 << 20) + max(0, outputs) * (64 << 10) }

    /// The file at `path`, read whole only when an index Derive writes can be that large:
    /// - at most `maxBytes(outputs: trusted)`, where `trusted` counts outputs whose files are
    ///   known (the state's records, the plan's adoptions: each a real file with its digest);
    /// - or, larger, at most `maxBytes(outputs: trusted + lockLines)` and its SHA-256, streamed
    ///   first (no memory), is one Derive recorded for the index (`digests`: the state's record,
    ///   the lock header's `indexDigest`). The lock's lines are untrusted: thousands of them
    ///   (rejected ones too) raised the cap for any file; they count only for the bytes the
    ///   lock itself says were written beside it, and only lines that stand for an output that
    ///   is there (`Planner.presentVouchedLines`: Derive may have written it, and the file holds
    ///   the line's digest), counted only when a file that large is in question.
    /// Nil when larger, refused by digest (not Derive's index: kept, never read whole), or unreadable.
    static func read(_ path: String, disk: any Disk, trusted: Int, lockLines: () -> Int, digests: Set<String>) -> Data? {
        let small = maxBytes(outputs: trusted)
        if let data = try? disk.read(path, maxBytes: small) { return data }
        guard let size = disk.stat(path)?.size, size > Int64(small), !digests.isEmpty else { return nil }
        let limit = maxBytes(outputs: trusted + lockLines())
        guard size <= Int64(limit), let digest = try? disk.digestAndHead(path, headBytes: 0).digest, digests.contains(digest),
              let data = try? disk.read(path, maxBytes: limit),
              ContentDigests.digest(data) == digest else { return nil }
        return data
    }

    /// The digests Derive recorded for an index: the lock header's and the state's.
    static func recordedDigests(lock: LockFile?, state: String? = nil) -> Set<String> {
        Set([lock?.index?.digest, state].compactMap { $0 })
    }

    /// What the state and the sources say an index must hold besides the lock's lines: with a
    /// state, a hand edit of a source's `color`, `width`/`height`, placeholder or a derivative's
    /// `acl` makes the index differ from every index Derive writes, so it is left in place and
    /// reported, never silently rewritten. Fields nothing knows are taken from the index.
    struct KnownFields {
        var colours: PathDictionary<String> = [:]
        var dominants: PathDictionary<String> = [:]
        var placeholders: PathDictionary<IndexWriter.Placeholder> = [:]
        var sizes: PathDictionary<SourceSize> = [:]
        /// ACLs by output `bucket/key`.
        var acls: PathDictionary<String> = [:]
    }

    static func isDerives(_ data: Data, lock: LockFile?, manifest: Manifest, indexBucket: String,
                          recorded: PathDictionary<OutputRecord> = [:], known: KnownFields? = nil) -> Bool {
        let vouched = lock?.entries ?? [:]
        // What the state records, or the plan adopts as measured from the file (a lock line's
        // numbers are the clone's: an index listing the file's true size is Derive's too).
        let measured = recorded.mapValues(Builder.lockEntry)
        // Members kept with their keys' bytes (`IndexJSON`): two sources one `String` would call
        // equal (NFC and NFD) are two entries, as Derive wrote them.
        guard !vouched.isEmpty || !measured.isEmpty || lock != nil, let object = IndexJSON.parse(data),
              let version = object["version"]?.int, version == 1 || version == IndexWriter.version,
              let sources = object["sources"]?.members else { return false }
        var records: [OutputRecord] = []
        // Source sizes are not in the lock: taken from the index itself (they vouch for no file).
        var sizes: PathDictionary<SourceSize> = [:]
        var colours: PathDictionary<String> = [:]
        var dominants: PathDictionary<String> = [:]
        var placeholders: PathDictionary<IndexWriter.Placeholder> = [:]
        var seen: PathSet = []
        // The logical names as the index gives them: written under the `to:` of then (`{hash}`
        // before the rule said `{hash:8}`), which today's manifest would write otherwise.
        var logicals: PathDictionary<String> = [:]
        // Without a state, each bucket's `url:` as the index gives it (the part of every
        // output's `url` before `/` and its key): a clone's index written before the `url:`
        // changed is Derive's all the same (attack 40b's M1); the bytes are compared with what
        // Derive writes under that prefix. With a state (`known`), an edited `url` stays a hand
        // edit: the index must be what the manifest in force writes.
        var urls: [String: String] = [:]
        for (source, entry) in sources {
            guard entry.members != nil, let derivatives = entry["derivatives"]?.array else { return false }
            let animated = entry["animated"]?.bool ?? false
            if let width = entry["width"]?.int, let height = entry["height"]?.int {
                sizes[source] = SourceSize(width: width, height: height, animated: animated)
            } else if animated {
                sizes[source] = SourceSize(width: nil, height: nil, animated: true)
            }
            if let colour = entry["color"]?.string { colours[source] = colour }
            if let dominant = entry["dominant"]?.string { dominants[source] = dominant }
            if let placeholder = entry["placeholder"], placeholder.members != nil {
                placeholders[source] = IndexWriter.Placeholder(image: placeholder["src"]?.string ?? "", thumbhash: placeholder["thumbhash"]?.string ?? "")
            }
            // What is known replaces what the index says: an edited value no longer round-trips.
            if let size = known?.sizes[source] { sizes[source] = size }
            if let colour = known?.colours[source] { colours[source] = colour }
            if let dominant = known?.dominants[source] { dominants[source] = dominant }
            if let placeholder = known?.placeholders[source] { placeholders[source] = placeholder }
            for item in derivatives {
                guard item.members != nil, let path = item["path"]?.string, let rule = item["rule"]?.string, let width = item["width"]?.int,
                      let height = item["height"]?.int, let format = item["format"]?.string, let bytes = item["bytes"]?.int,
                      let acl = item["acl"]?.string, seen.insert(path).inserted else { return false }
                if let logical = item["logical"]?.string { logicals[path] = logical }
                if known == nil, let url = item["url"]?.string {
                    let suffix = "/" + IndexWriter.encode(IndexWriter.key(path))
                    let base = String(url.dropLast(suffix.count)), bucket = IndexWriter.bucket(path)
                    guard url.hasSuffix(suffix), urls[bucket, default: base] == base else { return false }
                    urls[bucket] = base
                }
                let matrix = item["matrix"]?.stringFields?.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") ?? ""
                // Each output must be vouched for, with that size, dimensions and format.
                guard let locked = [vouched[path], measured[path]].compactMap({ $0 }).first(where: {
                    $0.bytes == Int64(bytes) && $0.width == width && $0.height == height && ($0.format.isEmpty || $0.format == format)
                }) else { return false }
                records.append(OutputRecord(path: path, rule: rule, source: source, style: item["style"]?.string, matrix: matrix,
                                            engine: "", pipeline: "", sourceDigest: "", dependencies: "", encoder: "", actionKey: "",
                                            acl: known?.acls[path] ?? acl, outputDigest: locked.digest, size: Int64(bytes), width: width, height: height,
                                            format: format, builtAt: 0, folder: ""))
            }
        }
        var manifest = manifest
        for position in manifest.buckets.indices {
            if let url = urls[manifest.buckets[position].name] { manifest.buckets[position].url = url }
        }
        return version == 1 ? IndexWriter.legacyJSON(records, manifest: manifest, indexBucket: indexBucket) == data
            : IndexWriter.json(records, manifest: manifest, sourceSizes: sizes, sourceColours: colours, dominants: dominants, placeholders: placeholders,
                               logicals: logicals) == data
    }
}

/// The index could not be written; its message starts with the index's path.
struct IndexError: Error, CustomStringConvertible {
    var message: String
    var path: String
    /// Control files removed or written before the error (an old index, the lock), as displayed.
    var removed: [String] = []
    var rewritten: [String] = []
    var description: String { message }
}
