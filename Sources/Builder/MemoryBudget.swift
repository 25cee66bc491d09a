import Foundation

/// Admits jobs while their estimated memory fits, so several big images do not decode at
/// once. A job larger than the whole budget still runs, alone.
final class MemoryBudget: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    private var used = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func acquire(_ amount: Int) -> Int {
        let cost = min(amount, capacity)
        condition.lock()
        while used + cost > capacity { condition.wait() }
        used += cost
        condition.unlock()
        return cost
    }

    func release(_ cost: Int) {
        condition.lock()
        used -= cost
        condition.broadcast()
        condition.unlock()
    }

    /// Half the machine's memory, at most 8 GiB.
    static var defaultCapacity: Int {
        min(Int(ProcessInfo.processInfo.physicalMemory / 2), 8 << 30)
    }
}
