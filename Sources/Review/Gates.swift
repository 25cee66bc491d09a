import Foundation
import ProcessLanguage

/// `--fail-on 'ssim<0.98,bytes>+10%'`: conditions that fail a review (exit 1 in CI).
public struct Gates: Sendable, Equatable {
    public enum Condition: Sendable, Equatable, CustomStringConvertible {
        /// An output's SSIM (old against new) below this.
        case ssimBelow(Double)
        /// An output that grows by more than this percentage.
        case bytesGrowth(Double)
        /// An output larger than this many bytes.
        case bytesAbove(Int64)
        /// The changed outputs together growing by more than this percentage.
        case totalGrowth(Double)

        public var description: String {
            switch self {
            case .ssimBelow(let x): return "ssim<\(x)"
            case .bytesGrowth(let x): return "bytes>+\(Self.number(x))%"
            case .bytesAbove(let x): return "bytes>\(x)"
            case .totalGrowth(let x): return "total>+\(Self.number(x))%"
            }
        }

        static func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }

        /// Whether renders are needed to decide it (all of them: bytes after and SSIM come from renders).
        public var needsRenders: Bool { true }
    }

    public var conditions: [Condition]

    public struct ParseError: Error, CustomStringConvertible { public var description: String }

    /// Comma-separated: `ssim<0.98`, `bytes>+10%`, `bytes>200000` (or `200k`, `2m`), `total>+5%`.
    public init(_ text: String) throws {
        var conditions: [Condition] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            func bad() -> ParseError {
                ParseError(description: "--fail-on: cannot read '\(part)'; write ssim<0.98, bytes>+10%, bytes>200k or total>+5%, separated by commas")
            }
            if part.hasPrefix("ssim<") {
                guard let value = Double(part.dropFirst(5)), value > 0, value <= 1 else { throw bad() }
                conditions.append(.ssimBelow(value))
            } else if part.hasPrefix("bytes>+"), part.hasSuffix("%") {
                guard let value = Double(part.dropFirst(7).dropLast()), value >= 0, value.isFinite else { throw bad() }
                conditions.append(.bytesGrowth(value))
            } else if part.hasPrefix("total>+"), part.hasSuffix("%") {
                guard let value = Double(part.dropFirst(7).dropLast()), value >= 0, value.isFinite else { throw bad() }
                conditions.append(.totalGrowth(value))
            } else if part.hasPrefix("bytes>") {
                var digits = String(part.dropFirst(6)).lowercased()
                var scale: Int64 = 1
                if digits.hasSuffix("k") { scale = 1000; digits.removeLast() } else if digits.hasSuffix("m") { scale = 1_000_000; digits.removeLast() }
                guard let value = Int64(digits), value >= 0, value < Int64.max / scale else { throw bad() }
                conditions.append(.bytesAbove(value * scale))
            } else {
                throw bad()
            }
        }
        guard !conditions.isEmpty else { throw ParseError(description: "--fail-on: no condition given") }
        self.conditions = conditions
    }

    /// What gates found: how many outputs failed, the totals' failures, and, for the summary,
    /// how many outputs failed each way (an output is counted under every way it failed).
    public struct Outcome: Sendable, Equatable {
        /// Outputs with a failure of any kind.
        public var outputs = 0
        /// Failures of the total (`total>+5%`).
        public var total: [String] = []
        /// Rules whose outputs together are over `max_total_bytes`.
        public var budgetTotal: [String] = []
        /// Outputs the new revision cannot build.
        public var failingToBuild = 0
        /// Outputs over their rule's budget (changed ones, or unchanged under a changed budget).
        public var overBudget = 0
        /// Outputs that crossed a `--fail-on` condition.
        public var crossed = 0

        public init() {}

        public static func + (a: Outcome, b: Outcome) -> Outcome {
            var sum = a
            sum.outputs += b.outputs; sum.total += b.total; sum.budgetTotal += b.budgetTotal
            sum.failingToBuild += b.failingToBuild; sum.overBudget += b.overBudget; sum.crossed += b.crossed
            return sum
        }
    }

    /// Marks every output that crosses a condition; the total's failures apart.
    public func apply(to review: inout Review) -> Outcome {
        var outcome = Outcome()
        for g in review.groups.indices {
            for e in review.groups[g].entries.indices {
                var entry = review.groups[g].entries[e]
                entry.gateFailures = []
                Self.markBuildFailure(&entry, &outcome)
                // The conditions judge what the change does to an output; a `budget` one is unchanged.
                if entry.kind == .budget {
                    if !entry.gateFailures.isEmpty { outcome.outputs += 1 }
                    review.groups[g].entries[e] = entry
                    continue
                }
                let before = entry.gateFailures.count
                for condition in conditions {
                    switch condition {
                    case .ssimBelow(let limit):
                        if let ssim = entry.ssim, ssim < limit { entry.gateFailures.append(String(format: "ssim %.4f < %@", ssim, Condition.number(limit))) }
                    case .bytesGrowth(let limit):
                        if entry.kind == .rebuilt, let before = entry.bytesBefore, let after = entry.bytesAfter, before > 0 {
                            let growth = (Double(after) - Double(before)) / Double(before) * 100
                            if growth > limit { entry.gateFailures.append(String(format: "bytes +%.1f%% > +%@%%", growth, Condition.number(limit))) }
                        }
                    case .bytesAbove(let limit):
                        if let after = entry.bytesAfter, after > limit { entry.gateFailures.append("bytes \(after) > \(limit)") }
                    case .totalGrowth: break
                    }
                }
                if entry.gateFailures.count > before { outcome.crossed += 1 }
                if !entry.gateFailures.isEmpty { outcome.outputs += 1 }
                review.groups[g].entries[e] = entry
            }
        }
        var total: [String] = []
        for case .totalGrowth(let limit) in conditions {
            let t = review.totals
            var estimated = t.estimated ? " (estimated from a sample)" : ""
            var before = t.bytesBefore ?? 0, after = t.bytesAfter
            if t.estimated, t.estimateTrusted == false, let subset = t.renderedBytesBefore {
                // No estimate to trust: judge the rendered outputs' own ratio, and say so.
                estimated = " (the rendered sample's own ratio: an output of unknown size was not rendered, so no estimated total can be trusted)"
                before = subset; after = t.renderedBytesAfter
            }
            if let after, before > 0 {
                let growth = (Double(after) - Double(before)) / Double(before) * 100
                if growth > limit { total.append(String(format: "total bytes +%.1f%% > +%@%%%@", growth, Condition.number(limit), estimated)) }
            } else if let after, after > 0 {
                // From nothing to something is growth beyond any percentage.
                total.append("total bytes 0 → \(after) (all new) > +\(Condition.number(limit))%\(estimated)")
            }
        }
        outcome.total = total
        return outcome
    }

    /// An output the change breaks fails whatever the conditions, as the build fails it: one
    /// it cannot make, or one left as it is over its rule's changed budget.
    static func markBuildFailure(_ entry: inout Review.Entry, _ outcome: inout Outcome) {
        guard let failure = entry.failure else { return }
        if entry.kind == .budget {
            entry.gateFailures.append(failure)
            outcome.overBudget += 1
        } else {
            entry.gateFailures.append("fails to build: \(failure)")
            outcome.failingToBuild += 1
        }
    }

    /// Marks only the outputs the build would fail (for `--junit` without `--fail-on`).
    public static func buildFailures(in review: inout Review) -> Outcome {
        var outcome = Outcome()
        for g in review.groups.indices {
            for e in review.groups[g].entries.indices {
                review.groups[g].entries[e].gateFailures = []
                markBuildFailure(&review.groups[g].entries[e], &outcome)
                if !review.groups[g].entries[e].gateFailures.isEmpty { outcome.outputs += 1 }
            }
        }
        return outcome
    }

    /// The stderr line: each kind of failure named with how many outputs failed it.
    public func summary(_ outcome: Outcome) -> String {
        func outputs(_ n: Int) -> String { "\(n) output\(n == 1 ? "" : "s")" }
        var parts: [String] = []
        if outcome.failingToBuild > 0 { parts.append("\(outputs(outcome.failingToBuild)) fail\(outcome.failingToBuild == 1 ? "s" : "") to build") }
        if outcome.overBudget > 0 { parts.append("\(outputs(outcome.overBudget)) over \(outcome.overBudget == 1 ? "its" : "their") rule's budget") }
        if outcome.crossed > 0 {
            let named = conditions.filter { if case .totalGrowth = $0 { return false } else { return true } }.map(\.description).joined(separator: ",")
            parts.append("\(outputs(outcome.crossed)) crossed --fail-on '\(named)'")
        }
        if !outcome.total.isEmpty {
            let named = conditions.filter { if case .totalGrowth = $0 { return true } else { return false } }.map(\.description).joined(separator: ",")
            parts.append("the total crossed --fail-on '\(named)'")
        }
        let rules = outcome.budgetTotal.count
        if rules > 0 { parts.append("\(rules) rule\(rules == 1 ? "" : "s") over max_total_bytes") }
        return parts.joined(separator: ", ")
    }
}

/// JUnit XML for CI systems: one test case per changed output, failed when it crossed a gate.
public enum JUnitReport {
    public static func xml(_ review: Review, totalFailures: [String]) -> String {
        let entries = review.groups.flatMap { group in group.entries.map { (group, $0) } }
        let failures = entries.filter { !$0.1.gateFailures.isEmpty }.count + (totalFailures.isEmpty ? 0 : 1)
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"derive diff\" tests=\"\(entries.count + 1)\" failures=\"\(failures)\">\n"
        xml += "  <testsuite name=\"\(escape("derive diff \(review.manifest): \(review.before) → \(review.after)"))\" tests=\"\(entries.count + 1)\" failures=\"\(failures)\">\n"
        for (group, entry) in entries {
            var detail = "\(entry.kind.rawValue)"
            if let failure = entry.failure { detail += entry.kind == .budget ? ", \(failure)" : ", fails to build: \(failure)" }
            if let ssim = entry.ssim { detail += String(format: ", SSIM %.4f", ssim) }
            detail += ", " + ReviewText.bytes(entry, rendered: review.rendered)
            xml += "    <testcase classname=\"\(escape(group.title))\" name=\"\(escape(entry.output))\">\n"
            if !entry.gateFailures.isEmpty {
                xml += "      <failure message=\"\(escape(entry.gateFailures.joined(separator: "; ")))\">\(escape(detail))</failure>\n"
            }
            xml += "      <system-out>\(escape(detail))</system-out>\n    </testcase>\n"
        }
        xml += "    <testcase classname=\"totals\" name=\"total bytes\">\n"
        if !totalFailures.isEmpty { xml += "      <failure message=\"\(escape(totalFailures.joined(separator: "; ")))\"/>\n" }
        xml += "    </testcase>\n  </testsuite>\n</testsuites>\n"
        return xml
    }

    public static func escape(_ text: String) -> String { XMLText.escaped(text) }
}
