import Access
import Confinement
import Crypto
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// GetObjectAcl and CopyObject.
extension ObjectService {
    /// The object's ACL as OSS reports it: its own setting (`default` when it has none and the
    /// bucket's ACL applies), or the effective ACL whenever that differs from what `default`
    /// would mean (a built derivative, or an object made private because the build's record
    /// cannot be read). One definition: `Authorizer`.
    func objectACL(_ target: Target, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizer.authorizeRead(target.bucket, target.key, caller: caller)
        guard kind(target.bucket, target.key) == .file else { throw OSSErrorBody.noSuchKey(target.key.string) }
        let own = authorizer.objectACLHeader(target.bucket, target.key)
        let effective = authorizer.effectiveACL(target.bucket, target.key)
        let grant: String
        if own == "default" { grant = effective == target.bucket.acl ? "default" : effective.rawValue } else { grant = effective.rawValue }
        return Self.aclPolicy(grant).response(exchange)
    }

    // MARK: Copying

    /// Most bytes CopyObject copies (OSS's limit; larger objects need UploadPartCopy).
    static let maxCopyBytes = 1024 * 1024 * 1024

    /// `x-oss-copy-source: /bucket/key` (percent-encoded key) as a bucket of the manifest and a key.
    func copySource(_ header: String) throws -> (Bucket, ObjectKey) {
        let text = header
        if let question = text.firstIndex(of: "?") {
            // OSS reads `?versionId=` here (a version: Derive keeps one per object) and nothing
            // else; copying the plain object instead would copy something not asked for.
            let query = SignedRequest.parseQuery(String(text[text.index(after: question)...]))
            // Sub-resource names are read in any case, as everywhere else.
            if query.contains(where: { $0.name.lowercased() == "versionid" }) {
                throw OSSErrorBody.notImplemented(OSSOperation("CopyObject from a versionId"))
            }
            throw OSSErrorBody.badRequest("x-oss-copy-source names an object, /<bucket>/<key> with a percent-encoded key; '?\(query.map(\.name).joined(separator: "&"))' is not supported (to save a processed view, POST ?x-oss-process with sys/saveas).")
        }
        guard let bytes = try? ObjectKey.percentDecode(Array(text.utf8)) else {
            throw OSSErrorBody.badRequest("x-oss-copy-source has a malformed percent escape.")
        }
        let trimmed = bytes.first == UInt8(ascii: "/") ? Array(bytes.dropFirst()) : bytes
        guard let slash = trimmed.firstIndex(of: UInt8(ascii: "/")) else {
            throw OSSErrorBody.badRequest("x-oss-copy-source must be /<bucket>/<key>.")
        }
        let name = String(decoding: trimmed[..<slash], as: UTF8.self)
        guard let bucket = manifest.bucket(named: name) else { throw OSSErrorBody.noSuchBucket(name) }
        do { return (bucket, try ObjectKey(bytes: Array(trimmed[(slash + 1)...]))) } catch {
            throw OSSErrorBody.invalidObjectName(error.description)
        }
    }

    /// The copy source opened for reading after the caller was authorised to read it, as a GET
    /// of it would be (a forbidden source answers like a forbidden GET).
    func openCopySource(_ request: ServiceRequest, caller: String?) throws -> (bucket: Bucket, key: ObjectKey, fd: Int32) {
        let (bucket, key) = try copySource(request.headers["x-oss-copy-source"] ?? "")
        try authorizer.authorizeRead(bucket, key, caller: caller)
        return (bucket, key, try open(bucket, key))
    }

    /// `x-oss-copy-source-if-*`: 412 PreconditionFailed for If-Match and If-Unmodified-Since,
    /// 304 for If-None-Match and If-Modified-Since (returns false: nothing to copy), as OSS
    /// answers CopyObject.
    func checkCopyConditions(_ request: ServiceRequest, etag: String, modified: Int64) throws -> Bool {
        let seconds = modified / 1_000_000_000
        if let match = request.headers["x-oss-copy-source-if-match"], !Self.matches(match, etag) {
            throw OSSErrorBody(status: 412, code: "PreconditionFailed", message: "x-oss-copy-source-if-match does not name the source's ETag.")
        }
        if let date = request.headers["x-oss-copy-source-if-unmodified-since"].flatMap(Self.httpDate), seconds > date {
            throw OSSErrorBody(status: 412, code: "PreconditionFailed", message: "The source was modified after x-oss-copy-source-if-unmodified-since.")
        }
        if let noneMatch = request.headers["x-oss-copy-source-if-none-match"], Self.matches(noneMatch, etag) { return false }
        if let date = request.headers["x-oss-copy-source-if-modified-since"].flatMap(Self.httpDate), seconds <= date { return false }
        return true
    }

    /// An HTTP date (`Tue, 14 Nov 2023 22:13:20 GMT`) in Unix seconds; nil when invalid (ignored, as OSS does).
    static func httpDate(_ text: String) -> Int64? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
    }

    /// Copies `length` bytes of `fd` from `offset` into `file`, updating `md5`.
    static func copyBytes(from fd: Int32, offset: Int, length: Int, into file: TemporaryFile, md5: inout Insecure.MD5) throws {
        let source = OpenFile(descriptor: dup(fd), offset: Int64(offset), length: length)
        var position = 0
        while position < length {
            let piece = try source.read(at: position, count: 1 << 20)
            guard !piece.isEmpty else { throw OSSErrorBody.internalError }
            md5.update(data: piece)
            try file.write(piece)
            position += piece.count
        }
    }

    func copyObject(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        let directive = request.headers["x-oss-metadata-directive"]?.uppercased() ?? "COPY"
        guard directive == "COPY" || directive == "REPLACE" else {
            throw OSSErrorBody.badRequest("x-oss-metadata-directive must be COPY or REPLACE; it was '\(directive)'.")
        }
        if directive == "REPLACE" { try ObjectMetadata.checkLimits(ObjectMetadata.headers(from: request.headers)) }
        let (sourceBucket, sourceKey) = try copySource(request.headers["x-oss-copy-source"] ?? "")
        try authorizer.authorizeRead(sourceBucket, sourceKey, caller: caller)
        let opened = try openRecorded(sourceBucket, sourceKey)
        let source = (bucket: sourceBucket, key: sourceKey, fd: opened.descriptor)
        defer { close(source.fd) }
        try authorizeObjectWrite(request.headers, target.bucket, target.key, caller: caller)
        try refuseOverwrite(request, target.bucket, target.key)
        var info = stat()
        guard fstat(source.fd, &info) == 0 else { throw OSSErrorBody.internalError }
        let size = Int(info.st_size)
        guard size <= Self.maxCopyBytes else {
            throw OSSErrorBody(status: 400, code: "InvalidArgument",
                               message: "The source is \(size) bytes; CopyObject copies at most \(Self.maxCopyBytes). Use UploadPartCopy (resumable_copy) for larger objects.")
        }
        let sourceETag = try opened.record?.etag ?? Self.etag(digests.digests(of: source.fd, identity: DigestCache.identity(source.bucket.path, source.key)).md5)
        guard try checkCopyConditions(request, etag: sourceETag, modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000) else {
            return Self.notModified(sourceETag, exchange: exchange)
        }
        let file = try createFile(target.bucket, target.key, exchange: exchange)
        var md5 = Insecure.MD5()
        try Self.copyBytes(from: source.fd, offset: 0, length: size, into: file, md5: &md5)
        let bytesMD5 = Array(md5.finalize())
        var etag = Self.etag(bytesMD5)
        // The copy's metadata: the source's record (COPY), or the request's headers (REPLACE),
        // recorded before the copy is linked.
        let sourceRecord: ObjectMetadata? = directive == "REPLACE" ? nil : opened.record
        if sourceRecord != nil { etag = sourceETag }
        let copyETag = etag
        try link(file, bucket: target.bucket.name, key: target.key, exchange: exchange, verify: {
            try refuseOverwrite(request, target.bucket, target.key)
        }, record: { identity in
            let lastModified = Int(identity.modified / 1_000_000_000)
            if directive == "REPLACE" {
                return ObjectMetadata(headers: ObjectMetadata.headers(from: request.headers), etag: copyETag, lastModified: lastModified)
            }
            guard var copied = sourceRecord else { return nil }
            copied.lastModified = lastModified
            // The source's ETag (a `-N` one is not the bytes' MD5): the bytes' MD5 kept with it (F2).
            let hex = Self.hex(bytesMD5, uppercase: true)
            copied.contentMD5 = copied.etag.contains(hex) ? nil : hex
            return copied
        }, link: { try commit(file, replacing: !Self.forbidsOverwrite(request)) })
        let modified = (try? folder(target.bucket))??.status(target.key)?.mtime ?? Int64(clock()) * 1_000_000_000
        return XMLReply("CopyObjectResult") { xml in
            xml.element("ETag", etag)
            xml.element("LastModified", XMLReply.time(modified))
        }.response(exchange, extra: [("ETag", etag)])
    }

    /// Links `file` at `key` with its metadata recorded first, under the identity of the file
    /// being linked and under the key's lock (as PutObject does), so a GET racing the write
    /// answers the old file with its headers or the new one with its own, never the new bytes
    /// with default headers. Every writer of a key (put, append, copy, complete, delete,
    /// save-as) holds that lock, so `verify` (run under it, before anything is recorded) sees
    /// the key as the link will replace it: an append checks its source is still the object,
    /// a forbid-overwrite write that no object exists. `record` gives the new file's metadata
    /// (nil: none, defaults apply); `link` does the commit (callers map its errors); `linked`
    /// runs under the lock after the commit. A record that cannot be saved throws (503 when
    /// another program holds the database locked) and discards `file`: nothing is replaced.
    /// Returns the linked file's identity.
    @discardableResult
    func link(_ file: TemporaryFile, bucket: String, key: ObjectKey, exchange: Exchange, verify: () throws -> Void = {},
              record: (ObjectFileIdentity) -> ObjectMetadata?, link: () throws -> Void,
              linked: (ObjectFileIdentity) -> Void = { _ in }) throws -> ObjectFileIdentity? {
        try withKeyLock(key) {
            // Its final bytes: an append or a completed upload can make a manifest of its parts.
            try Self.refuseProjectFile(file, key)
            try verify()
            if let status = file.currentStatus() {
                let identity = ObjectFileIdentity(status)
                if let metadata = record(identity) {
                    // Not saved: nothing is linked, the object keeps its bytes and headers (attack 14, F1).
                    do { try self.metadata.record(bucket: bucket, key: key, identity: identity, metadata: metadata) } catch {
                        file.discard()
                        throw metadataNotRecorded(error, "the write", key: key, exchange: exchange)
                    }
                }
            }
            try link()
            guard let identity = file.committedStatus.map(ObjectFileIdentity.init) else { return nil }
            do { try metadata.keepOnly(bucket: bucket, key: key, identity: identity) } catch {
                exchange.log("removing stale metadata of '\(key)' failed: \(error)")
            }
            linked(identity)
            return identity
        }
    }

    /// Runs `body` holding the lock every writer of `key` takes.
    func withKeyLock<Result>(_ key: ObjectKey, _ body: () throws -> Result) rethrows -> Result {
        let keyLock = KeyLocks.shared.lock(for: key.bytes)
        keyLock.lock()
        defer { keyLock.unlock() }
        return try body()
    }

    /// `x-oss-forbid-overwrite: true`: the one check of every writer that can replace a key
    /// (PUT, copy, initiate and complete), 409 FileAlreadyExists when an object is there. Called
    /// under the key's lock by the writers that link (race-free with Derive's writers); the
    /// commit then links without replacing, so a file made behind the server's back is kept too.
    func refuseOverwrite(_ request: ServiceRequest, _ bucket: Bucket, _ key: ObjectKey) throws {
        guard Self.forbidsOverwrite(request), kind(bucket, key) == .file else { return }
        throw OSSErrorBody.fileAlreadyExists
    }

    static func forbidsOverwrite(_ request: ServiceRequest) -> Bool {
        request.headers["x-oss-forbid-overwrite"]?.trimmingCharacters(in: .whitespaces).lowercased() == "true"
    }

    /// CompleteMultipartUpload: its own `x-oss-forbid-overwrite` when it sends one (`true` or
    /// `false`, as OSS reads it on Complete), else the Initiate request's. An Initiate with the
    /// header names the object the upload will write, and oss2's `resumable_upload` sends the
    /// caller's headers on Initiate only: without this its forbid-overwrite would be lost.
    static func forbidsOverwrite(_ request: ServiceRequest, initiated: Bool) -> Bool {
        guard let value = request.headers["x-oss-forbid-overwrite"] else { return initiated }
        return value.trimmingCharacters(in: .whitespaces).lowercased() == "true"
    }

    /// Moves a written file into place (without replacing an object when `replacing` is false);
    /// a folder in the way is OSS's 400.
    func commit(_ file: TemporaryFile, replacing: Bool = true) throws {
        do { try file.commit(replacing: replacing) } catch {
            if case ConfinementError.alreadyExists = error { throw OSSErrorBody.fileAlreadyExists }
            if case ConfinementError.notRegularFile = error { throw OSSErrorBody.invalidObjectName("a folder of objects already has this name") }
            if let kept = Self.keptAtKey(error) { throw kept }
            throw error
        }
    }

    /// A link, FIFO, socket or device at the key (or made there while the bytes were written)
    /// is never replaced: refused like a forbidden path, without naming what is there (the
    /// answer must not reveal the bucket's layout).
    static func keptAtKey(_ error: Error) -> OSSErrorBody? {
        switch error as? ConfinementError {
        case .symbolicLink, .mountPoint, .specialFile: return .keptAtKey
        default: return nil
        }
    }
}
