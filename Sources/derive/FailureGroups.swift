import Confinement
import Foundation
import Planner

/// Build failures grouped by source (by its bytes: `café.jpg` in NFC and in NFD are two): one corrupt photo with twelve recipes is one line
/// ("photos/IMG_1.jpg: …, 12 derivatives not built"), not twelve; `--verbose` adds each output.
/// Without it a line names up to `namedOutputs` outputs, and says how to see the rest.
enum FailureGroups {
    struct Group {
        /// The source (`bucket/key`), or the failed subject itself when no source is known.
        var subject: String
        var failures: [(output: String, message: String)]

        /// The message most failures of the group share (the first of the most frequent).
        var message: String {
            var counts: [String: Int] = [:]
            for failure in failures { counts[failure.message, default: 0] += 1 }
            let best = counts.values.max() ?? 0
            return failures.first { counts[$0.message] == best }?.message ?? ""
        }
    }

    /// Groups in the order their first failure came.
    static func group(_ failed: [(output: String, message: String)], sourceOf: (String) -> String?) -> [Group] {
        var groups: [Group] = []
        var index: PathDictionary<Int> = [:]
        for failure in failed {
            let subject = sourceOf(failure.output) ?? failure.output
            if let at = index[subject] {
                groups[at].failures.append(failure)
            } else {
                index[subject] = groups.count
                groups.append(Group(subject: subject, failures: [failure]))
            }
        }
        return groups
    }

    /// One line per group; with `verbose`, each output and its own message below it. A group
    /// whose outputs failed for different reasons (two texts no font draws) says how many were not
    /// built, then each reason below it with the outputs it failed (attack 51c's 4: one reason
    /// stood for all and the others were never shown).
    /// `outputsOf`: a failed source's outputs (`PlanFailure.outputs`), named on its line (attack
    /// 53c's F4: a source failing before rendering named none of them).
    static func lines(_ groups: [Group], verbose: Bool, outputsOf: (String) -> [String] = { _ in [] }) -> [String] {
        var lines: [String] = []
        for group in groups {
            let count = group.failures.count
            let isOwnSubject = count == 1 && PathKey.same(group.failures[0].output, group.subject)
            let notBuilt = "\(count) derivative\(count == 1 ? "" : "s") not built"
            let reasons = distinctReasons(group.failures)
            if reasons.count > 1 {
                lines.append("\(group.subject): \(notBuilt), for \(reasons.count) reasons:")
                if verbose {
                    for failure in group.failures { lines.append("  \(failure.output): \(failure.message)") }
                } else {
                    for reason in reasons {
                        lines.append("  \(named(reason.outputs)): \(reason.message)")
                    }
                }
                continue
            }
            var line = "\(group.subject): \(group.message)"
            // A source's own failure already says how many derivatives it cost (the planner's words).
            // The outputs too (attack 52c's 3: the source and a count named none), unless listed below.
            let own = isOwnSubject ? outputsOf(group.subject) : []
            if !isOwnSubject, !group.message.hasSuffix(" not built") {
                line += ", " + notBuilt + (verbose ? "" : ": " + named(group.failures.map(\.output)))
            } else if !own.isEmpty, !verbose {
                line += ": " + named(own)
            }
            lines.append(line)
            if verbose, !isOwnSubject {
                for failure in group.failures { lines.append("  \(failure.output): \(failure.message)") }
            }
            if verbose { for output in own { lines.append("  \(output): \(reason(group.message))") } }
        }
        return lines
    }

    /// How many outputs a line names without `--verbose`.
    static let namedOutputs = 3

    /// `outputs`, at most `namedOutputs` of them then how many more and how to see them; never
    /// "and 1 more" (attack 52c's 3: that one output is named instead, in the same room).
    static func named(_ outputs: [String], seeEach: String = "derive build --verbose") -> String {
        if outputs.count <= namedOutputs + 1 { return outputs.joined(separator: ", ") }
        return outputs.prefix(namedOutputs).joined(separator: ", ") + " and \(outputs.count - namedOutputs) more (\(seeEach) names each)"
    }

    /// A failed source's message without the count the planner ends it with: what each of its
    /// outputs failed for.
    static func reason(_ message: String) -> String {
        message.replacingOccurrences(of: #", [0-9]+ derivatives? not built$"#, with: "", options: .regularExpression)
    }

    /// Each failed source's outputs by its subject, for `lines`' `outputsOf`.
    static func outputs(of failures: [PlanFailure]) -> PathDictionary<[String]> {
        var outputs: PathDictionary<[String]> = [:]
        for failure in failures where !failure.outputs.isEmpty { outputs[failure.subject] = failure.outputs.map(\.output) }
        return outputs
    }

    /// Each different message of `failures` with the outputs it failed, in order of first failure.
    static func distinctReasons(_ failures: [(output: String, message: String)]) -> [(message: String, outputs: [String])] {
        var reasons: [(message: String, outputs: [String])] = []
        var index: [String: Int] = [:]
        for failure in failures {
            if let at = index[failure.message] {
                reasons[at].outputs.append(failure.output)
            } else {
                index[failure.message] = reasons.count
                reasons.append((failure.message, [failure.output]))
            }
        }
        return reasons
    }
}
