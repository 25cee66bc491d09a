import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack round 28, finding 6: `If-Match` compared weakly (`W/"<etag>"` got 200, RFC 9110
/// §13.1.1 asks for strong comparison: 412); with `x-oss-range-behavior: standard`, `bytes=-0`
/// got the whole object (RFC 9110 §14.1.3: a zero suffix is unsatisfiable, 416), and a range
/// bound with more digits than an integer holds made the header "invalid" (200) where an end
/// past the object is clamped (206) and a start past it is 416.
@Suite(.ownThreads) struct ServeRFC9110Round28Tests {
    @Test func ifMatchComparesStrongly() throws {
        let f = try Hostile.fixture()
        _ = ObjectSemanticsTests.put(f, "m.bin")
        let etag = try #require(ObjectSemanticsTests.get(f, "m.bin").header("ETag"))
        func status(_ ifMatch: String) -> Int { ObjectSemanticsTests.get(f, "m.bin", ["if-match": ifMatch]).status }
        for matching in [etag, etag.lowercased(), "*", "\"0000\", \(etag)"] {
            #expect(status(matching) == 200, "\(matching)")
        }
        for weak in ["W/" + etag, "W/" + etag.lowercased(), "\"0000\", W/\(etag)"] {
            let answer = ObjectSemanticsTests.get(f, "m.bin", ["if-match": weak])
            #expect(answer.status == 412 && answer.code == "PreconditionFailed", "\(weak): \(answer.status)")
        }
        // If-None-Match keeps weak comparison (RFC 9110 §13.1.2): a weak tag of the object is a match.
        #expect(ObjectSemanticsTests.get(f, "m.bin", ["if-none-match": "W/" + etag]).status == 304)
    }

    @Test func standardRangesFollowRFC9110AtTheirEdges() throws {
        let f = try Hostile.fixture()
        _ = ObjectSemanticsTests.put(f, "r.bin")
        let body = ObjectSemanticsTests.body
        func get(_ range: String, standard: Bool = true) -> ServiceResponse {
            ObjectSemanticsTests.get(f, "r.bin", standard ? ["range": range, "x-oss-range-behavior": "standard"] : ["range": range])
        }
        let huge = "99999999999999999999999999"
        // A zero suffix selects nothing: 416.
        let zero = get("bytes=-0")
        #expect(zero.status == 416 && zero.code == "InvalidRange", "\(zero.status)")
        // An end too long for an integer is past the object: clamped, like any such end.
        for range in ["bytes=0-\(huge)", "bytes=990-\(huge)", "bytes=0-0000000000000000000000099"] {
            let clamped = get(range)
            let start = range == "bytes=990-\(huge)" ? 990 : 0, end = range.hasSuffix("099") ? 99 : 999
            #expect(clamped.status == 206 && clamped.body == body[start...end] && clamped.header("Content-Range") == "bytes \(start)-\(end)/1000",
                    "\(range): \(clamped.status) \(clamped.header("Content-Range") ?? "-")")
        }
        // A start too long for an integer is past the object: 416; a huge suffix is the whole object, 206.
        for range in ["bytes=\(huge)-", "bytes=\(huge)-\(huge)9"] {
            let beyond = get(range)
            #expect(beyond.status == 416 && beyond.code == "InvalidRange", "\(range): \(beyond.status)")
        }
        let suffix = get("bytes=-\(huge)")
        #expect(suffix.status == 206 && suffix.body == body && suffix.header("Content-Range") == "bytes 0-999/1000")
        // A last byte before the first is no valid range, however long the numbers: ignored.
        for invalid in ["bytes=\(huge)9-\(huge)", "bytes=\(huge)-5"] {
            let whole = get(invalid)
            #expect(whole.status == 200 && whole.body == body, "\(invalid): \(whole.status)")
        }
        // OSS's default behaviour is unchanged: outside the object, or a zero suffix, is ignored (200).
        for range in ["bytes=-0", "bytes=0-\(huge)", "bytes=\(huge)-", "bytes=-\(huge)"] {
            let whole = get(range, standard: false)
            #expect(whole.status == 200 && whole.body == body && whole.header("Content-Range") == nil, "\(range): \(whole.status)")
        }
    }
}
