import Confinement
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import ProcessLanguage

/// A fast path for "nothing to do", like ninja comparing mtimes: after a clean build, a digest
/// of everything a plan depends on is kept beside the state. Its two halves are taken at
/// different moments, as ninja does: the inputs (the manifest files' bytes and stats, the engine
/// identity, every object of the source buckets, the fonts) in a snapshot *before* planning, so
/// an edit made while the build runs does not hide in the witness; the outputs (every output
/// file, the lock and the index) after the build. When the next run computes the same digest
/// from what is on disk now, the plan is known to be empty without expanding rules or reading
/// the state. Any difference falls back to the full plan. The lock's digest is kept too and
/// checked, so the witness never vouches for a lock whose bytes changed.
///
/// Racy timestamps (git's rule): an input changed within the racy margin of the snapshot could
/// change again in the same clock tick without its stat moving, so the witness keeps the digest
/// the plan used for it (checked against its bytes when saving) and the no-op check rehashes it
/// while it is racy; a racy manifest file, or a racy input the plan did not hash, leaves no
/// witness. Outputs the build itself just wrote are racy the same way; rather than waiting a
/// second and planning again, the witness keeps their content digests (checked against what the
/// build recorded) and the no-op check rehashes those few files. A build that changed
/// something therefore leaves a witness the very next run can use.
public struct NoOpWitness: Sendable {
    public static let fileName = StateFiles.witness

    /// What a witness covers.
    public struct Inputs: Sendable {
        public var manifestFiles: [String]
        public var manifest: Manifest
        public var manifestPath: String
        public var identity: EngineIdentity
        /// Font files the manifest's pipelines read.
        public var fontFiles: [String]
        /// How those fonts are drawn (`type rendering` lines): a fontconfig configuration may
        /// change it for the same files.
        public var fontRendering: [String]
        public var lockPath: String
        /// Asks again whether another manifest takes a name narrowing would give
        /// (`Planner.narrowedNameTaken`): the witness holds only while every answer it saved
        /// (`NarrowedNameAnswers`) is the same. Nil: a witness with such answers does not hold.
        public var narrowedNameTaken: (@Sendable (NarrowedName) -> Bool)?
        /// Whether another manifest of the folder now records a file the lock's `left` lines
        /// place (a build drops such a line: `Planner.keptLeftLines`), asked only of a witness
        /// with left files. Nil: such a witness does not hold.
        public var leftFileClaimed: (@Sendable () -> Bool)?

        public init(manifestFiles: [String], manifest: Manifest, manifestPath: String, identity: EngineIdentity, fontFiles: [String],
                    fontRendering: [String] = [], lockPath: String? = nil) {
            self.manifestFiles = manifestFiles; self.manifest = manifest; self.manifestPath = manifestPath
            self.identity = identity; self.fontFiles = fontFiles; self.fontRendering = fontRendering
            self.lockPath = lockPath ?? LockFile.path(forManifest: manifestPath)
        }
    }

    /// The input half, taken before planning.
    public struct Snapshot: Sendable {
        let digest: String
        let newest: Int64
        /// When the stats began (ns): inputs changed within the racy margin before it are racy.
        let taken: Int64
        /// Everything the digest covers except the stats of the bucket objects and fonts (their
        /// paths included): equal when only those stats moved (`TouchedInputs`).
        let shape: String
        /// The bucket objects and fonts, in order, with their stats when taken.
        let files: [String]
        let stats: [FileStat?]
        /// The inputs but the bucket listing: engine, folders, the manifest files' bytes and
        /// stats, fonts, lock and manifest paths. Another session of the same command plans with
        /// this snapshot only when it computes the same key (`inputsKey`): it parsed the same manifest.
        let inputsKey: String
        /// The newest change among the manifest files.
        let manifestNewest: Int64
        /// The bucket entries that are not files, as hashed (`afterOwnWrites` compares them).
        var others: [Data] = []

        /// Whether an input changed within the racy margin before the snapshot.
        func isRacy(_ racyMargin: Int64) -> Bool { newest >= taken - racyMargin }
    }

    /// The inputs as they are now; nil when a manifest file cannot be read.
    public static func snapshot(_ inputs: Inputs, disk: any Disk) -> Snapshot? {
        let taken = disk.now()
        guard let head = head(inputs, disk: disk) else { return nil }
        var hasher = SHA256()
        var shape = SHA256()
        for (chunk, inDigest) in head.chunks {
            if inDigest { hasher.update(data: chunk) }
            shape.update(data: chunk)
        }
        var paths: [String] = []
        var others: [Data] = []
        var listed: Set<String> = []
        for rule in inputs.manifest.rules {
            guard let bucket = inputs.manifest.bucket(named: rule.sourceBucket), listed.insert(bucket.name).inserted else { continue }
            let listing = disk.entries(inFolder: bucket.path, skipping: [inputs.manifest.stateFolder])
            for key in listing?.keys ?? [] { paths.append(bucket.path + "/" + key) }
            // Entries that are not files (a folder, a FIFO) may fail derivatives: their names count.
            for other in listing?.others ?? [] {
                // With its kind when it is not a plain folder: a folder replaced by a link to one
                // (or made unreadable) keeps its name but not its meaning.
                let kind = other.kind == "a folder" ? "" : " (" + other.kind + ")"
                let line = ContentDigests.utf8Data(JSONText.string("not a file: " + bucket.path + "/" + other.key + kind) + "\n")
                hasher.update(data: line); shape.update(data: line)
                others.append(line)
            }
        }
        paths += inputs.fontFiles.sorted()
        shape.update(data: shapeLines(paths))
        guard let latest = stats(paths, disk: disk, into: &hasher) else { return nil }
        return Snapshot(digest: ContentDigests.hex(hasher.finalize()), newest: max(head.newest, latest.newest), taken: taken,
                        shape: ContentDigests.hex(shape.finalize()), files: paths, stats: latest.stats, inputsKey: head.key,
                        manifestNewest: head.newest, others: others)
    }

    /// The inputs as they are after a build, to save its witness with instead of `before` (the
    /// snapshot taken before it planned), when the two differ only by files this build wrote:
    /// outputs, the index or the lock in a folder the rules read (`photos/` holding `photos/src`
    /// and `photos/out`). Nil when anything else differs: a file that was not the build's, a file
    /// gone, another non-file entry, the manifest, the engine, a folder. `wrote(file, stat)`
    /// says the file with that stat holds the bytes the build wrote there (checked on the file).
    /// The validator already refuses a manifest whose outputs may land on a rule's sources
    /// ("an output must never be a source"), so a file the build wrote is no rule's source: the
    /// plan of these inputs is the plan the build made, and its witness holds at once. Without
    /// this, such a build's witness never held, and a build right after it (within the racy
    /// margin) saved none: the watch made a silent full-plan build 1.1 s after each of its own.
    public static func afterOwnWrites(_ before: Snapshot, _ inputs: Inputs, disk: any Disk,
                                      wrote: (String, FileStat) -> Bool) -> Snapshot? {
        guard let after = snapshot(inputs, disk: disk), after.inputsKey == before.inputsKey, after.manifestNewest == before.manifestNewest,
              after.others == before.others else { return nil }
        guard after.digest != before.digest else { return before }
        var earlier = PathDictionary(zip(before.files, before.stats).map { ($0, $1) }, uniquingKeysWith: { a, _ in a })
        for (file, stat) in zip(after.files, after.stats) {
            let was = earlier.removeValue(forKey: file)
            if let was, was == stat { continue }
            guard let stat, wrote(file, stat) else { return nil }
        }
        // A file gone since the build planned (the build deletes no input): not this build's doing.
        guard earlier.isEmpty else { return nil }
        return after
    }

    /// One line per listed path for the shape: its length in decimal, a space, its bytes and a
    /// newline (`"\(path.utf8.count) \(path)\n"`), built in one buffer: the interpolation and
    /// a `Data` per path were a twentieth of a 2 000-output no-op (issue 15).
    /// `WitnessEquivalenceTests` compares it with the interpolated lines.
    static func shapeLines(_ paths: [String]) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(paths.reduce(0) { $0 + $1.utf8.count + 8 })
        var digits: [UInt8] = []
        for path in paths {
            var count = path.utf8.count
            digits.removeAll(keepingCapacity: true)
            repeat { digits.append(UInt8(ascii: "0") + UInt8(count % 10)); count /= 10 } while count > 0
            bytes.append(contentsOf: digits.reversed())
            bytes.append(0x20)
            bytes.append(contentsOf: path.utf8)
            bytes.append(0x0A)
        }
        return Data(bytes)
    }

    /// The key of the inputs but the bucket listing, as `snapshot` computes it (a few reads and
    /// stats: the manifest files, the folders); nil when a manifest file cannot be read.
    static func inputsKey(_ inputs: Inputs, disk: any Disk) -> String? { head(inputs, disk: disk)?.key }

    /// The snapshot's lines before the listing, in order (`inDigest`: the witness digest hashes
    /// it too; the shape hashes all), with their key and the manifest files' newest change.
    private static func head(_ inputs: Inputs, disk: any Disk) -> (chunks: [(Data, inDigest: Bool)], key: String, newest: Int64)? {
        var chunks: [(Data, inDigest: Bool)] = []
        var newest: Int64 = 0
        func add(_ text: String) { chunks.append((ContentDigests.utf8Data(JSONText.string(text) + "\n"), true)) }
        // 6: PNG and WebP sizes read with their EXIF orientation (attack 15 M8): the first run
        // after upgrading plans once, so sources cached at their stored size are read again.
        // 7: a public index may list no private output (attack 17's N4), a check of the full
        // load the fast path skips: the first run after upgrading loads and plans in full, so a
        // manifest built before that rule is refused instead of called "Nothing to do".
        // 8: each output's stat is written on its line and compared there (`statToken`); a
        // witness of 7 has none and is read as no witness.
        // 9: how each font is drawn is an input (attack 20's B1), and the lock's `left` lines'
        // files are watched (round 19's V1).
        // 10: the index gives each source's `dominant` colour (attack 36a's M6), which a state of
        // before has none of: the first run after upgrading plans in full, so the build makes
        // them and rewrites the index instead of calling the old one "Nothing to do".
        // 11: a `!rows` line says every outputs row of the database it names verifies
        // (`VerifiedRows`); a witness of 10 has none, so its first run checks every seal. (10 was
        // taken by the dominant colour on a branch that met this one: both are bumps.)
        // 12: `?` lines keep what other manifests answered about names narrowing would give
        // (`NarrowedNameAnswers`); a witness of 11 has none and may stand on answers that changed.
        // 13: narrowing decides otherwise (attack 48: a chain using the width again further down,
        // a GIF whose images reach past its screen, a neighbour that cannot be read): a witness of
        // 12 may stand on a plan of the old rules, so the first run after upgrading plans in full.
        add("derive-noop-witness/13")
        add(inputs.identity.engine)
        add(inputs.identity.encoder)
        for line in inputs.fontRendering.sorted() { add("font " + line) }
        // Where every bucket folder (and the state folder) leads now, and which folder that is: a
        // link repointed to a copy with the same stats (hard links) must not pass for the old one.
        for folder in inputs.manifest.buckets.map(\.path) + [inputs.manifest.stateFolder] {
            add("folder " + folder + " -> " + folderIdentity(folder))
        }
        for file in inputs.manifestFiles {
            // Read then stat: an edit between the two moves the stat, which the racy rule catches.
            guard let data = try? disk.read(file), let info = disk.stat(file) else { return nil }
            add(file)
            chunks.append((data, true))
            // A manifest file touched (same bytes) takes the full plan: its stat is part of the shape.
            chunks.append((ContentDigests.utf8Data("\n\(info.size) \(info.mtime) \(info.ctime) \(info.inode)\n"), false))
            // A manifest file dated ahead counts by its ctime (`FileStat.lastChange`; the clock
            // read after its stat), or it would leave no witness until the clock passed it.
            newest = max(newest, info.lastChange(now: disk.now(), margin: 1_000_000_000))
        }
        // The manifests beside this one, as they are now (the sibling checks: a lock or state
        // folder inside a bucket of a manifest beside this one, built or not, is refused): one added,
        // removed, renamed or edited takes the full plan (attack 54c's F1: a site.yaml added beside,
        // its bucket holding this manifest's lock, left check/build/plan "up to date" while a fresh
        // plan and validate refused). Names and stats only: nothing is read.
        let besideFolder = (URL(literalFilePath: inputs.manifestPath).standardizedFileURL.path as NSString).deletingLastPathComponent
        for name in NeighbourProjects.manifestNames(in: besideFolder).sorted() {
            var info = stat()
            let path = (besideFolder == "/" ? "" : besideFolder) + "/" + name
            guard lstat(path, &info) == 0 else { add("beside " + name + " -"); continue }
            add("beside \(name) \(info.st_dev) \(info.st_ino) \(info.st_mode) \(info.st_size) "
                + "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)")
        }
        // The projects the registry of built projects names whose buckets share files with a
        // public bucket of this manifest (`RegisteredProjects.watchedFiles`, what a running serve
        // watches): their manifests, includes, locks and state folders as they are now. Validate
        // and the full plan weigh those projects, so a far project built, or its manifest edited,
        // after the witness was saved takes the full plan (attack 53c's F1: the no-op said
        // "Nothing to do" while validate and a fresh plan refused). The registry file itself is
        // not stamped: every build of any project rewrites it, and a line that matters adds a path here.
        let registry = ProjectRegistry.path
        for path in RegisteredProjects.watchedFiles(inputs.manifest) where path != registry {
            var info = stat()
            guard lstat(path, &info) == 0 else { add("registered " + path + " -"); continue }
            add("registered \(path) \(info.st_dev) \(info.st_ino) \(info.st_mode) \(info.st_size) "
                + "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)")
        }
        var key = SHA256()
        for (chunk, _) in chunks { key.update(data: chunk) }
        for text in [inputs.manifestPath, inputs.lockPath] + inputs.fontFiles.sorted() {
            key.update(data: ContentDigests.utf8Data(JSONText.string(text) + "\n"))
        }
        return (chunks, ContentDigests.hex(key.finalize()), newest)
    }

    /// The real path, device and inode of the folder at `path` (links followed), or "-".
    static func folderIdentity(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return "-" }
        defer { free(resolved) }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return "-" }
        return String(cString: resolved) + " " + String(info.st_dev) + " " + String(info.st_ino)
    }

    /// The output half, taken after the build: every output, the lock, the index and the state
    /// database (a database garbled since is noticed and recovered by the full path). The lock's
    /// digest is nil when `hashLock` says, from the lock's stat just taken, it need not be read.
    /// `left`: the files the lock's `left` lines place (a build drops a line once its file is
    /// gone, so a file gone since is a change: the full plan runs).
    /// `paths` and `stats` are the outputs' then the lock's, the state database's, the index's and
    /// the left files'; `digest` covers only those after the outputs (paths and stats): each
    /// output's stat is written on its own line of the witness and compared there (`statToken`),
    /// since hashing 2 000 outputs' stat lines was a fifth of a no-op's instructions wherever
    /// SHA-256 has no CPU instructions of its own (issue 15).
    static func outputs(_ inputs: Inputs, outputs: [String], left: [String] = [], disk: any Disk,
                        hashLock: (FileStat?) -> Bool = { _ in true }) -> OutputHalf? {
        var hasher = SHA256()
        let paths = outputPaths(inputs, outputs: outputs, left: left)
        guard let stats = statAll(paths, disk: disk) else { return nil }
        _ = hashLines(paths[outputs.count...], stats[outputs.count...], into: &hasher)
        guard hashLock(stats[outputs.count]) else { return (ContentDigests.hex(hasher.finalize()), paths, stats, nil) }
        let lock = (try? disk.read(inputs.lockPath, maxBytes: LockFile.maxBytes)).map(ContentDigests.digest) ?? "-"
        return (ContentDigests.hex(hasher.finalize()), paths, stats, lock)
    }

    /// The output half as stat'ed: the digest of the lock's, state database's, index's and left
    /// files' lines, every path (outputs first) with its stat, and the lock's digest (nil: not read).
    typealias OutputHalf = (digest: String, paths: [String], stats: [FileStat?], lock: String?)

    /// The paths the output half stats, in order: the outputs, the lock, the state database, the
    /// index (if any), the left files.
    static func outputPaths(_ inputs: Inputs, outputs: [String], left: [String]) -> [String] {
        var paths = outputs
        paths.append(inputs.lockPath)
        paths.append(inputs.manifest.stateFolder + "/" + StateStore.fileName)
        if let index = inputs.manifest.index, let bucket = inputs.manifest.bucket(named: index.bucket) {
            paths.append(bucket.path + "/" + index.path)
        }
        paths += left
        return paths
    }

    /// An output's stat as its witness line ends: `-` for a missing file, else its size, mtime,
    /// ctime and inode as 16 lowercase hex digits each (their 64-bit patterns). Equal tokens are
    /// equal stats: the comparison is exact, where the hashed lines were equal by their digest.
    static func statToken(_ info: FileStat?) -> [UInt8] {
        var token: [UInt8] = []
        statToken(info, into: &token)
        return token
    }

    /// `statToken` written over `token` (one buffer for every output of a no-op).
    static func statToken(_ info: FileStat?, into token: inout [UInt8]) {
        guard let info else {
            token.removeAll(keepingCapacity: true)
            token.append(UInt8(ascii: "-"))
            return
        }
        if token.count != 64 { token = [UInt8](repeating: 0, count: 64) }
        token.withUnsafeMutableBufferPointer { out in
            func put(_ value: UInt64, at start: Int) {
                for digit in 0..<16 {
                    let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * digit)) & 0xF
                    out[start + digit] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
                }
            }
            put(UInt64(bitPattern: info.size), at: 0)
            put(UInt64(bitPattern: info.mtime), at: 16)
            put(UInt64(bitPattern: info.ctime), at: 32)
            put(info.inode, at: 48)
        }
    }

    /// Stats `paths` on all cores, each core a run of neighbouring paths (so each folder is walked
    /// once), and hashes one line per path in order: its length-prefixed bytes and its stat.
    /// Returns the stats and the newest change time seen.
    private static func stats(_ paths: [String], disk: any Disk, into hasher: inout SHA256) -> (stats: [FileStat?], newest: Int64)? {
        guard let stats = statAll(paths, disk: disk) else { return nil }
        return (stats, hashLines(paths[...], stats[...], into: &hasher))
    }

    /// The stats of `paths`, on all cores, each core a run of neighbouring paths (so each folder
    /// is walked once).
    private static func statAll(_ paths: [String], disk: any Disk) -> [FileStat?]? {
        let runs = max(1, min(ProcessInfo.processInfo.activeProcessorCount, paths.count / 1024))
        let size = (paths.count + runs - 1) / max(runs, 1)
        let ranges = (0..<runs).map { ($0 * size)..<min(paths.count, ($0 + 1) * size) }
        return try? parallelMap(ranges, { disk.stats(Array(paths[$0])) }).flatMap({ $0 })
    }

    /// Hashes one line per path in order: its length-prefixed bytes and its stat. Returns the
    /// newest change time seen.
    private static func hashLines(_ paths: ArraySlice<String>, _ stats: ArraySlice<FileStat?>, into hasher: inout SHA256) -> Int64 {
        var newest: Int64 = 0
        var line: [UInt8] = []
        line.reserveCapacity(1 << 16)
        // Eight little-endian bytes per number, not its decimal text: 60 000 conversions to
        // text showed in the no-op profile at 10 000 outputs. Fixed width keeps lines unambiguous.
        func number(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { line.append(contentsOf: $0) } }
        func number(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { line.append(contentsOf: $0) } }
        for (path, info) in zip(paths, stats) {
            number(Int64(path.utf8.count))
            line.append(contentsOf: path.utf8)
            line.append(0x20)
            if let info {
                line.append(UInt8(ascii: "s"))   // a stat follows ("-": missing), so no line reads as another
                number(info.size); number(info.mtime); number(info.ctime); number(info.inode)
                newest = max(newest, info.changed)
            } else {
                line.append(UInt8(ascii: "-"))
            }
            line.append(0x0A)
            if line.count > 60_000 { hasher.update(data: line); line.removeAll(keepingCapacity: true) }
        }
        hasher.update(data: line)
        return newest
    }

    /// A saved witness as read back.
    public struct Saved: Sendable {
        var head: [String]
        var recorded: Int64
        public var outputs: [String]
        /// Each output's `statToken` when saved, in the order of `outputs`.
        var outputStats: [ArraySlice<UInt8>] = []
        /// Racy files' digests (written within the racy margin of saving), by file.
        public var racy: PathDictionary<String>
        /// How many outputs the state marked as adopted from the lock unverified when saved
        /// (an `!adopted N` line): the no-op answer says so, as the full plan does.
        public var adoptedUnverified = 0
        /// The files of the lock's `left` lines (`~"file"` lines; an older Derive reads none: it plans).
        public var left: [String] = []
        /// Symbolic links old outputs were kept behind (`Plan.orphansBehindLinks`; `@"link"`
        /// lines): the witness holds only while each is still a link, so the run after one is
        /// removed or replaced plans (and deletes Derive's file). An older Derive reads none: it plans.
        public var links: [String] = []
        /// Of `links`, the mount points (`^"path" TOKEN` lines), each with the token of the
        /// mount that was there (`WitnessMountPoints`).
        public var mounts: [String: String] = [:]
        /// The database's token when every outputs row in it verified (`VerifiedRows`; a `!rows` line), else nil.
        public var rowsVerified: String?
        /// What other manifests answered about names narrowing would give (`?` lines, as saved).
        public var asked: [String] = []
    }

    public static func read(_ inputs: Inputs, disk: any Disk) -> Saved? {
        let path = inputs.manifest.stateFolder + "/" + fileName
        guard disk.stat(path) != nil, let data = try? disk.read(path) else { return nil }
        // Split on bytes: String's `split` over 40 000 lines showed in no-op profiles.
        // Only as Derive sealed it: a hand-edited witness is not read (attack 30's F2).
        guard let bytes = WitnessSeal.opened([UInt8](data), domain: sealDomain, key: WitnessSeal.key(stateFolder: inputs.manifest.stateFolder))
        else { return nil }
        let lines = lineRanges(bytes)
        guard lines.count >= 5 else { return nil }
        let head = lines.prefix(4).map { String(decoding: bytes[$0], as: UTF8.self) }
        guard let recorded = Int64(head[3]) else { return nil }
        var outputs: [String] = []
        outputs.reserveCapacity(lines.count - 4)
        var outputStats: [ArraySlice<UInt8>] = []
        outputStats.reserveCapacity(lines.count - 4)
        var racy: PathDictionary<String> = [:]
        var adopted = 0
        var left: [String] = []
        var links: [String] = []
        var mounts: [String: String] = [:]
        var rowsVerified: String?
        var asked: [String] = []
        for range in lines.dropFirst(4) where !range.isEmpty {
            let line = bytes[range]
            if line.first == UInt8(ascii: "?") {
                guard NarrowedNameAnswers.parse(line.dropFirst()) != nil else { return nil }
                asked.append(String(decoding: line, as: UTF8.self))
                continue
            }
            if line.first == UInt8(ascii: "@") {
                guard let link = unquote(line.dropFirst()) else { return nil }
                links.append(link)
                continue
            }
            if line.first == mountPrefix {
                guard let (path, token) = mountEntry(line) else { return nil }
                links.append(path)
                mounts[path] = token
                continue
            }
            if line.first == UInt8(ascii: "~") {
                guard let file = unquote(line.dropFirst()) else { return nil }
                left.append(file)
                continue
            }
            if line.starts(with: Array(rowsPrefix.utf8)) {
                let token = String(decoding: line.dropFirst(rowsPrefix.utf8.count), as: UTF8.self)
                guard VerifiedRows.isToken(token) else { return nil }
                rowsVerified = token
                continue
            }
            if line.first == UInt8(ascii: "!") {
                // `!adopted N` (an older Derive reads no such line: it plans, which is safe).
                guard line.starts(with: Array(adoptedPrefix.utf8)),
                      let count = Int(String(decoding: line.dropFirst(adoptedPrefix.utf8.count), as: UTF8.self)), count > 0 else { return nil }
                adopted = count
                continue
            }
            if line.first == UInt8(ascii: "=") {
                guard let (file, digest) = racyEntry(line) else { return nil }
                racy[file] = digest
                continue
            }
            // `"output" token`: the token (`statToken`: 64 hex digits, or `-`) has no space, so the
            // space before it ends the quoted path.
            let space = line.count > 65 && line[line.endIndex - 65] == 0x20 ? line.endIndex - 65 : line.endIndex - 2
            guard space > line.startIndex, line[space] == 0x20, let output = unquote(line[..<space]) else { return nil }
            outputs.append(output)
            outputStats.append(line[(space + 1)...])
        }
        return Saved(head: head, recorded: recorded, outputs: outputs, outputStats: outputStats, racy: racy, adoptedUnverified: adopted, left: left, links: links,
                     mounts: mounts, rowsVerified: rowsVerified, asked: asked)
    }

    /// The lines of `bytes` as index ranges, split at each newline with empty lines kept:
    /// `bytes.split(separator: 0x0A, omittingEmptySubsequences: false)`'s pieces, found with
    /// `memchr` and without an array of slices (each holding the buffer): splitting a 40 000-output
    /// witness was a quarter of a debug build's no-op (issue 15). `WitnessLineRangesTests`
    /// compares the two.
    static func lineRanges(_ bytes: ArraySlice<UInt8>) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let offset = bytes.startIndex
            var start = 0
            while true {
                let rest = buffer.count - start
                guard rest > 0, let found = memchr(base + start, 0x0A, rest) else {
                    ranges.append((offset + start)..<(offset + buffer.count))
                    return
                }
                let end = UnsafeRawPointer(found) - UnsafeRawPointer(base)
                ranges.append((offset + start)..<(offset + end))
                start = end + 1
            }
        }
        if bytes.isEmpty { ranges = [bytes.startIndex..<bytes.startIndex] }
        return ranges
    }

    static let adoptedPrefix = "!adopted "
    static let rowsPrefix = "!rows "

    /// Whether `path` is a symbolic link itself (never followed).
    static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }
    static let sealDomain = "derive-noop-witness/1"

    /// The number of outputs when the saved witness still holds (the plan would be empty), else nil.
    public static func holds(_ inputs: Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) -> Int? {
        guard let saved = read(inputs, disk: disk) else { return nil }
        return holds(saved, inputs, disk: disk, racyMargin: racyMargin) ? saved.outputs.count : nil
    }

    private static func holds(_ saved: Saved, _ inputs: Inputs, disk: any Disk, racyMargin: Int64) -> Bool {
        guard let snapshot = snapshot(inputs, disk: disk), snapshot.digest == saved.head[0],
              inputsHold(saved, snapshot, disk: disk, racyMargin: racyMargin), answersHold(saved, inputs) else { return false }
        return outputsHold(saved, inputs, disk: disk, racyMargin: racyMargin)
    }

    /// Whether the input half, whose digest matched, may be trusted: no manifest file changed
    /// within the racy margin of saving, and every input file that did holds the bytes the
    /// witness vouched for (read again: a change in the same clock tick keeps the stat).
    static func inputsHold(_ saved: Saved, _ snapshot: Snapshot, disk: any Disk, racyMargin: Int64) -> Bool {
        let since = saved.recorded - racyMargin
        guard snapshot.manifestNewest < since else { return false }
        guard snapshot.newest >= since else { return true }
        let now = disk.now()   // after the snapshot's stats: an mtime dated ahead counts by its ctime
        for (file, stat) in zip(snapshot.files, snapshot.stats) {
            guard let stat, stat.lastChange(now: now, margin: racyMargin) >= since else { continue }
            guard let digest = saved.racy[file], let hashed = try? disk.digestAndHead(file, headBytes: 0).digest, hashed == digest
            else { return false }
        }
        return true
    }

    /// Whether other manifests answer every question about names narrowing would give as they
    /// did when the witness was saved (`NarrowedNameAnswers`).
    /// And whether no file the lock's `left` lines place is another manifest's recorded output
    /// now (attack 48a's F2: that manifest's lock, unreadable when the line was written, read
    /// again without any file this witness stats changing, and the line stayed for good).
    static func answersHold(_ saved: Saved, _ inputs: Inputs) -> Bool {
        guard NarrowedNameAnswers.hold(saved.asked, taken: inputs.narrowedNameTaken) else { return false }
        guard !saved.left.isEmpty else { return true }
        guard let claimed = inputs.leftFileClaimed else { return false }
        return !claimed()
    }

    /// Whether the output half (outputs, lock, index, state database) is as the witness saw it.
    static func outputsHold(_ saved: Saved, _ inputs: Inputs, disk: any Disk, racyMargin: Int64) -> Bool {
        outputsNow(saved, inputs, disk: disk, racyMargin: racyMargin) != nil
    }

    /// The output half as stat'ed now when it is as the witness saw it (`outputsHold`), else nil;
    /// its lock digest is the witness's when the lock was not read again (same stat, same bytes).
    static func outputsNow(_ saved: Saved, _ inputs: Inputs, disk: any Disk, racyMargin: Int64) -> OutputHalf? {
        let (head, recorded, racy) = (saved.head, saved.recorded, saved.racy)
        // The lock's bytes are read again only when it changed within the racy margin of saving:
        // otherwise the same stat (the digest covers it) means the bytes the witness hashed,
        // as for every other file (a lock re-hashed on every no-op showed in its profile).
        guard saved.outputStats.count == saved.outputs.count, keptPlacesHold(saved),
              let now = Self.outputs(inputs, outputs: saved.outputs, left: saved.left, disk: disk, hashLock: { $0.map { $0.changed >= recorded - racyMargin } ?? false }),
              now.digest == head[1], (now.lock ?? head[2]) == head[2] else { return nil }
        // Every output's stat as its line says (`statToken`, exact), compared with memcmp.
        var token: [UInt8] = []
        for (stat, written) in zip(now.stats, saved.outputStats) {
            statToken(stat, into: &token)
            guard written.count == token.count,
                  token.withUnsafeBytes({ a in written.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } })
            else { return nil }
        }
        // Same stats as when saved; those written within the racy margin of saving must still
        // hold the bytes they held then (a change in the same clock tick keeps the stat).
        let clock = disk.now()
        let stateFile = inputs.manifest.stateFolder + "/" + StateStore.fileName
        for (file, stat) in zip(now.paths, now.stats) {
            guard let stat, stat.lastChange(now: clock, margin: racyMargin) >= recorded - racyMargin else { continue }
            guard let digest = racy[file] else { return nil }
            // The state database as the build's own commit left it: its SQLite header (change
            // counter, page count) with the same stat and no journal, never its megabytes (`StateIdentity`).
            if StateIdentity.isToken(digest) {
                guard PathKey.same(file, stateFile), StateIdentity.token(file, stat: stat, disk: disk) == digest else { return nil }
                continue
            }
            // Hashed in pieces (`digestAndHead`), never held whole.
            guard let hashed = try? disk.digestAndHead(file, headBytes: 0).digest, hashed == digest else { return nil }
        }
        return (now.digest, now.paths, now.stats, now.lock ?? head[2])
    }

    /// After a no-op whose witness held through racy files' bytes, once the racy margin has
    /// passed: the same witness saved again now, so later no-ops only stat (the state database,
    /// rehashed while racy, is megabytes at 40 000 outputs). Call under the build lock.
    public static func refresh(_ inputs: Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) {
        guard let saved = read(inputs, disk: disk) else { return }
        refresh(inputs, saved: saved, disk: disk, racyMargin: racyMargin)
    }

    /// Whether the witness holds through a racy file's bytes, not only the state database's
    /// `StateIdentity` (checked from its header on every no-op, as cheap as its stat: saving the
    /// witness again for it alone cost a no-op's stats twice more).
    static func racyBeyondTheState(_ saved: Saved) -> Bool {
        saved.racy.values.contains { !StateIdentity.isToken($0) }
    }

    /// `refresh` with the witness a `WitnessCheck` read: nothing to do (and nothing read again)
    /// unless it held through racy files' bytes.
    static func refresh(_ inputs: Inputs, saved: Saved, disk: any Disk, racyMargin: Int64) {
        guard racyBeyondTheState(saved), disk.now() > saved.recorded + racyMargin,
              let snapshot = snapshot(inputs, disk: disk), snapshot.digest == saved.head[0],
              holds(saved, inputs, disk: disk, racyMargin: racyMargin) else { return }
        // Files racy now were racy then (a later change would have moved their stat): the
        // witness vouches for them with the bytes it checked; any other leaves no witness.
        let digests = TouchedInputs.readRecorded(inputs, saved: saved, disk: disk)?.digests ?? [:]
        save(inputs, snapshot: snapshot, outputs: saved.outputs, left: saved.left, links: saved.links, disk: disk, valid: true, adoptedUnverified: saved.adoptedUnverified,
             expected: { saved.racy[$0] ?? "unknown" }, inputDigest: { path, _ in digests[path] },
             planDigest: { path, _ in saved.racy[path] ?? digests[path] }, rowsVerified: saved.rowsVerified, asked: saved.asked, racyMargin: racyMargin)
    }

    /// `refresh` from what the no-op's own check stat'ed (issue 15): its snapshot and the output
    /// half it compared, instead of two more stat passes over every source and output (the first
    /// no-op after a build that changed something cost three no-ops). The witness is saved as of
    /// `snapshot.taken`, when those stats began: a file changed after its stat in the same clock
    /// tick changed within the racy margin of that moment, so it is read again when saving
    /// (stat, hash, stat: it must still have the stat the check took and the bytes the witness
    /// vouched for), and a file changed later has another stat, which the next run sees. Nothing
    /// is saved when the check began within the racy margin of the witness's saving (the files
    /// racy then would still be racy): a later no-op's check refreshes it.
    static func refresh(_ inputs: Inputs, saved: Saved, snapshot: Snapshot, outputs: OutputHalf, disk: any Disk, racyMargin: Int64) {
        guard racyBeyondTheState(saved), snapshot.taken > saved.recorded + racyMargin, snapshot.digest == saved.head[0] else { return }
        let digests = TouchedInputs.readRecorded(inputs, saved: saved, disk: disk)?.digests ?? [:]
        save(inputs, snapshot: snapshot, outputs: saved.outputs, left: saved.left, links: saved.links, disk: disk, valid: true, adoptedUnverified: saved.adoptedUnverified,
             expected: { saved.racy[$0] ?? "unknown" }, inputDigest: { path, _ in digests[path] },
             planDigest: { path, _ in saved.racy[path] ?? digests[path] }, rowsVerified: saved.rowsVerified, asked: saved.asked, taken: (snapshot.taken, outputs),
             racyMargin: racyMargin)
    }

    /// Records the witness after a build that left nothing stale (with the input snapshot taken
    /// before it planned); removes it otherwise. `expected` gives the digest the build recorded
    /// for a file it wrote (outputs, lock, index): a racy file must still hold those bytes.
    /// `inputDigest` gives the content digest the plan used for an input file with the stat
    /// the snapshot took (nil when unknown): kept beside the witness for `TouchedInputs`.
    /// `planDigest` gives it even for a file the plan hashed within the racy margin (its record
    /// is not trusted later): such an input, changed in the snapshot's own tick, is vouched for
    /// by its bytes, read again now (after `recorded`) and equal to what the plan used, so a
    /// build started right after an edit leaves a witness at once (issue 15). A racy manifest
    /// file, or a racy input the plan did not hash, leaves no witness.
    /// `adoptedUnverified`: outputs the state marks as adopted from the lock unverified (`Saved`).
    /// `taken`: the output half already stat'ed (from `recorded` on, for these outputs and left
    /// files), used instead of stat'ing it again, with `recorded` as the time of saving.
    public static func save(_ inputs: Inputs, snapshot: Snapshot?, outputs: [String], left: [String] = [], links: [String] = [], disk: any Disk, valid: Bool, adoptedUnverified: Int = 0,
                            expected: (String) -> String? = { _ in nil }, inputDigest: (String, FileStat) -> String? = { _, _ in nil },
                            planDigest: (String, FileStat) -> String? = { _, _ in nil },
                            settled: (String, FileStat) -> Bool = { _, _ in true },
                            stateCommitted: Bool = false, rowsVerified: String? = nil, asked: [String] = [],
                            racyMargin: Int64 = 1_000_000_000) {
        save(inputs, snapshot: snapshot, outputs: outputs, left: left, links: links, disk: disk, valid: valid, adoptedUnverified: adoptedUnverified,
             expected: expected, inputDigest: inputDigest, planDigest: planDigest, settled: settled, stateCommitted: stateCommitted,
             rowsVerified: rowsVerified, asked: asked, taken: nil, racyMargin: racyMargin)
    }

    static func save(_ inputs: Inputs, snapshot: Snapshot?, outputs: [String], left: [String], links: [String] = [], disk: any Disk, valid: Bool, adoptedUnverified: Int,
                     expected: (String) -> String?, inputDigest: (String, FileStat) -> String?, planDigest: (String, FileStat) -> String?,
                     settled: (String, FileStat) -> Bool = { _, _ in true }, stateCommitted: Bool = false, rowsVerified: String? = nil,
                     asked: [String] = [], taken: (recorded: Int64, outputs: OutputHalf)?, racyMargin: Int64) {
        let path = inputs.manifest.stateFolder + "/" + fileName
        let stateFile = inputs.manifest.stateFolder + "/" + StateStore.fileName
        let sorted = outputs.sortedByBytes()
        let leftSorted = left.sortedByBytes()
        // The output half given only for exactly these paths, with the lock's digest.
        let given = taken.flatMap { $0.outputs.lock != nil && $0.outputs.paths == outputPaths(inputs, outputs: sorted, left: leftSorted) ? $0 : nil }
        let recorded = given?.recorded ?? disk.now()
        guard valid, let snapshot, snapshot.manifestNewest < snapshot.taken - racyMargin,
              let vouched = racyInputDigests(snapshot, since: snapshot.taken - racyMargin, racyMargin: racyMargin, disk: disk, planDigest: planDigest),
              let now = given?.outputs ?? Self.outputs(inputs, outputs: sorted, left: leftSorted, disk: disk),
              let racy = racyDigests(now.paths, now.stats, since: recorded - racyMargin, racyMargin: racyMargin, disk: disk, expected: expected, settled: settled,
                                     identity: { file, stat in
                                         // The state database by its SQLite identity: only as this session's own commit
                                         // left it, or as the witness being saved again vouched for it.
                                         guard PathKey.same(file, stateFile), stateCommitted || expected(file).map(StateIdentity.isToken) == true else { return nil }
                                         return StateIdentity.token(file, stat: stat, disk: disk)
                                     }) else {
            try? disk.remove(path)
            TouchedInputs.remove(inputs, disk: disk)
            return
        }
        let inputLines = vouched.sortedByKey().map { "=" + $0.value + " " + JSONText.string($0.key) }
        let adopted = adoptedUnverified > 0 ? [adoptedPrefix + String(adoptedUnverified)] : []
        let outputLines = zip(sorted, now.stats).map { JSONText.string($0) + " " + String(decoding: statToken($1), as: UTF8.self) }
        let leftLines = leftSorted.map { "~" + JSONText.string($0) }
        // Saved only while each is a link or a mount point still: one gone since the plan leaves no witness.
        guard let linkLines = keptPlaceLines(links) else {
            try? disk.remove(path)
            TouchedInputs.remove(inputs, disk: disk)
            return
        }
        let rowsLine = rowsVerified.map { [rowsPrefix + $0] } ?? []
        let text = ([snapshot.digest, now.digest, now.lock ?? "-", String(recorded)] + outputLines + inputLines + racy + adopted + leftLines + linkLines
                    + rowsLine + asked)
            .joined(separator: "\n") + "\n"
        // The inputs' record first: a witness without its record only loses the touched-only path.
        let key = WitnessSeal.key(stateFolder: inputs.manifest.stateFolder)
        TouchedInputs.save(inputs, snapshot: snapshot, recorded: recorded, disk: disk, key: key, digest: { vouched[$0] ?? inputDigest($0, $1) })
        do { _ = try disk.writeAtomically(WitnessSeal.sealed(text, domain: sealDomain, key: key), to: path) } catch { WitnessWriteFailures.note(error, writing: path) }
    }

    /// The digests of the input files changed at or after `since`, each the digest the plan used
    /// for it with the snapshot's stat and what its bytes hash to now (stat, hash, stat: the
    /// bytes are the ones that stat describes); nil when one is unknown to the plan or differs.
    private static func racyInputDigests(_ snapshot: Snapshot, since: Int64, racyMargin: Int64, disk: any Disk,
                                         planDigest: (String, FileStat) -> String?) -> PathDictionary<String>? {
        var digests: PathDictionary<String> = [:]
        guard snapshot.newest >= since else { return digests }
        let now = disk.now()
        for (file, stat) in zip(snapshot.files, snapshot.stats) {
            guard let stat, stat.lastChange(now: now, margin: racyMargin) >= since else { continue }
            guard let wanted = planDigest(file, stat), disk.stats([file]).first == .some(stat),
                  let hashed = try? disk.digestAndHead(file, headBytes: 0).digest, disk.stats([file]).first == .some(stat),
                  hashed == wanted else { return nil }
            digests[file] = wanted
        }
        return digests
    }

    /// `=digest "file"` lines for the files changed at or after `since`; nil when one of them no
    /// longer has the stat just taken, or differs from what the build recorded for it.
    /// A file whose stat now is not `settled` (not the stat the build wrote it with or planned
    /// with: changed since, however long ago) is read too, and must hold the bytes the build
    /// recorded (attack 20's B3: an output edited while the build still ran).
    /// `identity`: the state database's `StateIdentity` token, kept instead of its digest (nil: hashed).
    private static func racyDigests(_ paths: [String], _ stats: [FileStat?], since: Int64, racyMargin: Int64, disk: any Disk,
                                    expected: (String) -> String?, settled: (String, FileStat) -> Bool,
                                    identity: (String, FileStat) -> String? = { _, _ in nil }) -> [String]? {
        var lines: [String] = []
        let now = disk.now()
        for (file, stat) in zip(paths, stats) {
            guard let stat else { continue }
            if stat.lastChange(now: now, margin: racyMargin) < since {
                guard !settled(file, stat) else { continue }
                // Not recent, so not kept as racy: its bytes must be the build's, or no witness.
                guard let wanted = expected(file), let hashed = try? disk.digestAndHead(file, headBytes: 0).digest,
                      disk.stats([file]).first == .some(stat), hashed == wanted else { return nil }
                continue
            }
            if let token = identity(file, stat) {
                if let wanted = expected(file), wanted != token { return nil }
                lines.append("=" + token + " " + JSONText.string(file))
                continue
            }
            // Stat, read, stat: the bytes hashed are the ones that stat describes.
            // Hashed in pieces: the state database a build just wrote is racy on every save.
            guard let digest = try? disk.digestAndHead(file, headBytes: 0).digest, disk.stats([file]).first == .some(stat) else { return nil }
            if let wanted = expected(file), wanted != digest { return nil }
            lines.append("=" + digest + " " + JSONText.string(file))
        }
        return lines
    }

    static func racyEntry(_ line: ArraySlice<UInt8>) -> (file: String, digest: String)? {
        guard let space = line.firstIndex(of: 0x20), space > line.startIndex + 1,
              let file = unquote(line[(space + 1)...]) else { return nil }
        return (file, String(decoding: line[(line.startIndex + 1)..<space], as: UTF8.self))
    }

    static func unquote(_ line: ArraySlice<UInt8>) -> String? {
        // Most paths have nothing escaped: strip the quotes without a JSON parser.
        guard line.count >= 2, line.first == 0x22, line.last == 0x22 else { return nil }
        let inner = line.dropFirst().dropLast()
        if !inner.contains(0x5C) { return String(decoding: inner, as: UTF8.self) }
        return (try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])) as? String
    }
}
