import Testing
import TestSupport
@testable import Manifest

/// Attack 12 N3: `url:` addresses that are malformed but were accepted.
@Suite(.ownThreads)
struct SiteURLRound12Tests {
    @Test func anEmptyHostABadPortAndInvisibleCharactersAreRefused() {
        for bad in ["https:///x", "https://:8080/x", "https://a.b:99999/", "https://a.b:0/", "https://a.b:x/", "https://a.b:/",
                    "/img\u{200B}", "https://cdn.example.com/a\u{00A0}b", "/img\u{2028}x", "https://[::1]:70000/"] {
            #expect(Bucket.urlProblem(bad) != nil, "\(bad.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        for good in ["https://cdn.example.com/img", "https://cdn.example.com:8443/img", "http://127.0.0.1:8080", "https://[::1]:8080/x",
                     "https://[::1]/x", "/img", "./img", "../img", ".", "https://cdn.example.com/caf%C3%A9", "/café"] {
            #expect(Bucket.urlProblem(good) == nil, "\(good): \(Bucket.urlProblem(good) ?? "")")
        }
    }
}
