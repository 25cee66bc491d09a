import Access
import Foundation

/// The Authorization header and query-signature parsers: the first line of the input is an
/// Authorization header, the second a raw query string, the third an x-oss-date header.
/// Nothing may crash, and a forged request may never authenticate.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSignatures(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
    let authorization = lines.first ?? ""
    let query = SignedRequest.parseQuery(lines.count > 1 ? lines[1] : "")
    let date = lines.count > 2 ? lines[2] : "20231114T221320Z"
    let verifier = Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou")
    let now = 1_700_000_000
    for headers in [["authorization": authorization, "x-oss-date": date, "date": date], ["x-oss-date": date]] {
        let request = SignedRequest(method: "GET", bucket: "photos", key: "a/b.jpg", query: query, headers: headers)
        if let caller = try? verifier.authenticate(request, now: now) {
            // Only a real signature (which random input cannot produce) authenticates.
            precondition(caller == "AKIDEXAMPLE")
            preconditionFailure("a fuzzed request authenticated: \(text.debugDescription)")
        }
    }
    return 0
}
