import Confinement

/// Build failures grouped by source (by its bytes: `café.jpg` in NFC and in NFD are two): one corrupt photo with twelve recipes is one line
/// ("photos/IMG_1.jpg: …, 12 derivatives not built"), not twelve; `--verbose` adds each output.
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

    /// One line per group; with `verbose`, each output and its own message below it.
    static func lines(_ groups: [Group], verbose: Bool) -> [String] {
        var lines: [String] = []
        for group in groups {
            let count = group.failures.count
            let isOwnSubject = count == 1 && PathKey.same(group.failures[0].output, group.subject)
            var line = "\(group.subject): \(group.message)"
            // A source's own failure already says how many derivatives it cost (the planner's words).
            if !isOwnSubject, !group.message.hasSuffix(" not built") { line += ", \(count) derivative\(count == 1 ? "" : "s") not built" }
            lines.append(line)
            if verbose, !isOwnSubject {
                for failure in group.failures { lines.append("  \(failure.output): \(failure.message)") }
            }
        }
        return lines
    }
}
