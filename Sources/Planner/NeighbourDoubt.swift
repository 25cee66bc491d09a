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
                guard neighbour.parses || SiblingManifests.looksMidEdit(neighbour.manifest) else { continue }
                var loader = ManifestLoader()
                loader.crossChecks = false
                loader.neighbourChecks = false
                let result = loader.load(neighbour.manifest)
                guard let other = result.manifest, !result.diagnostics.hasErrors else {
                    if found.unreadable == nil {
                        let first = result.diagnostics.sorted.first { $0.severity == .error }.map { ": \($0.line):\($0.column): \($0.message)" } ?? ""
                        found.unreadable = "\(name) does not load\(first), so what it writes is unknown; fix \(name) and build again"
                    }
                    continue
                }
                for rule in other.rules {
                    guard let target = other.bucket(named: rule.targetBucket) else { continue }
                    var alone = other
                    alone.rules = [rule]
                    found.rules.append((name, rule.planName, RealFolder.of(target.path), rule.targetBucket, RuleOutputs(alone)))
                }
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
        let loaded = loaded
        guard !loaded.rules.isEmpty, let (folder, name) = PathKey.splitLast(file) else { return nil }
        let real = RealFolder.of(folder) + "/" + name
        for written in loaded.rules {
            guard let key = PathKey.below(written.folder, real), written.outputs.mayProduce(bucket: written.bucket, key: key) else { continue }
            return "\(written.name)'s rule '\(written.rule)' writes that name, so the file may be its output"
        }
        return nil
    }

    /// The first neighbour in doubt (its lock cannot be read, or its manifest does not load); nil when none is.
    public var unreadable: String? { loaded.unreadable }
}
