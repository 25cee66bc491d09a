import Access
import Confinement
import Foundation
import Manifest

/// Requests to a bucket itself (`/bucket/` or `bucket.localhost/`): listings, the bucket's
/// info and ACL, DeleteMultipleObjects and ListMultipartUploads. Other bucket operations
/// (lifecycle, CORS, website, …) answer 501 NotImplemented without reading or writing anything.
extension ObjectService {
    func bucketStep(_ request: ServiceRequest, bucket: Bucket, query: [OSSSignature.Parameter], exchange: Exchange) throws -> Step {
        let names = Set(query.map(\.name))
        // Refused before the signature is checked, like every operation Derive lacks.
        let known: Set<String> = ["acl", "bucketInfo", "uploads", "delete", "list-type", "prefix", "delimiter", "marker", "max-keys",
                                  "encoding-type", "continuation-token", "start-after", "fetch-owner", "key-marker",
                                  "upload-id-marker", "max-uploads"]
        if let other = query.first(where: { OSSSignature.subresources.contains($0.name) && !known.contains($0.name) }) {
            throw OSSErrorBody(status: 501, code: "NotImplemented",
                               message: "The bucket operation ?\(other.name) is not supported by derive serve; nothing was read or written.")
        }
        let signed = SignedRequest(method: request.method, bucket: bucket.name, key: "", query: query, headers: request.headers)
        let caller = try verifier.authenticate(signed, now: clock())
        switch request.method {
        case "GET", "HEAD":
            var answer: ServiceResponse
            if names.contains("acl") { answer = try bucketACL(bucket, caller: caller, exchange: exchange) }
            else if names.contains("bucketInfo") { answer = try bucketInfo(bucket, caller: caller, exchange: exchange) }
            else if names.contains("uploads") { answer = try listMultipartUploads(bucket, query: query, caller: caller, exchange: exchange) }
            else if Self.value(query, "list-type") == "2" { answer = try listObjectsV2(bucket, query: query, caller: caller, exchange: exchange) }
            else { answer = try listObjects(bucket, query: query, caller: caller, exchange: exchange) }
            // HEAD: the GET's status and headers without its body (a client asking whether the bucket exists).
            if request.method == "HEAD" { answer.payload = .data(Data()) }
            return .respond(answer)
        case "PUT" where names.contains("acl"):
            throw Self.aclInManifest("bucket '\(bucket.name)'")
        case "POST" where names.contains("delete"):
            return try deleteMultipleObjects(request, bucket: bucket, query: query, caller: caller, exchange: exchange)
        default:
            throw OSSErrorBody(status: 501, code: "NotImplemented",
                               message: "\(request.method) on a bucket is not supported by derive serve (buckets are declared in the manifest); nothing was changed.")
        }
    }

    /// PutBucketAcl and PutObjectAcl: ACLs are the manifest's, so the API cannot change them.
    static func aclInManifest(_ what: String) -> OSSErrorBody {
        OSSErrorBody(status: 501, code: "NotImplemented",
                     message: "ACLs are declared in the manifest (a bucket's acl: and its objects: rules, or a rule's acl: for derivatives), which is their single source of truth; edit it and restart derive serve. The ACL of \(what) was not changed.")
    }

    /// Bucket metadata is the bucket owner's: a signed request only.
    func authorizeOwner(caller: String?) throws {
        guard caller != nil else { throw OSSErrorBody.accessDenied("Only a signed request may read a bucket's information or ACL.") }
    }

    func bucketACL(_ bucket: Bucket, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizeOwner(caller: caller)
        return Self.aclPolicy(bucket.acl.rawValue).response(exchange)
    }

    static func aclPolicy(_ grant: String) -> XMLReply {
        XMLReply("AccessControlPolicy") { xml in
            xml.group("Owner") { xml in
                xml.element("ID", owner.id)
                xml.element("DisplayName", owner.name)
            }
            xml.group("AccessControlList") { $0.element("Grant", grant) }
        }
    }

    func bucketInfo(_ bucket: Bucket, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizeOwner(caller: caller)
        var created: Int64 = 0
        if let attributes = try? FileManager.default.attributesOfItem(atPath: bucket.path),
           let date = attributes[.creationDate] as? Date ?? attributes[.modificationDate] as? Date {
            created = Int64(date.timeIntervalSince1970) * 1_000_000_000
        }
        let region = manifest.region
        return XMLReply("BucketInfo") { xml in
            xml.group("Bucket") { xml in
                xml.element("AccessMonitor", "Disabled")
                xml.element("CreationDate", XMLReply.time(created))
                xml.element("ExtranetEndpoint", exchange.host)
                xml.element("IntranetEndpoint", exchange.host)
                xml.element("Location", "oss-" + region)
                xml.element("StorageClass", "Standard")
                xml.element("TransferAcceleration", "Disabled")
                xml.element("CrossRegionReplication", "Disabled")
                xml.element("Name", bucket.name)
                xml.group("Owner") { xml in
                    xml.element("DisplayName", Self.owner.name)
                    xml.element("ID", Self.owner.id)
                }
                xml.group("AccessControlList") { $0.element("Grant", bucket.acl.rawValue) }
                xml.element("Comment", "")
                xml.element("DataRedundancyType", "LRS")
                xml.element("Versioning", "Disabled")
                xml.group("ServerSideEncryptionRule") { $0.element("SSEAlgorithm", "None") }
                xml.group("BucketPolicy") { xml in
                    xml.element("LogBucket", "")
                    xml.element("LogPrefix", "")
                }
            }
        }.response(exchange)
    }
}
