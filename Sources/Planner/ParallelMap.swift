import Foundation

/// Maps in order on all cores (GCD threads, not Swift's cooperative pool): planning stats and
/// fingerprints tens of thousands of files, and each one is independent.
func parallelMap<T: Sendable, U: Sendable>(_ items: [T], _ transform: @Sendable (T) throws -> U) throws -> [U] {
    let workers = min(ProcessInfo.processInfo.activeProcessorCount, max(1, items.count / 256))
    guard workers > 1 else { return try items.map(transform) }
    let results = ResultSlots<U>(count: items.count)
    let chunk = (items.count + workers - 1) / workers
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        let range = (worker * chunk)..<min(items.count, (worker + 1) * chunk)
        do {
            results.fill(range, with: try items[range].map(transform))
        } catch {
            results.fail(error)
        }
    }
    return try results.values()
}

private final class ResultSlots<U: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [U?]
    private var error: Error?

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func fill(_ range: Range<Int>, with values: [U]) {
        lock.withLock { slots.replaceSubrange(range, with: values.map { Optional($0) }) }
    }

    func fail(_ error: Error) { lock.withLock { if self.error == nil { self.error = error } } }

    func values() throws -> [U] {
        if let error { throw error }
        return slots.map { $0! }
    }
}
