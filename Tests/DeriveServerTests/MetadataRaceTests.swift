import Foundation
import Testing
@testable import DeriveServer

/// Attack (#11, round 4, finding 3): two concurrent PUTs to one key lost the key's metadata in
/// about 9 of 40 rounds (the body of one, default headers). Records are kept per file identity
/// and written before the file is linked: every GET answers its body's own headers.
@Suite struct MetadataRaceTests {
    @Test func racingPutsNeverServeABodyWithoutItsOwnHeaders() throws {
        // The fixture only calls the service, which is Sendable.
        nonisolated(unsafe) let f = try Hostile.fixture()
        var checkedGets = 0
        for round in 0..<60 {
            let key = "race\(round % 3).bin"
            let gets = NIOLockedCounter()
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                if worker < 3 {
                    let who = ["a", "b", "c"][worker]
                    let body = Data(repeating: UInt8(ascii: who.unicodeScalars.first!), count: 200 + worker * 50 + round)
                    let put = ObjectSemanticsTests.put(f, key, body, headers: ["content-type": "text/x-\(who)", "x-oss-meta-who": who])
                    #expect(put.status == 200)
                } else {
                    for _ in 0..<20 { Self.check(f, key, gets) }
                }
            }
            Self.check(f, key, gets)
            checkedGets += gets.value
        }
        #expect(checkedGets > 60)
    }

    static func check(_ f: ServiceFixture, _ key: String, _ gets: NIOLockedCounter) {
        let answer = ObjectSemanticsTests.get(f, key)
        guard answer.status == 200, let first = answer.body.first else { return }
        let who = String(UnicodeScalar(first))
        #expect(answer.header("x-oss-meta-who") == who, "body of \(who) served with x-oss-meta-who \(answer.header("x-oss-meta-who") ?? "none")")
        #expect(answer.header("content-type") == "text/x-\(who)")
        gets.add()
    }
}

final class NIOLockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
