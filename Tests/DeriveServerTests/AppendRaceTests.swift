import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Issue 12, attack 8 finding 3: while appends run, HEAD, GET and listings always call an
/// appendable object Appendable and name its next position (the new file is recorded before its
/// link, and the file it replaced stays recorded a moment after).
@Suite(.ownThreads) struct AppendRaceTests {
    @Test func readersRacingAppendsAlwaysSeeAnAppendableObject() throws {
        // The fixture only calls the service, which is Sendable.
        nonisolated(unsafe) let f = try ServiceFixture()
        let start = Data(repeating: 0x61, count: 300_000)
        #expect(f.append("drop", "ar", position: 0, start).status == 200)
        let piece = Data(repeating: 0x62, count: 1000)
        let appends = 150
        let box = NSLock()
        nonisolated(unsafe) var reads = 0
        nonisolated(unsafe) var bad: [String] = []
        nonisolated(unsafe) var done = false
        // Three threads of their own: `concurrentPerform` may run its iterations one after
        // another on a loaded machine, and then no read would race the appends.
        let finished = DispatchGroup()
        let work: @Sendable (Int) -> Void = { who in
            if who == 0 {
                for round in 0..<appends {
                    let answer = f.append("drop", "ar", position: start.count + round * piece.count, piece)
                    if answer.status != 200 { box.lock(); bad.append("append \(round): \(answer.status) \(answer.text)"); box.unlock() }
                }
                box.lock(); done = true; box.unlock()
                return
            }
            while true {
                box.lock(); let finished = done; box.unlock()
                if finished { break }
                let answer = who == 1 ? f.send("HEAD", "drop", "ar", signed: false) : f.send("GET", "drop", query: [("prefix", "ar")], signed: false)
                let ok = who == 1
                    ? answer.header("x-oss-object-type") == "Appendable" && answer.header("x-oss-next-append-position") == answer.header("content-length")
                    : answer.values("Type") == ["Appendable"]
                box.lock(); reads += 1; if !ok { bad.append("\(who == 1 ? "HEAD" : "list"): \(answer.header("x-oss-object-type") ?? answer.values("Type").joined())") }; box.unlock()
            }
        }
        for who in [1, 2, 0] {
            finished.enter()
            Thread.detachNewThread { work(who); finished.leave() }
        }
        finished.wait()
        #expect(reads > 0)
        #expect(bad.isEmpty, "\(bad.count) of \(reads) reads: \(bad.prefix(5).joined(separator: "; "))")
    }
}
