import Foundation

/// Answers read from the disk during one manifest load, each read once (issue 15, attack 51c's 7):
/// the neighbour search of one no-op near 64 sibling projects opened each sibling's manifest 13
/// times, read `/proc/self/mountinfo` 129 times and walked the same real paths thousands of times,
/// because every check (siblings, foreign states, neighbours, gone neighbours) and every
/// neighbour it loads asks again. Inside `during`, a read answered once is answered the same for
/// the rest of the load: the load is one snapshot of its neighbourhood, as it already was of a
/// file read once. Nothing is kept past the outermost `during`, so the next load (a build after
/// the no-op check, serve's next reload, watch mode's next round) reads everything anew, and no
/// answer is ever older than the load that asks it.
///
/// Only the thread (task) that opened the snapshot and the loads it makes itself use it
/// (`TaskLocal`): another thread of a running serve reads the disk as before.
public final class ReadSnapshot: @unchecked Sendable {
    @TaskLocal private static var current: ReadSnapshot?

    private let lock = NSLock()
    private var answers: [String: Any] = [:]

    private init() {}

    /// Whether a snapshot is open on this thread (tests).
    public static var isOpen: Bool { current != nil }

    /// Runs `body` inside a snapshot (the one already open, or a new one for its duration).
    public static func during<T>(_ body: () throws -> T) rethrows -> T {
        if current != nil { return try body() }
        return try $current.withValue(ReadSnapshot()) { try body() }
    }

    /// The answer of `read` for `kind` and `key`: read now outside a snapshot, once per snapshot
    /// inside one.
    public static func answer<Value>(_ kind: String, _ key: String, _ read: () -> Value) -> Value {
        guard let snapshot = current else { return read() }
        let name = kind + "\u{0}" + key
        // The entry first, then its value: a kept nil (an optional answer) is an answer too.
        if let entry = snapshot.lock.withLock({ snapshot.answers[name] }), let known = entry as? Value { return known }
        let value = read()
        snapshot.lock.withLock { snapshot.answers[name] = value }
        return value
    }
}
