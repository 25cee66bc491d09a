import Confinement
import Foundation
import Manifest

/// The one check every operation that creates or replaces an object runs before it reads a
/// body byte or writes anything: PutObject, save-as, the CopyObject target,
/// InitiateMultipartUpload, CompleteMultipartUpload and AppendObject.
extension ObjectService {
    /// The caller may write the key (its effective ACL), the build does not own it (a recorded
    /// output, a key a rule may write, a key the lock lists: refused to signed callers too), and
    /// the request asks for nothing the manifest declares or serve does not do.
    func authorizeObjectWrite(_ headers: [String: String], _ bucket: Bucket, _ key: ObjectKey, caller: String?) throws {
        try authorizeReplace(bucket, key, caller: caller)
        try WriteHeaders.check(headers, effectiveACL: authorizer.effectiveACL(bucket, key), bucketACL: bucket.acl)
    }
}

/// Headers of a write that ask for something the object would not get. OSS would honour them;
/// accepting and ignoring them would make a client believe they took effect (a `private` object
/// readable anonymously), so each is refused with an error that says so.
enum WriteHeaders {
    /// OSS's storage classes; serve stores every object as Standard.
    static let storageClasses = ["standard", "ia", "archive", "coldarchive", "deepcoldarchive"]
    static let encryptionHeaders = ["x-oss-server-side-encryption", "x-oss-server-side-data-encryption", "x-oss-server-side-encryption-key-id"]

    static func check(_ headers: [String: String], effectiveACL: BucketACL, bucketACL: BucketACL) throws {
        if let raw = headers["x-oss-object-acl"] {
            let value = raw.trimmingCharacters(in: .whitespaces).lowercased()
            guard let wanted = ObjectACL(rawValue: value) else {
                throw OSSErrorBody(status: 400, code: "InvalidArgument",
                                   message: "x-oss-object-acl must be default, private, public-read or public-read-write; it was '\(raw)'.",
                                   details: [("ArgumentName", "x-oss-object-acl"), ("ArgumentValue", raw)])
            }
            // Accepted only when it changes nothing: the object's effective ACL itself, or
            // `default` (follow the bucket) where the object already has the bucket's ACL.
            let asked = wanted == .default ? bucketACL : BucketACL(rawValue: wanted.rawValue)
            guard asked == effectiveACL else { throw ObjectService.aclInManifest("the object (asked with x-oss-object-acl: \(value))") }
        }
        // Present is asked, whatever the value: an empty one answers as any other (attack 11, 6).
        if headers["x-oss-tagging"] != nil {
            throw OSSErrorBody(status: 501, code: "NotImplemented",
                               message: "derive serve does not implement object tagging (x-oss-tagging, like the ?tagging sub-resource); nothing was written.")
        }
        for name in encryptionHeaders {
            if let value = headers[name] {
                throw OSSErrorBody(status: 501, code: "NotImplemented",
                                   message: "derive serve does not encrypt objects (\(name): \(value)); it stores them as sent, so it refuses rather than pretend. Nothing was written.")
            }
        }
        if let raw = headers["x-oss-storage-class"] {
            let value = raw.trimmingCharacters(in: .whitespaces).lowercased()
            guard storageClasses.contains(value) else {
                throw OSSErrorBody(status: 400, code: "InvalidArgument",
                                   message: "x-oss-storage-class must be Standard, IA, Archive, ColdArchive or DeepColdArchive; it was '\(raw)'.",
                                   details: [("ArgumentName", "x-oss-storage-class"), ("ArgumentValue", raw)])
            }
            guard value == "standard" else {
                throw OSSErrorBody(status: 501, code: "NotImplemented",
                                   message: "derive serve stores every object as Standard; the storage class \(raw) is not supported. Nothing was written.")
            }
        }
    }
}
