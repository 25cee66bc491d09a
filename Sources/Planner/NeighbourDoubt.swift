import Confinement
import Foundation
import Manifest

/// Why a file in this manifest's buckets may be another manifest's of the same folder while
/// nothing can say whose it is (attack 49b's F1, F2): a neighbour whose lock is there but cannot
/// be read (a merge-conflict marker, a file cut short) or whose manifest does not load may record
/// any file; a loading neighbour whose rule writes the file's very name may own it. Build and
/// serve ask the same (serve: attack 50b's H1). Git proof
/// only proves the bytes were committed, not whose they are: in doubt a file only this
/// manifest's lock names is left in place (private), never deleted. Neighbours are read on first use.
public final class NeighbourDoubt: @unchecked Sendable {
    private struct Loaded {
        /// The first neighbour that cannot be fully read, said as a reason ("hero.lock cannot be read …").
        var unreadable: String?
        /// Each loading neighbour's rules, one manifest per rule (`RuleOutputs` of it alone), with
        /// the real folder of the bucket it writes.
        var rules: [(name: String, rule: String, folder: String, bucket: String, outputs: RuleOutputs)] = []
        /// The lines of the neighbours' locks (salvaged from one with a conflict marker), and of
        /// the locks of manifests gone from the folder (`ForeignClaims.goneManifestLocks`).
        var lines: [LockedLine] = []
    }

    /// A neighbour's lock line: `key` of one of its buckets (in `folder`, real; nil when its
    /// manifest does not load or is gone: any folder whose path the key ends) with `digest`.
    private struct LockedLine {
        var manifest: String
        var lock: String
        /// Its manifest is gone from the folder (its lock left).
        var gone: Bool
        var folder: String?
        var key: String
        var digest: String
    }

    private let manifest: String
    private let lock = NSLock()
    private var known: Loaded?

    public init(besides manifest: String) { self.manifest = manifest }

    private var loaded: Loaded {
        lock.withLock {
            if let known { return known }
            var found = Loaded()
            for neighbour in SiblingManifests.neighbourLocks(of: manifest) {
                let name = (neighbour.manifest as NSString).lastPathComponent
                let lockName = (neighbour.lock as NSString).lastPathComponent
                var info = stat()
                if found.unreadable == nil, stat(neighbour.lock, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, ForeignClaims.readLock(neighbour.lock) == nil {
                    found.unreadable = "\(lockName) cannot be read (a merge-conflict marker, or cut short), so whether \(name) records the file is unknown; "
                        + "resolve \(lockName) (or git checkout -- \(lockName)) and build again"
                }
                let loadedManifest: Manifest?
                if neighbour.parses || SiblingManifests.looksMidEdit(neighbour.manifest) {
                    var loader = ManifestLoader()
                    loader.crossChecks = false
                    loader.neighbourChecks = false
                    let result = loader.load(neighbour.manifest)
                    loadedManifest = result.diagnostics.hasErrors ? nil : result.manifest
                    if loadedManifest == nil, found.unreadable == nil {
                        let first = result.diagnostics.sorted.first { $0.severity == .error }.map { ": \($0.line):\($0.column): \($0.message)" } ?? ""
                        found.unreadable = "\(name) does not load\(first), so what it writes is unknown; fix \(name) and build again"
                    }
                } else {
                    loadedManifest = nil
                }
                found.lines += Self.lines(of: neighbour.lock, manifest: neighbour.manifest, buckets: loadedManifest.map { manifest in
                    Dictionary(manifest.buckets.map { ($0.name, RealFolder.of($0.path)) }, uniquingKeysWith: { a, _ in a })
                })
                guard let other = loadedManifest else { continue }
                for rule in other.rules {
                    guard let target = other.bucket(named: rule.targetBucket) else { continue }
                    var alone = other
                    alone.rules = [rule]
                    found.rules.append((name, rule.planName, RealFolder.of(target.path), rule.targetBucket, RuleOutputs(alone)))
                }
            }
            for gone in ForeignClaims.goneManifestLocks(owner: StateOwner.name(manifest)) {
                found.lines += Self.lines(of: gone.lock, manifest: gone.manifest, buckets: nil, gone: true)
            }
            known = found
            return found
        }
    }

    /// Why `file` (a file in one of this manifest's buckets) may be a neighbour's; nil when no
    /// neighbour is in doubt and none of their rules writes its name.
    public func reason(file: String) -> String? {
        unreadable ?? ruleWriting(file: file)
    }

    /// The loading neighbour's rule that writes `file`'s very name, said as a reason; nil when none
    /// does. It needs no lock or state of that neighbour: serve asks it of a file no project's
    /// lock or state records (attack 50b's H1: b's lock and state gone, b.yaml loading).
    public func ruleWriting(file: String) -> String? {
        ruleWriter(file: file).map { "\($0.name)'s rule '\($0.rule)' writes that name, so the file may be its output" }
    }

    /// The loading neighbour (its file name, and its path as given) whose rule (`rule`) writes
    /// `file`'s very name; nil when none does (`ruleWriting`).
    public func ruleWriter(file: String) -> (name: String, manifest: String, rule: String)? {
        let loaded = loaded
        guard !loaded.rules.isEmpty, let (folder, name) = PathKey.splitLast(file) else { return nil }
        let real = RealFolder.of(folder) + "/" + name
        for written in loaded.rules {
            guard let key = PathKey.below(written.folder, real), written.outputs.mayProduce(bucket: written.bucket, key: key) else { continue }
            return (written.name, ((manifest as NSString).deletingLastPathComponent as NSString).appendingPathComponent(written.name), written.rule)
        }
        return nil
    }

    /// Why `file`, a file this manifest installed and recorded with the bytes it holds, may be a
    /// neighbour's all the same: that neighbour's lock records it (this very path, these very
    /// bytes) and its rule writes that name, or its manifest does not load or is gone from the
    /// folder, so nothing says it gave the file up. Its build adopted the file (the same inode,
    /// never rewritten), so whose it is cannot be told from the file itself, and once its build
    /// state is lost nothing else records it (attack 50b's H2, M2: this manifest's build and
    /// clean deleted it). Such a file is never deleted, nor a name narrowing gives; nil when no lock says so.
    public func lockedReason(file: String) -> String? {
        let loaded = loaded
        guard !loaded.lines.isEmpty, let (folder, name) = PathKey.splitLast(file) else { return nil }
        let real = RealFolder.of(folder) + "/" + name
        var digest: String??
        for line in loaded.lines {
            if let folder = line.folder {
                guard let key = PathKey.below(folder, real), PathKey.same(key, line.key) else { continue }
            } else {
                let tail = Array(("/" + line.key).utf8)
                guard real.utf8.count > tail.count, real.utf8.suffix(tail.count).elementsEqual(tail) else { continue }
            }
            if digest == nil { digest = .some(ForeignClaims.fileDigest(file)) }
            guard case .some(.some(let bytes)) = digest, bytes == line.digest else { continue }
            let manifestName = (line.manifest as NSString).lastPathComponent, lockName = (line.lock as NSString).lastPathComponent
            let records = "\(lockName) records the file with these very bytes"
            if line.gone {
                return "\(lockName), the lock of \(manifestName), which is no longer there, records the file with these very bytes, so the file may be its output "
                    + "(its build may have adopted it); put \(manifestName) back, or move \(lockName) away if that project is gone for good"
            }
            guard line.folder != nil else {
                return "\(records) and \(manifestName) does not load, so the file may be its output; fix \(manifestName) and build again"
            }
            if let rule = loaded.rules.first(where: { written in
                written.name == manifestName && PathKey.same(written.folder, line.folder ?? "")
                    && written.outputs.mayProduce(bucket: written.bucket, key: line.key)
            }) {
                return "\(records) and \(manifestName)'s rule '\(rule.rule)' writes that name, so the file may be its output (its build may have adopted it)"
            }
        }
        return nil
    }

    /// The lines of the lock at `lock`, the lock of `manifest` (a copy of another manifest's lock,
    /// its first line naming that one, records nothing of it), placed in its buckets' folders
    /// (`buckets`: bucket → real folder; nil: any folder).
    private static func lines(of lock: String, manifest: String, buckets: [String: String]?, gone: Bool = false) -> [LockedLine] {
        var info = stat()
        guard stat(lock, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
              let data = FileManager.default.contents(atPath: lock) else { return [] }
        if LockFile.isDeriveLock(data), !gone,
           !LockFile.isOurs(data, manifest: LockFile.ownerName(manifestPath: manifest, lockPath: lock), lockPath: lock) { return [] }
        return LockFile.salvagedEntries(data).compactMap { entry in
            guard let (bucket, key) = PathKey.split(entry.path) else { return nil }
            var folder: String?
            if let buckets {
                guard let known = buckets[bucket] else { return nil }
                folder = known
            }
            return LockedLine(manifest: manifest, lock: lock, gone: gone, folder: folder, key: key, digest: entry.digest)
        }
    }

    /// The first neighbour in doubt (its lock cannot be read, or its manifest does not load); nil when none is.
    public var unreadable: String? { loaded.unreadable }
}
