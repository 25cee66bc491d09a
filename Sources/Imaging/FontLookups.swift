import Synchronization

/// Answers fontconfig gave this process, kept by name: a lookup parses and sorts every
/// installed font's pattern (milliseconds, more with thousands of fonts), and a worker draws
/// many texts in the same few fonts. At most `capacity` names are kept; past that, a new
/// name is asked each time and not kept, so a server asked for ever new names stays bounded.
/// A worker loads fontconfig's configuration once, at start, and is retired when it changes
/// (`RenderWorkerPool.retire`), so a kept answer is never older than what it would draw.
final class FontLookups<Value: Sendable>: Sendable {
    let capacity: Int
    private let answers = Mutex<[String: Value]>([:])

    init(capacity: Int) { self.capacity = capacity }

    func value(_ name: String, lookUp: (String) -> Value) -> Value {
        if let known = answers.withLock({ $0[name] }) { return known }
        let answer = lookUp(name)
        answers.withLock { if $0.count < capacity, $0[name] == nil { $0[name] = answer } }
        return answer
    }

    var count: Int { answers.withLock { $0.count } }
}
