import Access
import Confinement
import Crypto
import Foundation
import Manifest

/// DeleteObject and DeleteMultipleObjects.
///
/// A delete removes one regular file, reached without links, and nothing else: never a folder,
/// never recursively, never a link (the key is then not an object, and the answer is OSS's 204
/// for a missing key). Empty parent folders are left in place: they may be the user's, and a
/// listing never shows an empty folder as a prefix. Keys the build owns are refused.
extension ObjectService {
    /// Most keys in one DeleteMultipleObjects (OSS's limit).
    static let maxDeleteKeys = 1000
    /// Longest DeleteMultipleObjects body: 1000 keys of 1023 bytes, escaped, with their tags.
    static let maxDeleteBody = 8 * 1024 * 1024

    /// Removes `key` if it is a regular file; a missing key is not an error (OSS answers 204).
    func deleteFile(_ bucket: Bucket, _ key: ObjectKey, caller: String?) throws {
        try authorizeReplace(bucket, key, caller: caller)
        guard !Self.isNeverObject(key), Self.fitsFileSystem(key), let folder = try folder(bucket) else { return }
        // Under the key's lock, as every writer: an append that copied the object cannot link
        // it back after the delete, nor a PUT's new record be forgotten with the old file's.
        // The file is removed inside the transaction that forgets its records (and appendable
        // row): when another program holds the database locked, the delete is refused and the
        // object keeps its bytes and headers (attack 14, F1). A missing key costs no commit.
        try withKeyLock(key) {
            func ignored(_ error: Error) -> Bool {
                switch error as? ConfinementError {
                case .notFound, .symbolicLink, .mountPoint, .notRegularFile, .notAFolder, .specialFile: return true
                default: return false
                }
            }
            guard folder.status(key) != nil else { return }
            var removed = false
            do {
                try metadata.delete(bucket: bucket.name, key: key) { db in
                    try appendables.forget(bucket, key, in: db)
                    do { try folder.removeFile(key); removed = true } catch { if !ignored(error) { throw error } }
                }
            } catch let error as ConfinementError {
                throw error
            } catch {
                throw Self.metadataNotRecorded(error, "the delete", key: key, store: metadata) { logger.error("\($0)") }
            }
            guard removed else { return }
            appendables.forgotten(bucket, key)
            hooks.run(hooks.removedForDelete, key)
        }
    }

    /// The write check of every replacing operation, plus the build's ownership.
    func authorizeReplace(_ bucket: Bucket, _ key: ObjectKey, caller: String?) throws {
        try authorizer.authorizeReplace(bucket, key, caller: caller)
    }

    func deleteObject(_ target: Target, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try deleteFile(target.bucket, target.key, caller: caller)
        return ServiceResponse(status: 204, headers: [("x-oss-request-id", exchange.requestId), ("Content-Length", "0")], payload: .data(Data()))
    }

    /// Whether an anonymous caller may delete anything at all in `bucket`: only where the bucket
    /// or one of its `objects:` rules is public-read-write (the effective ACL of a key is never
    /// more public than that).
    static func anonymousMayDeleteSomething(in bucket: Bucket) -> Bool {
        bucket.acl == .publicReadWrite || bucket.objects.contains { $0.acl.resolved(bucket: bucket.acl) == .publicReadWrite }
    }

    func deleteMultipleObjects(_ request: ServiceRequest, bucket: Bucket, query: [OSSSignature.Parameter], caller: String?,
                               exchange: Exchange) throws -> Step {
        // Before any body byte (attack 23's F2: an anonymous 8 MiB body was read into memory in a
        // private bucket first): where an anonymous caller may delete nothing, the whole request
        // is refused, as OSS does.
        if caller == nil, !Self.anonymousMayDeleteSomething(in: bucket) {
            throw OSSErrorBody.accessDenied("You have no right to delete objects in this bucket: it has no public-read-write object and the request is not signed.")
        }
        // OSS requires Content-MD5 here: a body cut short must not delete a different list.
        guard let header = request.headers["content-md5"] else {
            throw OSSErrorBody(status: 400, code: "MissingArgument", message: "DeleteMultipleObjects needs a Content-MD5 header (the base64 MD5 of the body).",
                               details: [("ArgumentName", "Content-MD5")])
        }
        guard let expected = Data(base64Encoded: header.trimmingCharacters(in: .whitespaces)), expected.count == 16 else {
            throw OSSErrorBody.invalidDigest("The Content-MD5 you specified is not the base64 of 16 bytes.")
        }
        let urlEncoded = Self.value(query, "encoding-type") == "url"
        return .needsBody(limit: Self.maxDeleteBody, BodyContinuation { [self] body in
            do {
                guard body.count <= Self.maxDeleteBody else {
                    throw OSSErrorBody(status: 400, code: "MalformedXML", message: "The body is longer than \(Self.maxDeleteBody) bytes.")
                }
                guard Data(Insecure.MD5.hash(data: body)) == expected else {
                    throw OSSErrorBody.invalidDigest("The Content-MD5 you specified did not match what was received.")
                }
                return .respond(try deleteKeys(body, bucket: bucket, urlEncoded: urlEncoded, caller: caller, exchange: exchange))
            } catch {
                return .respond(exchange.response(for: error))
            }
        })
    }

    func deleteKeys(_ body: Data, bucket: Bucket, urlEncoded: Bool, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        let text = String(decoding: body, as: UTF8.self)
        guard text.contains("<Delete>"), let objects = XMLFields.blocks("Object", in: text) else {
            throw OSSErrorBody(status: 400, code: "MalformedXML", message: "The body must be <Delete><Quiet>…</Quiet><Object><Key>…</Key></Object>…</Delete>.")
        }
        guard objects.count <= Self.maxDeleteKeys else {
            throw OSSErrorBody(status: 400, code: "MalformedXML", message: "At most \(Self.maxDeleteKeys) keys may be deleted at once; the body names \(objects.count).")
        }
        let quiet = XMLFields.values("Quiet", in: text)?.first?.lowercased() == "true"
        var names: [String] = []
        for object in objects {
            guard let key = XMLFields.values("Key", in: object)?.first else {
                throw OSSErrorBody(status: 400, code: "MalformedXML", message: "Every <Object> needs a <Key>.")
            }
            names.append(urlEncoded ? (key.removingPercentEncoding ?? key) : key)
        }
        var deleted: [String] = []
        var failed: [(String, OSSErrorBody)] = []
        for name in names {
            do {
                let key: ObjectKey
                do { key = try ObjectKey(name) } catch { throw OSSErrorBody.invalidObjectName(error.description) }
                try deleteFile(bucket, key, caller: caller)
                deleted.append(name)
            } catch let error as OSSErrorBody {
                failed.append((name, error))
            } catch {
                exchange.log("deleting '\(name)' failed: \(error)")
                failed.append((name, .internalError))
            }
        }
        let encode = Self.encoder(urlEncoded)
        return XMLReply("DeleteResult") { xml in
            if urlEncoded { xml.element("EncodingType", "url") }
            if !quiet { for name in deleted { xml.group("Deleted") { $0.element("Key", encode(name)) } } }
            // Keys that were not deleted are always named (OSS has no such element; S3's form).
            for (name, error) in failed {
                xml.group("Error") { xml in
                    xml.element("Key", encode(name))
                    xml.element("Code", error.code)
                    xml.element("Message", error.message)
                }
            }
        }.response(exchange)
    }
}
