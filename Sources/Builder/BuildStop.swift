import Foundation
import ImagingCore
import ProcessLanguage
import Synchronization

/// A stop the user asked for (Ctrl-C or SIGTERM during `derive build --watch`), process-wide:
/// renders cancelled by it are not failures, so the build's progress line stops counting them
/// as failed and the command says one line instead of one per source (attack 39b's L6).
public enum BuildStop {
    private static let requested = Atomic<Bool>(false)

    /// Set once, from the signal handler's queue; never cleared (the process is ending).
    public static func request() { requested.store(true, ordering: .sequentiallyConsistent) }

    public static var isRequested: Bool { requested.load(ordering: .sequentiallyConsistent) }

    /// Whether a render failed only because the stop cancelled it.
    public static func cancelledByStop(_ message: String) -> Bool {
        isRequested && message.hasSuffix(ProcessError.renderCancelled.message)
    }

    /// The one line a stopped build says: `stopped: 27 derivatives not built; the next build makes them`.
    public static func line(notBuilt: Int) -> String {
        "stopped: \(notBuilt) derivative\(notBuilt == 1 ? "" : "s") not built; the next build makes them"
    }
}
