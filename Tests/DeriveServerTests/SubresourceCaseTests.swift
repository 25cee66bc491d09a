import Access
import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack (#11, round 4, finding 4): `PUT …?ACL` and `?Tagging` were matched case-sensitively,
/// fell through to a plain PUT and replaced the object in a public-read-write bucket.
@Suite(.ownThreads) struct SubresourceCaseTests {
    /// Upper case, capitalised and alternating spellings of a query string's names.
    static func variants(_ query: String) -> [String] {
        func map(_ transform: (String) -> String) -> String {
            query.split(separator: "&").map { part in
                let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
                return ([transform(pieces[0])] + pieces.dropFirst()).joined(separator: "=")
            }.joined(separator: "&")
        }
        let alternating: (String) -> String = { name in
            String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
        }
        return [map { $0.uppercased() }, map { $0.prefix(1).uppercased() + $0.dropFirst() }, map(alternating)]
    }

    @Test func everySubresourceInMixedCaseIsThatSubresource() {
        var checked = 0
        for path in ["b/k", "b"] {
            for method in OperationRoutingTests.methods {
                for subresource in OperationRoutingTests.subresources {
                    let expected = OSSOperation.classify(method: method, hasBucket: true, hasKey: path.contains("/"),
                                                         query: SignedRequest.parseQuery(subresource), headers: [:])
                    for variant in Self.variants(subresource) where variant != subresource {
                        let found = OSSOperation.classify(method: method, hasBucket: true, hasKey: path.contains("/"),
                                                          query: SignedRequest.parseQuery(variant), headers: [:])
                        #expect(found == expected, "\(method) \(path)?\(variant) is \(found), not \(expected)")
                        #expect(![.putObject, .getObject, .headObject, .deleteObject, .postObject, .listObjects, .putBucket].contains(found),
                                "\(method) \(path)?\(variant) fell through to \(found)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 500)
    }

    /// End to end: anonymous `PUT ?ACL` / `?Tagging` into a public-read-write bucket never
    /// replaces the object.
    @Test func mixedCaseAclOrTaggingNeverReplacesTheObject() throws {
        let f = try Hostile.fixture()
        let before = try OperationRoutingTests.snapshot(f)
        for query in ["ACL", "Acl", "aCl", "Tagging", "TAGGING", "Symlink", "SYMLINK"] {
            for method in ["PUT", "POST", "GET"] {
                let request = ServiceRequest(method: method, target: "/prw/src.jpg?" + query,
                                             headers: ["host": "127.0.0.1:9000", "content-length": "5"], body: Data("evil!".utf8))
                switch f.service.begin(request) {
                case .respond(let answer):
                    #expect(answer.status != 200 || method == "GET" && answer.header("content-type")?.contains("xml") == true,
                            "\(method) ?\(query): \(answer.status)")
                case .upload:
                    Issue.record("\(method) ?\(query) became a plain upload")
                default:
                    break
                }
            }
        }
        #expect(try OperationRoutingTests.snapshot(f) == before)
    }
}
