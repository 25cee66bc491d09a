import Foundation

/// A progress bar on a terminal, a line every few seconds otherwise.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let terminal: Bool
    private let quiet: Bool
    private var done = 0
    private var failed = 0
    /// In a watch: outputs of sources saved while the build ran, which it builds again at once
    /// (not failures: attack 42b's L-a). Counted among the failed otherwise, as the summary does.
    private var again = 0
    /// Outputs of sources removed while a one-shot build ran: not built, not failed (attack 53c's F5).
    private var removed = 0
    private let watching: Bool
    private var lastLine: Date = .distantPast
    /// What a finished item was: `built`, or `verified` (`--verify`'s renders).
    private let verb: String

    /// `failedBefore`: derivatives the plan already failed (a bad source), counted among the
    /// total and the failed, so the line counts what the summary counts (attack 36a's L1).
    init(total: Int, quiet: Bool, verb: String = "built", failedBefore: Int = 0, watching: Bool = false) {
        self.total = total + failedBefore
        self.verb = verb
        self.watching = watching
        self.quiet = quiet || total == 0
        self.terminal = isatty(STDERR_FILENO) == 1
        done = failedBefore
        failed = failedBefore
    }

    /// How an item ended: built (or verified), or not, and then whether because its source
    /// changed while the build ran (`SourceChanged`).
    enum Outcome: Sendable {
        case built
        case notBuilt(sourceChanged: Bool, sourceRemoved: Bool = false)

        static func failed(_ error: any Error) -> Outcome {
            .notBuilt(sourceChanged: error is SourceChanged, sourceRemoved: (error as? SourceChanged)?.removed == true)
        }
    }

    /// What was counted so far: built (or verified), failed, and (in a watch) to build again.
    var counts: (built: Int, failed: Int, again: Int) { lock.withLock { (done - failed - again - removed, failed, again) } }

    func finished(_ output: String, _ outcome: Outcome) {
        lock.withLock {
            done += 1
            if case .notBuilt(let changed, let gone) = outcome {
                if changed && watching { again += 1 } else if gone { removed += 1 } else { failed += 1 }
            }
            // Renders a stop cancelled are not failures: no more lines once the user stopped the build.
            guard !quiet, !BuildStop.isRequested else { return }
            if terminal {
                let width = 30
                let filled = total == 0 ? width : done * width / total
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                let name = output.count > 40 ? "…" + output.suffix(39) : output
                let counts = (failed > 0 ? ["\(failed) failed"] : []) + (again > 0 ? ["\(again) \(Self.againWords)"] : [])
                    + (removed > 0 ? ["\(removed) \(SourceChanged.removedWords)"] : [])
                let text = "\r[\(bar)] \(done)/\(total)\(counts.isEmpty ? "" : " (" + counts.joined(separator: ", ") + ")") \(name)"
                FileHandle.standardError.write(Data((text.padding(toLength: 100, withPad: " ", startingAt: 0)).utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            } else if Date().timeIntervalSince(lastLine) >= 2 || done == total {
                lastLine = Date()
                // Outputs that failed were not built: "built 0/1, 1 failed", never "built 1/1, 1 failed".
                FileHandle.standardError.write(Data(Self.line(verb: verb, done: done, total: total, failed: failed, again: again, removed: removed).utf8))
            }
        }
    }

    /// What the count of outputs whose source changed while a watch built them says.
    static let againWords = "to build again (source changed)"

    /// A progress line without a terminal: `built 47/191` with the failures, and in a watch the
    /// outputs it builds again, never among the failed.
    static func line(verb: String, done: Int, total: Int, failed: Int, again: Int, removed: Int = 0) -> String {
        let failures = failed == 0 ? "" : verb == "built" ? ", \(failed) failed" : ", \(failed) not \(verb)"
        return "\(verb) \(done - failed - again - removed)/\(total)\(failures)\(again == 0 ? "" : ", \(again) \(againWords)")"
            + "\(removed == 0 ? "" : ", \(removed) \(SourceChanged.removedWords)")\n"
    }
}
