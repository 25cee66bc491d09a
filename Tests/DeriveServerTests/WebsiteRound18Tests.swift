import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 18's L4: a request for a missing key of a website bucket that carried `Range` or a
/// condition (media elements and download managers send `Range`) got the XML `NoSuchKey`, not the
/// site's error document. Those headers were for the missing key, which has none: the error
/// document is answered whole, 404, whatever they say.
@Suite(.ownThreads) struct WebsiteRound18Tests {
    @Test func theErrorDocumentIgnoresTheRangeAndConditionsOfTheMissingKey() throws {
        let f = try WebsiteTests.fixture()
        let plain = f.get("/site/nope")
        #expect(plain.status == 404 && plain.text == "<h1>lost</h1>")
        let etag = try #require(plain.header("ETag"))
        for headers in [["range": "bytes=0-3"], ["if-none-match": etag], ["if-match": "\"X\""],
                        ["if-modified-since": "Wed, 21 Oct 2037 07:28:00 GMT"], ["if-unmodified-since": "Wed, 21 Oct 1987 07:28:00 GMT"],
                        ["range": "bytes=0-3", "x-oss-range-behavior": "standard"]] {
            let page = f.get("/site/nope", headers: headers.merging(["host": "127.0.0.1:9000"]) { a, _ in a })
            #expect(page.status == 404 && page.text == "<h1>lost</h1>", "\(headers): \(page.status) \(page.text.prefix(200))")
            #expect(page.header("Content-Type") == "text/html; charset=utf-8", "\(headers)")
        }
        let head = f.get("/site/nope", method: "HEAD", headers: ["range": "bytes=0-3", "host": "127.0.0.1:9000"])
        #expect(head.status == 404 && head.header("Content-Length") == "13", "\(head.status) \(head.headers)")
        // The private bucket's error document is still never shown anonymously.
        #expect(!f.get("/vault/nope", headers: ["range": "bytes=0-3", "host": "127.0.0.1:9000"]).text.contains("vault lost"))
    }
}
