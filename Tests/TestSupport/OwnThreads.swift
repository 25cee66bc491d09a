import Foundation
import Testing

/// Runs a suite's tests on threads of their own instead of Swift's cooperative pool.
///
/// The cooperative pool is exactly as wide as the machine has cores, and many tests here wait
/// without awaiting: a file-system tick (`settle()`), a child `derive`, a server's deadline. A
/// waiting test holds its pool thread, so on CI's 2 cores two waiting tests stalled every other
/// test (in one 1 220 s run, 946 tests finished in a single burst at 450 s; the CPU was busy less
/// than half the time). On this pool a waiting test holds only its own thread.
public struct OwnThreads: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(TestThreadPool.shared) { try await function() }
    }
}

extension Trait where Self == OwnThreads {
    /// Put on every `@Suite`: its tests (and the tasks they start) run on `TestThreadPool`.
    public static var ownThreads: Self { OwnThreads() }
}

/// A fixed set of threads taking jobs in order. Wider than the cores (3 per core, at least 6;
/// `DERIVE_TEST_THREADS` sets it) so that waiting tests leave the CPU to the others, yet narrow
/// enough that tests measuring a deadline are not starved.
public final class TestThreadPool: TaskExecutor, @unchecked Sendable {
    public static let shared = TestThreadPool(threads: {
        if let value = ProcessInfo.processInfo.environment["DERIVE_TEST_THREADS"].flatMap(Int.init), value > 0 { return value }
        return max(6, 3 * ProcessInfo.processInfo.activeProcessorCount)
    }())

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var next = 0   // index of the next job in `jobs` (removing from the front is O(n))

    init(threads: Int) {
        for index in 0..<threads {
            let thread = Thread { [self] in run() }
            thread.name = "test-\(index)"
            thread.stackSize = 16 << 20   // as deep as a main thread: debug builds recurse deeply
            thread.start()
        }
    }

    public func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while next == jobs.count { condition.wait() }
            let job = jobs[next]
            next += 1
            if next == jobs.count { jobs.removeAll(keepingCapacity: true); next = 0 }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
