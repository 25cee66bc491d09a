import Access
import Confinement
import Foundation
import Manifest

/// PutObject: the body streams into an unnamed file beside the target and replaces the object
/// only when complete and checked.
struct PutObject: OperationHandler {
    func begin(_ request: OperationRequest) throws -> Step {
        try request.service.beginUpload(request.request, target: try request.target(), caller: request.caller, exchange: request.exchange)
    }
}

extension ObjectService {
    /// Checks a PUT before its body: caller, effective ACL of the target, declared length,
    /// digest headers, and that the key can be a file (not under an object, not a folder).
    func beginUpload(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> Step {
        try authorizeObjectWrite(request.headers, target.bucket, target.key, caller: caller)
        // The declared length (absent for a chunked body, or a whole body given to `handle`).
        var declared: Int?
        if let header = request.headers["content-length"] {
            guard let value = Int(header.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw OSSErrorBody.badRequest("Content-Length is not a number.", code: "InvalidArgument")
            }
            declared = value
        }
        guard (declared ?? request.body.count) <= maxBodyBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "Your proposed upload exceeds the maximum allowed size of \(maxBodyBytes) bytes.")
        }
        var expectedMD5: [UInt8]?
        if let header = request.headers["content-md5"] {
            guard let data = Data(base64Encoded: header.trimmingCharacters(in: .whitespaces)), data.count == 16 else {
                throw OSSErrorBody.invalidDigest("The Content-MD5 you specified is not the base64 of 16 bytes.")
            }
            expectedMD5 = Array(data)
        }
        var expectedSHA256: String?
        if let header = request.headers["x-oss-content-sha256"], header != "UNSIGNED-PAYLOAD" {
            expectedSHA256 = header.lowercased()
        }
        // x-oss-forbid-overwrite: true refuses to replace an existing object: from the head, and
        // again when the upload is moved into place (an object written meanwhile is kept).
        let forbidOverwrite = Self.forbidsOverwrite(request)
        try refuseOverwrite(request, target.bucket, target.key)
        // The stored headers and the ETag of the upload, recorded with the identity of the file written.
        let stored = ObjectMetadata.headers(from: request.headers)
        try ObjectMetadata.checkLimits(stored)
        let file = try createFile(target.bucket, target.key, exchange: exchange)
        let metadata = self.metadata, bucket = target.bucket.name, key = target.key
        // Recorded under the file's identity before it is linked, and the records of the files
        // it replaced removed after: a GET always answers its file's own headers (#11 round 4).
        // A record that cannot be saved refuses the PUT: the object is not replaced (attack 14, F1).
        let prepared: @Sendable (ObjectFileIdentity, String) throws -> Void = { identity, etag in
            try ObjectService.refuseProjectFile(file, key)
            do {
                try metadata.record(bucket: bucket, key: key, identity: identity,
                                    metadata: ObjectMetadata(headers: stored, etag: etag, lastModified: Int(identity.modified / 1_000_000_000)))
            } catch {
                throw ObjectService.metadataNotRecorded(error, "the upload", key: key, store: metadata, log: exchange.log)
            }
        }
        let upload = Upload(file: file, exchange: exchange, key: target.key, declared: declared, limit: min(declared ?? maxBodyBytes, maxBodyBytes),
                            expectedMD5: expectedMD5, expectedSHA256: expectedSHA256, replacing: !forbidOverwrite, prepared: prepared) { identity, _ in
            do { try metadata.keepOnly(bucket: bucket, key: key, identity: identity) } catch {
                exchange.log("removing stale metadata of '\(key)' failed: \(error)")
            }
        }
        return .upload(upload)
    }
}
