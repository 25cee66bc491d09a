import Foundation
import NIOConcurrencyHelpers
import Testing
import TestSupport
@testable import DeriveServer

/// Attack (#11, round 4, finding 3): two concurrent PUTs to one key lost the key's metadata in
/// about 9 of 40 rounds (the body of one, default headers). Records are kept per file identity
/// and written before the file is linked: every GET answers its body's own headers.
@Suite(.ownThreads) struct MetadataRaceTests {
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

    /// Attack (#11, round 6): a GET racing a CopyObject of the same key got the copy's bytes with
    /// default headers (18 of 300). Copies, appends and completed multipart uploads record their
    /// metadata before the link as PutObject does.
    @Test func racingCopiesNeverServeABodyWithoutItsOwnHeaders() throws {
        nonisolated(unsafe) let f = try Hostile.fixture()
        for who in ["a", "b"] {
            let body = Data(repeating: UInt8(ascii: who.unicodeScalars.first!), count: 300)
            #expect(ObjectSemanticsTests.put(f, "copy-src-\(who).bin", body, headers: ["content-type": "text/x-\(who)", "x-oss-meta-who": who]).status == 200)
        }
        let gets = NIOLockedCounter()
        for round in 0..<30 {
            DispatchQueue.concurrentPerform(iterations: 3) { worker in
                if worker < 2 {
                    let who = ["a", "b"][(worker + round) % 2]
                    let copy = ObjectSemanticsTests.put(f, "copy-target.bin", Data(), headers: ["x-oss-copy-source": "/prw/copy-src-\(who).bin"])
                    #expect(copy.status == 200, "\(copy.status) \(copy.text)")
                } else {
                    for _ in 0..<10 { Self.check(f, "copy-target.bin", gets) }
                }
            }
        }
        #expect(gets.value > 30)
    }

    /// The cause of `racingPutsNeverServeABodyWithoutItsOwnHeaders` failing under load (48 in
    /// one loaded run): a GET opened writer c's file, then another writer linked its own and
    /// removed the records of every other file at the key, c's included, before the GET looked
    /// c's record up. Made deterministic with the reading hook: the replacing PUT runs between
    /// the GET's open and its lookup. The GET must answer one whole object (old or new) with
    /// its own headers, never the old bytes with default headers.
    @Test func aFileReplacedBetweenOpenAndLookupIsNeverServedWithoutItsHeaders() throws {
        nonisolated(unsafe) let f = try Hostile.fixture()
        for (index, (first, second)) in [("a", "c"), ("c", "b")].enumerated() {
            let key = "replaced\(index).bin"
            #expect(ObjectSemanticsTests.put(f, key, Data(repeating: UInt8(ascii: first.unicodeScalars.first!), count: 300),
                                             headers: ["content-type": "text/x-\(first)", "x-oss-meta-who": first]).status == 200)
            let fired = NIOLockedValueBox(false)
            f.service.hooks.openedForReading.withLockedValue { $0 = { opened in
                guard opened.string == key, !fired.withLockedValue({ done in defer { done = true }; return done }) else { return }
                let put = ObjectSemanticsTests.put(f, key, Data(repeating: UInt8(ascii: second.unicodeScalars.first!), count: 250),
                                                   headers: ["content-type": "text/x-\(second)", "x-oss-meta-who": second])
                #expect(put.status == 200)
            } }
            for method in ["GET", "HEAD"] {
                fired.withLockedValue { $0 = false }
                let answer = ObjectSemanticsTests.get(f, key, method: method)
                #expect(answer.status == 200)
                #expect(fired.withLockedValue { $0 })
                let who = answer.header("x-oss-meta-who")
                #expect(who == second, "\(method): served with x-oss-meta-who \(who ?? "none")")
                #expect(answer.header("content-type") == "text/x-\(who ?? "none")")
                if method == "GET" { #expect(answer.body.first == UInt8(ascii: second.unicodeScalars.first!)) }
                // The next round replaces the object again: put the first writer's back.
                #expect(ObjectSemanticsTests.put(f, key, Data(repeating: UInt8(ascii: first.unicodeScalars.first!), count: 300),
                                                 headers: ["content-type": "text/x-\(first)", "x-oss-meta-who": first]).status == 200)
            }
            f.service.hooks.openedForReading.withLockedValue { $0 = nil }
        }
    }

    /// A DELETE removed the key's records after its unlink, outside the key's lock: a PUT linked
    /// between the two lost its record for good (its bytes then served with default headers).
    @Test func aPutLinkedWhileADeleteRunsKeepsItsRecord() throws {
        nonisolated(unsafe) let f = try Hostile.fixture()
        #expect(ObjectSemanticsTests.put(f, "deleted.bin", Data("old".utf8), headers: ["x-oss-meta-who": "old"]).status == 200)
        f.service.hooks.removedForDelete.withLockedValue { $0 = { key in
            guard key.string == "deleted.bin" else { return }
            // Another thread's PUT: it waits for the key's lock when the delete holds it.
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                #expect(ObjectSemanticsTests.put(f, "deleted.bin", Data("new".utf8), headers: ["x-oss-meta-who": "new"]).status == 200)
                done.signal()
            }
            _ = done.wait(timeout: .now() + 1)
        } }
        let deleted = ObjectSemanticsTests.get(f, "deleted.bin", method: "DELETE")
        #expect(deleted.status == 204)
        f.service.hooks.removedForDelete.withLockedValue { $0 = nil }
        // The PUT ran after the delete (waiting for the lock) or inside it: either way its bytes carry its header.
        for _ in 0..<50 where ObjectSemanticsTests.get(f, "deleted.bin").status != 200 { usleep(20_000) }
        let answer = ObjectSemanticsTests.get(f, "deleted.bin")
        #expect(answer.status == 200 && answer.text == "new")
        #expect(answer.header("x-oss-meta-who") == "new")
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
