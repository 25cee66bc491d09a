import Foundation
import Manifest
import ProcessLanguage

/// One line of a plan. A class: plans over tens of thousands of outputs are sorted and
/// filtered, and copying the derivative and record each time showed in no-op builds.
public final class PlanItem: Sendable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case create, rebuild, delete, upToDate = "up-to-date"
    }

    public let kind: Kind
    /// `bucket/key` of the output.
    public let output: String
    /// Why (for rebuilds and deletes; empty otherwise).
    public let reasons: [String]
    /// The wanted derivative (nil for deletes).
    public let derivative: Derivative?
    /// What the state recorded (nil for creates).
    public let recorded: OutputRecord?
    /// An up-to-date output known only from `derive.lock` (a fresh clone): the build records it.
    public let adopted: LockFile.Entry?

    public init(kind: Kind, output: String, reasons: [String], derivative: Derivative?, recorded: OutputRecord?,
                adopted: LockFile.Entry?) {
        self.kind = kind; self.output = output; self.reasons = reasons
        self.derivative = derivative; self.recorded = recorded; self.adopted = adopted
    }
}

/// The diff between the manifest and what was built, in a stable order.
public struct Plan: Sendable {
    public var items: [PlanItem]
    public var errors: [PlanError]

    public func count(_ kind: PlanItem.Kind) -> Int { items.reduce(0) { $0 + ($1.kind == kind ? 1 : 0) } }
    public var work: [PlanItem] { items.filter { $0.kind == .create || $0.kind == .rebuild } }
    public var deletions: [PlanItem] { items.filter { $0.kind == .delete } }
    public var adoptions: [PlanItem] { items.filter { $0.adopted != nil } }
    public var hasChanges: Bool { items.contains { $0.kind != .upToDate } }

    public var summary: String {
        "Plan: \(count(.create)) to create, \(count(.rebuild)) to rebuild, \(count(.delete)) to delete, \(count(.upToDate)) up to date."
    }
}

/// Reads `derive.lock` on first use.
final class LockText: @unchecked Sendable {
    private let disk: any Disk
    private let path: String
    private let lock = NSLock()
    private var loaded = false
    private var parsed: LockFile?

    init(disk: any Disk, path: String) {
        self.disk = disk
        self.path = path
    }

    var file: LockFile? {
        lock.withLock {
            if !loaded {
                loaded = true
                parsed = (try? disk.read(path)).map { LockFile.parse(String(decoding: $0, as: UTF8.self)) }
            }
            return parsed
        }
    }
}

/// Compares the manifest's derivatives with the recorded state and the files on disk.
public struct Planner: Sendable {
    public let manifest: Manifest
    public let disk: any Disk
    public let store: StateStore
    public let identity: EngineIdentity
    public let digests: ContentDigests
    private let lockText: LockText

    public init(manifest: Manifest, manifestPath: String, disk: any Disk, store: StateStore, identity: EngineIdentity,
                racyMargin: Int64 = 1_000_000_000) throws {
        self.manifest = manifest
        self.disk = disk
        self.store = store
        self.identity = identity
        self.digests = ContentDigests(disk: disk, cache: try store.allFiles(), racyMargin: racyMargin)
        self.lockText = LockText(disk: disk, path: LockFile.path(forManifest: manifestPath))
    }

    /// `derive.lock`, read and parsed only when an output is missing from the state.
    public var lock: LockFile? { lockText.file }

    public func plan() throws -> Plan {
        let recorded = try store.allOutputs()
        let (derivatives, errors) = try Expansion(manifest: manifest, disk: disk, digests: digests, identity: identity,
                                                  knownOutputs: Set(recorded.keys)).derivatives()
        var items = try parallelMap(derivatives) { derivative in
            try self.item(for: derivative, recorded: recorded[derivative.output])
        }
        let wanted = Set(derivatives.map(\.output))
        for (output, record) in recorded where !wanted.contains(output) {
            items.append(PlanItem(kind: .delete, output: output, reasons: ["no longer produced by the manifest"],
                                  derivative: nil, recorded: record, adopted: nil))
        }
        items.sort { $0.output < $1.output }
        return Plan(items: items, errors: errors)
    }

    func item(for derivative: Derivative, recorded: OutputRecord?) throws -> PlanItem {
        // One stat (through the digest cache) tells both whether the output exists and what it holds.
        let onDisk = try digests.content(of: derivative.outputPath)
        let exists = onDisk != nil
        guard let recorded else {
            // Not in the state: a fresh clone whose derive.lock vouches for the file is up to date.
            if exists, let entry = lock?.entries[derivative.output], entry.actionKey == derivative.actionKey,
               onDisk?.digest == entry.digest {
                return PlanItem(kind: .upToDate, output: derivative.output, reasons: [], derivative: derivative,
                                recorded: nil, adopted: entry)
            }
            return PlanItem(kind: .create, output: derivative.output,
                            reasons: exists ? ["not built by Derive before; the file there will be replaced"] : [],
                            derivative: derivative, recorded: nil, adopted: nil)
        }
        var reasons = Self.reasons(old: recorded, new: derivative)
        if !exists {
            reasons.insert("output missing", at: 0)
        } else if onDisk?.digest != recorded.outputDigest {
            reasons.insert("output modified on disk", at: 0)
        }
        return PlanItem(kind: reasons.isEmpty ? .upToDate : .rebuild, output: derivative.output, reasons: reasons,
                        derivative: derivative, recorded: recorded, adopted: nil)
    }

    /// Which components changed, in words.
    static func reasons(old: OutputRecord, new: Derivative) -> [String] {
        var reasons: [String] = []
        let components = new.components
        if old.engine != components.engine {
            reasons.append(engineChange(old: old.engine, new: components.engine))
        }
        if old.pipeline != components.pipeline {
            let label = new.style.map { "style '\($0)'" } ?? "process of \(new.rule)"
            reasons.append("\(label): \(pipelineChange(old: old.pipeline, new: components.pipeline))")
        }
        if old.sourceDigest != components.sourceDigest { reasons.append("source changed") }
        if old.dependencies != components.dependencies { reasons.append(dependencyChange(old: old.dependencies, new: components.dependencies)) }
        if old.encoder != components.encoder { reasons.append("encoder settings: \(old.encoder) → \(components.encoder)") }
        if old.acl != new.acl.rawValue { reasons.append("acl \(old.acl) → \(new.acl.rawValue)") }
        if old.actionKey != components.actionKey, reasons.isEmpty { reasons.append("action key changed") }
        return reasons
    }

    static func engineChange(old: String, new: String) -> String {
        func parts(_ text: String) -> [String: String] {
            Dictionary(text.split(separator: " ").compactMap { part -> (String, String)? in
                let pieces = part.split(separator: "/", maxSplits: 1)
                return pieces.count == 2 ? (String(pieces[0]), String(pieces[1])) : nil
            }, uniquingKeysWith: { a, _ in a })
        }
        let a = parts(old), b = parts(new)
        var changes: [String] = []
        if a["libvips"] != b["libvips"] { changes.append("libvips \(a["libvips"] ?? "?") → \(b["libvips"] ?? "?")") }
        if a["derive-render"] != b["derive-render"] {
            changes.append("Derive render version \(a["derive-render"] ?? "?") → \(b["derive-render"] ?? "?")")
        }
        return changes.isEmpty ? "engine \(old) → \(new)" : changes.joined(separator: ", ")
    }

    /// `resize,w_200 → resize,w_240`: only the actions and parameters that differ.
    static func pipelineChange(old: String, new: String) -> String {
        let a = old.split(separator: "/").dropFirst().map(String.init)
        let b = new.split(separator: "/").dropFirst().map(String.init)
        func name(_ action: String) -> Substring { action.split(separator: ",", maxSplits: 1).first ?? "" }
        guard a.count == b.count, zip(a, b).allSatisfy({ name($0) == name($1) }) else {
            return "\(old.dropFirst("image/".count)) → \(new.dropFirst("image/".count))"
        }
        var olds: [String] = [], news: [String] = []
        for (x, y) in zip(a, b) where x != y {
            let xi = x.split(separator: ",").dropFirst().map(String.init)
            let yi = y.split(separator: ",").dropFirst().map(String.init)
            let removed = xi.filter { !yi.contains($0) }, added = yi.filter { !xi.contains($0) }
            olds.append(([String(name(x))] + removed).joined(separator: ","))
            news.append(([String(name(y))] + added).joined(separator: ","))
        }
        return "\(olds.joined(separator: "/")) → \(news.joined(separator: "/"))"
    }

    /// For tests and tools: the text of a pipeline change.
    public static func pipelineChangeText(_ old: String, _ new: String) -> String { pipelineChange(old: old, new: new) }

    static func dependencyChange(old: String, new: String) -> String {
        let a = Set(old.split(separator: ",").map(String.init)), b = Set(new.split(separator: ",").map(String.init))
        let changed = b.subtracting(a).map { $0.split(separator: "=").first.map(String.init) ?? $0 }.sorted()
        if changed.isEmpty { return "dependencies removed: \(a.subtracting(b).sorted().joined(separator: ", "))" }
        return changed.map { item -> String in
            if item.hasPrefix("object:") { return "watermark object '\(item.dropFirst("object:".count))' changed" }
            if item.hasPrefix("font:") { return "font '\(item.dropFirst("font:".count))' changed" }
            return "\(item) changed"
        }.joined(separator: ", ")
    }
}
