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
        try Self.refuseProjectPath(key)
        try Self.refuseUnservedPath(key)
        try authorizeReplace(bucket, key, caller: caller)
        try WriteHeaders.check(headers, effectiveACL: authorizer.effectiveACL(bucket, key), bucketACL: bucket.acl)
    }
}

/// No writer, signed or not, creates what Derive's project discovery reads as a project
/// (`ProjectMarkers`, discovery's own definition): a key with a part named `.derive` (from the
/// head, before a body byte), nor a file whose final bytes at its name are a manifest (one that
/// parses, at any name; one mid-edit, at a manifest's name), a Derive lock at a `.lock` name or
/// an SQLite database at `state.sqlite` (checked on the file about to be linked, so an append
/// or a multipart upload that completes a manifest is refused too). Issue #9, attack 44's
/// findings 3 and 5: a manifest PUT into a public-read-write bucket's folder made every request
/// 503 and stopped the site's validate, plan and build; one in a sub-folder froze that folder.
extension ObjectService {
    static func projectRefusal(_ key: ObjectKey, _ why: String) -> OSSErrorBody {
        OSSErrorBody.accessDenied("'\(key)' would be read by Derive as another project's file: \(why). derive serve never creates a project or a project's file (one in a bucket's folder would stop this site's validate, plan, build and serve, or take the folder it lands in from every writer), whoever asks; nothing was written. To add a project there, put its files in place by hand, not through derive serve.")
    }

    /// A key with a part named `.derive` (Derive's state folder: the folder holding it is a project's).
    static func refuseProjectPath(_ key: ObjectKey) throws {
        let name = Array(ProjectMarkers.stateFolderName.utf8)
        guard key.segments.contains(where: { $0.elementsEqual(name) }) else { return }
        throw projectRefusal(key, "a folder holding '\(ProjectMarkers.stateFolderName)' is a Derive project's (its build state), and this key has a part of that name")
    }

    /// A key through a version control folder (`ObjectKey.isUnserved`): no object, so none is
    /// written there (a hook put in `.git/hooks` would run at the owner's next commit).
    static func refuseUnservedPath(_ key: ObjectKey) throws {
        guard key.isUnserved else { return }
        throw OSSErrorBody.accessDenied("'\(key)' lies in a version control folder (\(ObjectKey.unservedNames.sorted().joined(separator: " "))), which derive serve never answers, lists or writes, whoever asks; nothing was written.")
    }

    /// The file about to be linked at `key`, judged on its bytes and name as discovery judges them.
    static func refuseProjectFile(_ file: TemporaryFile, _ key: ObjectKey) throws {
        guard let size = file.currentStatus().map({ Int($0.st_size) }),
              let read = file.contents(maxBytes: size <= ProjectMarkers.maxManifestBytes ? size : ProjectMarkers.headerBytes) else {
            throw OSSErrorBody.internalError
        }
        // Beside Derive's state folder, or beside this name's Derive lock (discovery's own rule,
        // `ControlFiles.besideState`: attack 44b's F4, an empty `derive.yaml` beside a retired
        // project's `derive.lock` froze the folder for every writer).
        let lock = (file.name as NSString).deletingPathExtension + ".lock"
        let besideState = file.folderHolds(ProjectMarkers.stateFolderName)
            || file.folderFileHead(lock, count: ProjectMarkers.lockMarker.count).map { $0.starts(with: ProjectMarkers.lockMarker) } == true
        if let why = ProjectMarkers.why(name: file.name, contents: read.data, size: read.size, besideState: besideState) {
            file.discard()
            throw projectRefusal(key, why)
        }
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
