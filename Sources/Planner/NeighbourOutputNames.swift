import Confinement
import Foundation
import Manifest

/// A name narrowing would give an output (`a-800.webp` for `w=960` of an 800 px source), with
/// what decides whether it is free: its file, its bucket's folder and key, and the source.
public struct NarrowedName: Sendable {
    public var output: String
    public var file: String
    public var folder: String
    public var key: String
    public var sourcePath: String
    public var sourceFormat: String
}

/// The names the rules of the other manifests in a manifest's folder give their outputs, as
/// written, for one source: a name narrowing gives is never one of them (attack 46's M2 with the
/// hero rule in hero.yaml beside derive.yaml, built after it: derive.yaml had renamed `w=960` to
/// `a-800.webp`, its recorded output, and hero.yaml's own `a-800.webp` was refused as derive.yaml's).
/// The neighbours are loaded on first use (none is, while no output is renamed).
public final class NeighbourOutputNames: @unchecked Sendable {
    struct Scope {
        var rule: Rule
        var sourceFolder: String
        var targetFolder: String
        var variants: [Rule.Variant]
    }

    private let manifest: String
    private let lock = NSLock()
    private var scopes: [Scope]?
    /// The first neighbour that cannot be read (its first error, `file:line:column: …`): a
    /// manifest mid-edit whose rules are unknown (attack 48's F3).
    private var unreadableNeighbour: String?

    public init(besides manifest: String) { self.manifest = manifest }

    private var loaded: [Scope] {
        lock.withLock {
            if let scopes { return scopes }
            var found: [Scope] = []
            for neighbour in SiblingManifests.neighbourLocks(of: manifest) where neighbour.parses || SiblingManifests.looksMidEdit(neighbour.manifest) {
                var loader = ManifestLoader()
                loader.crossChecks = false
                loader.neighbourChecks = false
                let loaded = loader.load(neighbour.manifest)
                let name = (neighbour.manifest as NSString).lastPathComponent
                guard let other = loaded.manifest, !loaded.diagnostics.hasErrors else {
                    // Half-written (an editor's save, `build --watch` beside it): its rules may
                    // write any name, so none is taken as free until it reads again.
                    if unreadableNeighbour == nil {
                        unreadableNeighbour = loaded.diagnostics.sorted.first { $0.severity == .error }.map {
                            "\(PathKey.same($0.file, neighbour.manifest) ? name : $0.file):\($0.line):\($0.column): \($0.message)"
                        }
                            ?? "\(name) does not read as a manifest"
                    }
                    continue
                }
                let catalogue = other.catalogue
                for rule in other.rules where rule.to.hashLength == nil {
                    guard let source = other.bucket(named: rule.sourceBucket), let target = other.bucket(named: rule.targetBucket),
                          let variants = try? rule.variants(catalogue: catalogue) else {
                        // A rule whose names cannot be known (a bucket it names is not declared yet).
                        if unreadableNeighbour == nil { unreadableNeighbour = "\(rule.place): rule '\(rule.planName)' of \(name) names a bucket it does not declare, or its process does not read" }
                        continue
                    }
                    found.append(Scope(rule: rule, sourceFolder: RealFolder.of(source.path), targetFolder: RealFolder.of(target.path), variants: variants))
                }
            }
            scopes = found
            return found
        }
    }

    /// The first neighbour manifest that cannot be read, with its first error
    /// (`hero.yaml:4:9: …`); nil when each reads.
    public var unreadable: String? {
        _ = loaded
        return lock.withLock { unreadableNeighbour }
    }

    /// Whether a neighbour's rule takes `name`'s source and writes, for one of its variants as
    /// written, the file `name` would be.
    /// True for every name while a neighbour cannot be read (`unreadable`): what it would write
    /// is unknown, so the variant is planned as written, not renamed onto a name the neighbour may
    /// write once saved whole (attack 48's F3: a half-written hero.yaml was taken as writing
    /// nothing, and `a-960.webp` became `a-800.webp`, the hero's, while the editor saved).
    public func writes(_ name: NarrowedName) -> Bool {
        let scopes = loaded
        if unreadable != nil { return true }
        guard !scopes.isEmpty else { return false }
        let folder = RealFolder.of(name.folder)
        let source = RealFolder.of((name.sourcePath as NSString).deletingLastPathComponent) + "/" + (name.sourcePath as NSString).lastPathComponent
        for scope in scopes where PathKey.same(scope.targetFolder, folder) {
            guard let key = PathKey.below(scope.sourceFolder, source), scope.rule.includes(key) else { continue }
            for variant in scope.variants {
                let written = scope.rule.to.render(Expansion.templateValues(key: key, variant: variant, format: name.sourceFormat))
                if PathKey.same(written, name.key) { return true }
            }
        }
        return false
    }
}
