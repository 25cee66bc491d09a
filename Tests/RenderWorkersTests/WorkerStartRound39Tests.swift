import Foundation
@testable import RenderWorkers
import Testing
import TestSupport

/// Attack 39b's M1, at the process: a worker that ends before its hello is reported as soon as
/// it ends (its socket closes), and one that never answers as not answering, not as killed.
@Suite(.ownThreads) struct WorkerStartRound39Tests {
    @Test func aWorkerThatExitsAtOnceIsReportedAtOnce() throws {
        let started = Date()
        let error = try #require(throws: WorkerError.self) {
            _ = try WorkerProcess.launch("/bin/false", expectedEngineVersion: nil)
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(error.description.contains("did not start (exited with status 1)"), "\(error)")
    }

    @Test func aWorkerThatNeverAnswersIsReportedAsNotAnswering() throws {
        let started = Date()
        let error = try #require(throws: WorkerError.self) {
            _ = try WorkerProcess.launch("/bin/sleep", expectedEngineVersion: nil, arguments: ["60"], timeout: 1)
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(error.description.contains("did not answer within 1 s"), "\(error)")
        #expect(!error.description.contains("SIGKILL"), "\(error)")
    }

    @Test func aPoolOfDeadWorkersFailsItsRenderAtOnce() throws {
        let pool = try RenderWorkerPool(size: 2, executable: "/bin/false")
        defer { pool.shutdown() }
        let started = Date()
        let error = try #require(throws: (any Error).self) { try pool.start() }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect("\(error)".contains("exited with status 1"), "\(error)")
    }
}
