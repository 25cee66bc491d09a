import Access
import Confinement
import Foundation
import Manifest

/// A bucket's info and ACL (GetBucketInfo, GetBucketAcl), and the answer to PutBucketAcl and
/// PutObjectAcl.
extension ObjectService {
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
