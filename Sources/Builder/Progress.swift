import Foundation

/// A progress bar on a terminal, a line every few seconds otherwise.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let terminal: Bool
    private let quiet: Bool
    private var done = 0
    private var failed = 0
    private var lastLine: Date = .distantPast
    /// What a finished item was: `built`, or `verified` (`--verify`'s renders).
    private let verb: String

    /// `failedBefore`: derivatives the plan already failed (a bad source), counted among the
    /// total and the failed, so the line counts what the summary counts (attack 36a's L1).
    init(total: Int, quiet: Bool, verb: String = "built", failedBefore: Int = 0) {
        self.total = total + failedBefore
        self.verb = verb
        self.quiet = quiet || total == 0
        self.terminal = isatty(STDERR_FILENO) == 1
        done = failedBefore
        failed = failedBefore
    }

    func finished(_ output: String, ok: Bool) {
        lock.withLock {
            done += 1
            if !ok { failed += 1 }
            // Renders a stop cancelled are not failures: no more lines once the user stopped the build.
            guard !quiet, !BuildStop.isRequested else { return }
            if terminal {
                let width = 30
                let filled = total == 0 ? width : done * width / total
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                let name = output.count > 40 ? "…" + output.suffix(39) : output
                let text = "\r[\(bar)] \(done)/\(total)\(failed > 0 ? " (\(failed) failed)" : "") \(name)"
                FileHandle.standardError.write(Data((text.padding(toLength: 100, withPad: " ", startingAt: 0)).utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            } else if Date().timeIntervalSince(lastLine) >= 2 || done == total {
                lastLine = Date()
                // Outputs that failed were not built: "built 0/1, 1 failed", never "built 1/1, 1 failed".
                FileHandle.standardError.write(Data("\(verb) \(done - failed)/\(total)\(failed == 0 ? "" : verb == "built" ? ", \(failed) failed" : ", \(failed) not \(verb)")\n".utf8))
            }
        }
    }
}
