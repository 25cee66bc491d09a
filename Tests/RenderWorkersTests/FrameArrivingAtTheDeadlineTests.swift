import Foundation
@testable import RenderWorkers
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A worker asked only to describe the engine sends its hello and exits at once. Under load the
/// parent's poll could time out, the worker write and exit, and only then the parent ask whether
/// to give up: it saw the worker ended and reported "did not start (exited with status 0)" with
/// the hello unread in its socket (the full suite at load 27 failed KilledStateWriteRound39 so).
/// What the peer sent before the question is read first.
@Suite(.ownThreads) struct FrameArrivingAtTheDeadlineTests {
    /// A socket pair; `interrupt` writes one whole frame from the far end and closes it, as a
    /// worker that answered and ended between the poll and the question.
    @Test func aFrameSentWhileTheDeadlineIsAskedIsReadNotDropped() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        let near = FrameChannel(fd: pair[0]), far = FrameChannel(fd: pair[1])
        let payload = Data("hello".utf8)
        var asked = 0
        let received = try near.receive(slice: 0.01, interrupt: {
            asked += 1
            if asked == 1 {
                try? far.send(payload)
                close(pair[1])
            }
            return true
        })
        #expect(received == payload)
        #expect(asked == 1)
    }

    /// Nothing sent: the question still ends the wait.
    @Test func anEmptySocketStillEndsAtTheDeadline() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let near = FrameChannel(fd: pair[0])
        #expect(throws: FrameChannel.Failure.self) { _ = try near.receive(slice: 0.01, interrupt: { true }) }
    }

    /// The launch asks whether the worker ended without reaping it: a hello read afterwards still
    /// belongs to a process that `stop` may signal, and a pid reaped early could be reused by then.
    @Test func askingWhetherAWorkerEndedLeavesItToBeReaped() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { for case let pointer? in argv { free(pointer) } }
        try #require(posix_spawn(&pid, "/bin/true", nil, nil, argv, nil) == 0)
        var exited = false
        for _ in 0..<500 where !exited {
            exited = WorkerProcess.hasExited(pid)
            if !exited { usleep(10_000) }
        }
        #expect(exited)
        #expect(WorkerProcess.hasExited(pid), "asked twice: still there to be reaped")
        var status: Int32 = -1
        #expect(waitpid(pid, &status, 0) == pid, "reaped by its owner, not by the question")
        #expect(status == 0)
    }
}
