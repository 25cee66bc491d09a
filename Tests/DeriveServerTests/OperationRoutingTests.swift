import Access
import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #12, sub-resource routing: every request is classified into one OSS operation from its
/// head; an operation without a handler answers 501 NotImplemented before any body byte is read,
/// and nothing in the bucket changes.
@Suite(.ownThreads) struct OperationRoutingTests {
    /// OSS's sub-resources, as its API reference and SDKs send them.
    static let subresources = [
        "acl", "tagging", "symlink", "uploads", "uploadId=1", "partNumber=1", "uploadId=1&partNumber=1", "append", "append&position=0",
        "position=0", "restore", "lifecycle", "cors", "referer", "website", "logging", "versioning", "versions", "versionId=v1",
        "bucketInfo", "location", "stat", "encryption", "policy", "replication", "inventory", "objectMeta", "worm", "qos", "qosInfo",
        "delete", "select", "meta", "x-oss-async-process", "requestPayment", "transferAcceleration", "replicationLocation",
        "replicationProgress", "resourceGroup", "cname", "metaQuery", "style", "comp=query", "live", "vod", "status", "img",
        "inventoryId=1", "wormId=1", "wormExtend", "policyStatus", "httpsConfig", "accessMonitor", "objectInfo", "asyncFetch",
        "publicAccessBlock", "responseHeader", "regions", "group", "link",
    ]
    static let methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]

    /// Every file below the fixture's buckets with its bytes.
    static func snapshot(_ f: ServiceFixture) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let root = f.buckets.path
        for case let path as String in FileManager.default.enumerator(atPath: root)! {
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isFolder)
            files[path] = isFolder.boolValue ? Data("<folder>".utf8) : try Data(contentsOf: URL(fileURLWithPath: root + "/" + path))
        }
        return files
    }

    @Test func everySubresourceWithoutAHandlerIsNotImplementedFromTheHead() throws {
        let f = try Hostile.fixture()
        let before = try Self.snapshot(f)
        let implemented: Set<OSSOperation> = [.getObject, .headObject, .putObject, .postProcessObject]
        var checked = 0
        for path in ["/prw/src.jpg", "/prw/new.txt", "/prw", "/prw/", "/"] {
            for method in Self.methods {
                for subresource in Self.subresources {
                    for signed in [false, true] {
                        let target = path + "?" + subresource
                        var headers = ["host": "127.0.0.1:9000", "content-length": "5"]
                        if signed {
                            let parts = path.split(separator: "/", maxSplits: 1).map(String.init)
                            let query = SignedRequest.parseQuery(subresource)
                            headers = f.v1Headers(method: method, bucket: parts.first ?? "", key: parts.count > 1 ? parts[1] : "", query: query)
                            headers["content-length"] = "5"
                        }
                        let request = ServiceRequest(method: method, target: target, headers: headers, body: Data("x".utf8))
                        let operation = OSSOperation.classify(method: method, hasBucket: path != "/", hasKey: path.count > 5,
                                                              query: SignedRequest.parseQuery(subresource), headers: headers)
                        #expect(!implemented.contains(operation), "\(method) \(target) fell through to \(operation)")
                        guard OperationHandlers.all[operation] == nil else { continue }
                        guard case .respond(let answer) = f.service.begin(request) else {
                            Issue.record("\(method) \(target) asked for its body"); continue
                        }
                        #expect(answer.status == 501, "\(method) \(target): \(answer.status) \(answer.text)")
                        if method == "HEAD" {
                            #expect(answer.body.isEmpty && answer.header("x-oss-err") != nil)
                        } else {
                            #expect(answer.code == "NotImplemented" && answer.text.contains(operation.name), "\(method) \(target): \(answer.text)")
                        }
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 2000)
        #expect(try Self.snapshot(f) == before)
    }

    @Test func operationsAreNamedAsOSSNamesThem() {
        func name(_ method: String, _ path: String, _ query: String = "", copy: Bool = false) -> String {
            OSSOperation.classify(method: method, hasBucket: path != "/", hasKey: path.contains("/") && path != "/",
                                  query: SignedRequest.parseQuery(query), headers: copy ? ["x-oss-copy-source": "/b/k"] : [:]).name
        }
        #expect(name("GET", "b/k") == "GetObject")
        #expect(name("GET", "b/k", "x-oss-process=image/resize,w_10&response-content-type=a") == "GetObject")
        #expect(name("HEAD", "b/k") == "HeadObject")
        #expect(name("PUT", "b/k") == "PutObject")
        #expect(name("PUT", "b/k", copy: true) == "CopyObject")
        #expect(name("PUT", "b/k", "partNumber=1&uploadId=u") == "UploadPart")
        #expect(name("PUT", "b/k", "partNumber=1&uploadId=u", copy: true) == "UploadPartCopy")
        #expect(name("PUT", "b/k", "acl") == "PutObjectAcl")
        #expect(name("GET", "b/k", "acl") == "GetObjectAcl")
        #expect(name("PUT", "b/k", "tagging") == "PutObjectTagging")
        #expect(name("PUT", "b/k", "symlink") == "PutSymlink")
        #expect(name("POST", "b/k", "append&position=0") == "AppendObject")
        #expect(name("POST", "b/k", "uploads") == "InitiateMultipartUpload")
        #expect(name("POST", "b/k", "uploadId=u") == "CompleteMultipartUpload")
        #expect(name("DELETE", "b/k", "uploadId=u") == "AbortMultipartUpload")
        #expect(name("GET", "b/k", "uploadId=u") == "ListParts")
        #expect(name("POST", "b/k", "x-oss-process") == "PostProcessObject")
        #expect(name("DELETE", "b/k") == "DeleteObject")
        #expect(name("GET", "b") == "ListObjects")
        #expect(name("GET", "b", "list-type=2&prefix=a") == "ListObjectsV2")
        #expect(name("GET", "b", "acl") == "GetBucketAcl")
        #expect(name("GET", "b", "bucketInfo") == "GetBucketInfo")
        #expect(name("GET", "b", "uploads") == "ListMultipartUploads")
        #expect(name("POST", "b", "delete") == "DeleteMultipleObjects")
        #expect(name("GET", "b", "lifecycle") == "GetBucketLifecycle")
        #expect(name("PUT", "b", "cors") == "PutBucketCors")
        #expect(name("PUT", "b", "acl") == "PutBucketAcl")
        #expect(name("GET", "/") == "ListBuckets")
    }

    /// Host names are case-insensitive: `Host: PRUB.localhost` is bucket pubr.
    @Test func virtualHostNamesAreCaseInsensitive() throws {
        let f = try Hostile.fixture()
        let answer = f.get("/photo.jpg", headers: ["host": "PUBR.localhost:9000"])
        #expect(answer.status == 200 && answer.header("Content-Type") == "image/jpeg", "\(answer.text)")
    }
}
