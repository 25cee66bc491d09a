import Foundation
import Synchronization

/// The writes a no-op's witness refresh could not make in this process (the witness, its inputs'
/// record, the stat cache's rows): a full disk or an unwritable state folder. The refresh is an
/// optimisation, so a failure changes no answer, but it was dropped unsaid (`try?`: attack 36b's
/// Low 8), leaving every later no-op to check the files it vouches for by their bytes again. Noted
/// here and said once by the command (`BuildSession.refreshWitness`).
public enum WitnessWriteFailures {
    private static let noted = Mutex<[(path: String, error: String)]>([])

    static func note(_ error: any Error, writing path: String) {
        let failure = error as? StateWriteFailure ?? StateWriteFailure(error, database: path)
        let text = failure.map { "\($0.why) (\($0.cause))" } ?? "\(error)"
        noted.withLock { $0.append((path, text)) }
    }

    /// The failures noted since the last call, first first; emptied.
    public static func take() -> [(path: String, error: String)] {
        noted.withLock { failures in
            defer { failures = [] }
            return failures
        }
    }
}
