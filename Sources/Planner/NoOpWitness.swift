import Confinement
import Crypto
import Foundation
import Manifest

/// A fast path for "nothing to do", like ninja comparing mtimes: after a clean build, a digest
/// of everything a plan depends on is kept beside the state. Its two halves are taken at
/// different moments, as ninja does: the inputs (the manifest files' bytes and stats, the engine
/// identity, every object of the source buckets, the fonts) in a snapshot *before* planning, so
/// an edit made while the build runs does not hide in the witness; the outputs (every output
/// file, the lock and the index) after the build. When the next run computes the same digest
/// from what is on disk now, the plan is known to be empty without expanding rules or reading
/// the state. Any difference (or a stat within the racy margin of the witness) falls back to
/// the full plan. The lock's digest is kept too and checked, so the witness never vouches for
/// a lock whose bytes changed.
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
        public var lockPath: String

        public init(manifestFiles: [String], manifest: Manifest, manifestPath: String, identity: EngineIdentity, fontFiles: [String],
                    lockPath: String? = nil) {
            self.manifestFiles = manifestFiles; self.manifest = manifest; self.manifestPath = manifestPath
            self.identity = identity; self.fontFiles = fontFiles
            self.lockPath = lockPath ?? LockFile.path(forManifest: manifestPath)
        }
    }

    /// The input half, taken before planning.
    public struct Snapshot: Sendable {
        let digest: String
        let newest: Int64
    }

    /// The inputs as they are now; nil when a manifest file cannot be read.
    public static func snapshot(_ inputs: Inputs, disk: any Disk) -> Snapshot? {
        var hasher = SHA256()
        var newest: Int64 = 0
        func add(_ text: String) { hasher.update(data: Data((LockFile.quote(text) + "\n").utf8)) }
        add("derive-noop-witness/2")
        add(inputs.identity.engine)
        add(inputs.identity.encoder)
        for file in inputs.manifestFiles {
            // Read then stat: an edit between the two moves the stat, which the racy rule catches.
            guard let data = try? disk.read(file), let info = disk.stat(file) else { return nil }
            add(file)
            hasher.update(data: data)
            newest = max(newest, info.changed)
        }
        var paths: [String] = []
        var listed: Set<String> = []
        for rule in inputs.manifest.rules {
            guard let bucket = inputs.manifest.bucket(named: rule.sourceBucket), listed.insert(bucket.name).inserted else { continue }
            let listing = disk.entries(inFolder: bucket.path, skipping: [inputs.manifest.stateFolder])
            for key in listing?.keys ?? [] { paths.append(bucket.path + "/" + key) }
            // Entries that are not files (a folder, a FIFO) may fail derivatives: their names count.
            for other in listing?.others ?? [] { add("not a file: " + bucket.path + "/" + other.key) }
        }
        paths += inputs.fontFiles.sorted()
        guard let latest = stats(paths, disk: disk, into: &hasher) else { return nil }
        return Snapshot(digest: ContentDigests.hex(hasher.finalize()), newest: max(newest, latest))
    }

    /// The output half, taken after the build: every output, the lock, the index and the state
    /// database (a database garbled since is noticed and recovered by the full path).
    static func outputs(_ inputs: Inputs, outputs: [String], disk: any Disk) -> (digest: String, newest: Int64, lock: String)? {
        var hasher = SHA256()
        var paths = outputs
        paths.append(inputs.lockPath)
        paths.append(inputs.manifest.stateFolder + "/" + StateStore.fileName)
        if let index = inputs.manifest.index, let bucket = inputs.manifest.bucket(named: index.bucket) {
            paths.append(bucket.path + "/" + index.path)
        }
        guard let newest = stats(paths, disk: disk, into: &hasher) else { return nil }
        let lock = (try? disk.read(inputs.lockPath)).map(ContentDigests.digest) ?? "-"
        return (ContentDigests.hex(hasher.finalize()), newest, lock)
    }

    /// Stats `paths` on all cores (the kernel's path walks dominate) and hashes them in order.
    /// Returns the newest change time seen.
    private static func stats(_ paths: [String], disk: any Disk, into hasher: inout SHA256) -> Int64? {
        guard let stats = try? parallelMap(paths, { disk.stat($0) }) else { return nil }
        var newest: Int64 = 0
        for (path, info) in zip(paths, stats) {
            let line: String
            if let info {
                line = "\(LockFile.quote(path)) \(info.size) \(info.mtime) \(info.ctime) \(info.inode)\n"
                newest = max(newest, info.changed)
            } else {
                line = "\(LockFile.quote(path)) -\n"
            }
            hasher.update(data: Data(line.utf8))
        }
        return newest
    }

    /// The number of outputs when the saved witness still holds (the plan would be empty), else nil.
    public static func holds(_ inputs: Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) -> Int? {
        let path = inputs.manifest.stateFolder + "/" + fileName
        guard disk.stat(path) != nil, let data = try? disk.read(path) else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 5, let recorded = Int64(lines[3]) else { return nil }
        let outputs = lines.dropFirst(4).filter { !$0.isEmpty }.compactMap(unquote)
        guard let snapshot = snapshot(inputs, disk: disk), snapshot.digest == lines[0],
              let (digest, newest, lock) = Self.outputs(inputs, outputs: outputs, disk: disk),
              digest == lines[1], lock == lines[2],
              max(snapshot.newest, newest) < recorded - racyMargin else { return nil }
        return outputs.count
    }

    /// Records the witness after a build that left nothing stale (with the input snapshot taken
    /// before it planned); removes it otherwise.
    public static func save(_ inputs: Inputs, snapshot: Snapshot?, outputs: [String], disk: any Disk, valid: Bool) {
        let path = inputs.manifest.stateFolder + "/" + fileName
        let sorted = outputs.sorted()
        guard valid, let snapshot, let (digest, _, lock) = Self.outputs(inputs, outputs: sorted, disk: disk) else {
            try? disk.remove(path)
            return
        }
        let text = ([snapshot.digest, digest, lock, String(disk.now())] + sorted.map(LockFile.quote)).joined(separator: "\n") + "\n"
        _ = try? disk.writeAtomically(Data(text.utf8), to: path)
    }

    static func unquote(_ line: String) -> String? {
        // Most paths have nothing escaped: strip the quotes without a JSON parser.
        if line.count >= 2, line.hasPrefix("\""), line.hasSuffix("\""), !line.contains("\\") { return String(line.dropFirst().dropLast()) }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])) as? String
    }
}
