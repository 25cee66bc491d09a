import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 13b's finding 8: `If-Range` was ignored, so a resumed download whose validator no longer
/// matched got `206` of the new bytes, spliced onto the old ones. RFC 9110 §13.1.5: the range is
/// served only when the validator matches (strong comparison for an entity tag, and never for a date, whose
/// whole seconds two rebuilds can share); otherwise the whole object, `200`.
@Suite(.ownThreads) struct IfRangeMisc27Tests {
    static func get(_ f: ServiceFixture, _ headers: [String: String]) -> ServiceResponse {
        ObjectSemanticsTests.get(f, "r.bin", headers)
    }

    @Test func aRangeIsServedOnlyWhenTheIfRangeValidatorMatches() throws {
        let f = try Hostile.fixture()
        _ = ObjectSemanticsTests.put(f, "r.bin")
        let whole = Self.get(f, [:])
        let etag = try #require(whole.header("ETag"))
        let date = try #require(whole.header("Last-Modified"))
        let modified = try #require(HTTPDate.parse(date))
        func answer(_ ifRange: String) -> ServiceResponse { Self.get(f, ["range": "bytes=0-9", "if-range": ifRange]) }
        // Matching: the range.
        for matching in [etag] {
            let part = answer(matching)
            #expect(part.status == 206 && part.body == ObjectSemanticsTests.body.prefix(10) && part.header("Content-Range") == "bytes 0-9/1000", "\(matching)")
        }
        // Not matching (another tag, a weak tag, another date, not a validator at all): the whole object.
        // A date, even the Last-Modified itself (round 28, finding 1: two rebuilds within one
        // second share it, and the range spliced two versions): weak, never honoured.
        for stale in ["\"NOT-THE-ETAG\"", "W/" + etag, date, HTTPDate.string(modified - 1), HTTPDate.string(modified + 3600), "Thu, 01 Jan 2000 00:00:00 GMT", "garbage"] {
            let full = answer(stale)
            #expect(full.status == 200 && full.body == ObjectSemanticsTests.body && full.header("Content-Range") == nil, "\(stale): \(full.status)")
            #expect(full.header("Content-Length") == "1000", "\(stale)")
        }
        // Without a Range, If-Range means nothing.
        #expect(Self.get(f, ["if-range": "\"NOT-THE-ETAG\""]).status == 200)
    }
}
