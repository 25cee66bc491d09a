import Crypto
import Foundation
import Manifest

/// A fast path for "nothing to do", like ninja comparing mtimes: after a clean build, a digest
/// of everything a plan depends on — the manifest files' bytes, the engine identity, and
/// (path, size, mtime, inode) of every object in the source buckets, every output, the font
/// files the pipelines use, derive.lock and the index — is kept beside the state. When the next
/// run computes the same digest, the plan is known to be empty without expanding rules or
/// reading the state. Any difference (or a stat within the racy margin of the witness) falls
/// back to the full plan.
public struct NoOpWitness: Sendable {
    public static let fileName = "noop-witness"

    let digest: String
    let recorded: Int64
    /// Output files, absolute.
    let outputs: [String]

    /// What a witness covers.
    public struct Inputs: Sendable {
        public var manifestFiles: [String]
        public var manifest: Manifest
        public var manifestPath: String
        public var identity: EngineIdentity
        /// Font files the manifest's pipelines read.
        public var fontFiles: [String]

        public init(manifestFiles: [String], manifest: Manifest, manifestPath: String, identity: EngineIdentity, fontFiles: [String]) {
            self.manifestFiles = manifestFiles; self.manifest = manifest; self.manifestPath = manifestPath
            self.identity = identity; self.fontFiles = fontFiles
        }
    }

    /// The digest for `inputs` and `outputs` as they are now, and the newest mtime seen; nil when a
    /// manifest file cannot be read.
    static func compute(_ inputs: Inputs, outputs: [String], disk: any Disk) -> (digest: String, newest: Int64)? {
        var hasher = SHA256()
        var newest: Int64 = 0
        func add(_ text: String) { hasher.update(data: Data((text + "\n").utf8)) }
        add("derive-noop-witness/1")
        add(inputs.identity.engine)
        add(inputs.identity.encoder)
        for file in inputs.manifestFiles {
            guard let data = try? disk.read(file) else { return nil }
            add(file)
            hasher.update(data: data)
        }
        // Every path first, then the stats on all cores (the kernel's path walks dominate).
        var paths: [String] = []
        var listed: Set<String> = []
        for rule in inputs.manifest.rules {
            guard let bucket = inputs.manifest.bucket(named: rule.sourceBucket), listed.insert(bucket.name).inserted else { continue }
            for key in disk.keys(inFolder: bucket.path, skipping: [inputs.manifest.stateFolder]) ?? [] {
                paths.append(bucket.path + "/" + key)
            }
        }
        paths += outputs
        paths += inputs.fontFiles.sorted()
        paths.append(LockFile.path(forManifest: inputs.manifestPath))
        if let index = inputs.manifest.index, let bucket = inputs.manifest.bucket(named: index.bucket) {
            paths.append(bucket.path + "/" + index.path)
        }
        guard let stats = try? parallelMap(paths, { disk.stat($0) }) else { return nil }
        for (path, info) in zip(paths, stats) {
            if let info {
                add("\(path) \(info.size) \(info.mtime) \(info.inode)")
                newest = max(newest, info.mtime)
            } else {
                add("\(path) -")
            }
        }
        return (ContentDigests.hex(hasher.finalize()), newest)
    }

    /// The number of outputs when the saved witness still holds (the plan would be empty), else nil.
    public static func holds(_ inputs: Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) -> Int? {
        let path = inputs.manifest.stateFolder + "/" + fileName
        guard disk.stat(path) != nil, let data = try? disk.read(path) else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 2, let recorded = Int64(lines[1]) else { return nil }
        let outputs = lines.dropFirst(2).filter { !$0.isEmpty }
        guard let (digest, newest) = compute(inputs, outputs: Array(outputs), disk: disk),
              digest == lines[0], newest < recorded - racyMargin else { return nil }
        return outputs.count
    }

    /// Records the witness after a build that left nothing stale; removes it otherwise.
    public static func save(_ inputs: Inputs, outputs: [String], disk: any Disk, valid: Bool) {
        let path = inputs.manifest.stateFolder + "/" + fileName
        guard valid, let (digest, _) = compute(inputs, outputs: outputs.sorted(), disk: disk) else {
            try? disk.remove(path)
            return
        }
        let text = ([digest, String(disk.now())] + outputs.sorted()).joined(separator: "\n") + "\n"
        try? disk.writeAtomically(Data(text.utf8), to: path)
    }
}
