import Foundation

/// What a manifest change does, as `derive diff` reports it (text, JSON, HTML, JUnit all read this).
public struct Review: Sendable, Codable, Equatable {
    /// `HEAD`, or `REV1`.
    public var before: String
    /// `working tree`, or `REV2`.
    public var after: String
    public var manifest: String
    /// Buckets added, removed or changed (path, ACL, object ACLs, website, url).
    public var buckets: [RuleChange] = []
    public var styles: [StyleChange]
    public var rules: [RuleChange]
    /// Changed outputs grouped by rule and style, in a stable order (worst first once compared).
    public var groups: [Group]
    public var totals: Totals
    /// Whether renders were made (bytes after and SSIM are known).
    public var rendered: Bool

    public struct StyleChange: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable { case added, removed, changed }
        public var kind: Kind
        public var name: String
        public var before: String?
        public var after: String?
    }

    public struct RuleChange: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable { case added, removed, changed }
        public var kind: Kind
        public var name: String
        /// What changed, one line each (`to: a/{name}.jpg → b/{name}.jpg`, `style 'thumb': …`).
        public var changes: [String]
    }

    public struct Group: Sendable, Codable, Equatable {
        public var rule: String
        /// The style, or the matrix values, or nil for a rule's own `process`.
        public var style: String?
        public var entries: [Entry]

        /// `rule 'gallery', style 'thumb'`; outputs of no known rule (a source that cannot be read).
        public var title: String { rule.isEmpty ? "failures of no known rule" : "rule '\(rule)'" + (style.map { ", \($0)" } ?? "") }
    }

    public struct Entry: Sendable, Codable, Equatable {
        /// `failed`: the new revision cannot make it (the build fails it and keeps the old file).
        /// `budget`: an output the change leaves as it is, over its rule's changed budget (a
        /// lowered `max_bytes`, a raised `min_ssim`): the build fails it too.
        public enum Kind: String, Sendable, Codable { case created, rebuilt, deleted, failed, budget }
        public var kind: Kind
        /// `bucket/key` of the output (the new name when both sides have one).
        public var output: String
        /// The old name, when it differs (`{hash}` names change with the bytes).
        public var outputBefore: String?
        public var source: String
        /// Canonical pipelines (nil on the side that has none).
        public var before: String?
        public var after: String?
        public var bytesBefore: Int64?
        public var bytesAfter: Int64?
        public var sizeBefore: Size?
        public var sizeAfter: Size?
        /// SSIM of the old and the new render (1 = identical); nil when not compared.
        public var ssim: Double?
        /// Report-relative paths of the renders and the heat map.
        public var oldImage: String?
        public var newImage: String?
        public var heatMap: String?
        /// SSIM of the new render against its lossless reference, when its rule has `budget.min_ssim`.
        public var referenceSSIM: Double?
        /// Why a render or a comparison is missing (a failed render, a source that cannot be read).
        public var note: String?
        /// Why the new revision cannot make it: the planner's reason, or the new render's error;
        /// for a `budget` entry, which budget it breaches (`budget lowered: 14975 B > max_bytes 5000`).
        public var failure: String?
        /// Gates this output crossed (`ssim 0.91 < 0.98`).
        public var gateFailures: [String] = []
    }

    public struct Size: Sendable, Codable, Equatable, CustomStringConvertible {
        public var width: Int
        public var height: Int
        public var description: String { "\(width)x\(height)" }
    }

    public struct Totals: Sendable, Codable, Equatable {
        public var created = 0
        public var rebuilt = 0
        public var deleted = 0
        /// Outputs the new revision cannot make (not counted in the bytes).
        public var failed = 0
        /// Unchanged outputs over their rule's changed budget (not counted in the bytes: they do not change).
        public var budget = 0
        /// Nil when unknown: an output the change rebuilds or deletes whose old size nothing
        /// tells (no record, no file, no render).
        public var bytesBefore: Int64? = 0
        /// Nil when nothing was rendered.
        public var bytesAfter: Int64?
        /// How many outputs were rendered when `--sample` left some out (the byte totals then
        /// count the others by estimate, see `estimated`). Nil: all (or none).
        public var sampledOutputs: Int?
        /// With `--sample`: the byte totals are estimates, each unrendered output counted at its
        /// own before size times its group's sampled after/before ratio (created ones: the mean).
        public var estimated: Bool = false
        /// False when some unrendered output's size could not be estimated (unknown before size,
        /// nothing rendered in its group): a gate then judges the rendered outputs' own ratio.
        public var estimateTrusted: Bool?
        /// With an estimate: the bytes of the rendered outputs alone.
        public var renderedBytesBefore: Int64?
        public var renderedBytesAfter: Int64?
    }

    public var isEmpty: Bool { buckets.isEmpty && styles.isEmpty && rules.isEmpty && groups.isEmpty }
    public var entries: [Entry] { groups.flatMap(\.entries) }
}
