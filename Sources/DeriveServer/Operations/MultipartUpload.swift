import Access
import Confinement
import Crypto
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// InitiateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
/// AbortMultipartUpload, ListParts and ListMultipartUploads. Parts live in the state folder
/// (`MultipartStore`) until Complete writes the object into its bucket in one rename.
///
/// Every step is authorised as the write it leads to (the target's effective ACL, and never a
/// key the build owns), so a caller cannot stage parts it could not complete.
extension ObjectService {
    /// Locks per upload id (striped), apart from the object keys' locks: Complete, Abort and a
    /// part's start and end of one upload run one at a time, each checking under the lock that
    /// the upload still exists. So exactly one of racing Completes and Aborts wins and the others
    /// answer 404 NoSuchUpload. Order: an upload's lock, then its key's lock (Complete's link).
    static let uploadLocks = KeyLocks()

    func serialised<T>(_ id: String, _ body: () throws -> T) rethrows -> T {
        let lock = Self.uploadLocks.lock(for: Array(id.utf8))
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    func uploadId(_ target: Target) throws -> String {
        guard let id = Self.value(target.query, "uploadId"), !id.isEmpty else {
            throw OSSErrorBody.badRequest("uploadId is missing.")
        }
        return id
    }

    func initiateMultipartUpload(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizeObjectWrite(request.headers, target.bucket, target.key, caller: caller)
        guard Self.fitsFileSystem(target.key), !Self.isNeverObject(target.key) else {
            throw OSSErrorBody.invalidObjectName("the key cannot be a file here")
        }
        let stored = ObjectMetadata.headers(from: request.headers)
        try ObjectMetadata.checkLimits(stored)
        try refuseOverwrite(request, target.bucket, target.key)
        let id = try multipart.initiate(bucket: target.bucket, key: target.key, headers: stored, anonymous: caller == nil,
                                        forbidOverwrite: Self.forbidsOverwrite(request))
        return XMLReply("InitiateMultipartUploadResult") { xml in
            xml.element("Bucket", target.bucket.name)
            xml.element("Key", target.key.string)
            xml.element("UploadId", id)
        }.response(exchange)
    }

    func partNumber(_ target: Target) throws -> Int {
        guard let text = Self.value(target.query, "partNumber"), let number = Int(text) else {
            throw OSSErrorBody.badRequest("partNumber must be a number from 1 to \(multipart.limits.maxParts).")
        }
        return number
    }

    func uploadPart(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> Step {
        try authorizeReplace(target.bucket, target.key, caller: caller)
        let id = try uploadId(target)
        let number = try partNumber(target)
        _ = try multipart.info(id, bucket: target.bucket, key: target.key)
        if request.headers["x-oss-copy-source"] != nil {
            return .respond(try uploadPartCopy(request, target: target, id: id, number: number, caller: caller, exchange: exchange))
        }
        let headers = try BodyHeaders(request, maxBytes: multipart.limits.maxPartBytes)
        let file = try serialised(id) {
            _ = try multipart.info(id, bucket: target.bucket, key: target.key)
            return try multipart.beginPart(id, number: number, declared: headers.declared)
        }
        return .upload(headers.upload(file, exchange: exchange, key: target.key, maxBytes: multipart.limits.maxPartBytes,
                                      folderGone: MultipartStore.noSuchUpload()) { [self] etag in
            // Aborted or completed while the body streamed: the part has no upload to join.
            // (Under the upload's lock: a Complete under way finishes first, without this part.)
            guard (try? serialised(id, { try multipart.info(id, bucket: target.bucket, key: target.key) })) != nil else {
                multipart.remove(id)
                return exchange.response(for: MultipartStore.noSuchUpload())
            }
            return ServiceResponse(status: 200, headers: [("x-oss-request-id", exchange.requestId), ("ETag", etag), ("Content-Length", "0")],
                                   payload: .data(Data()))
        })
    }

    /// A part copied from an object (`x-oss-copy-source`, optional `x-oss-copy-source-range: bytes=a-b`).
    func uploadPartCopy(_ request: ServiceRequest, target: Target, id: String, number: Int, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        let source = try openCopySource(request, caller: caller)
        defer { close(source.fd) }
        var info = stat()
        guard fstat(source.fd, &info) == 0 else { throw OSSErrorBody.internalError }
        let size = Int(info.st_size)
        var range = 0..<size
        if let header = request.headers["x-oss-copy-source-range"] {
            let spec = header.trimmingCharacters(in: .whitespaces)
            let bounds = spec.hasPrefix("bytes=") ? spec.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false) : []
            guard bounds.count == 2, let first = Int(bounds[0]), let last = Int(bounds[1]), first <= last, last < size else {
                throw OSSErrorBody(status: 416, code: "InvalidRange", message: "x-oss-copy-source-range must be bytes=<first>-<last> within the source's \(size) bytes.")
            }
            range = first..<(last + 1)
        }
        guard range.count <= multipart.limits.maxPartBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "A part may hold at most \(multipart.limits.maxPartBytes) bytes in derive serve; copy a smaller range.")
        }
        let sourceETag = Self.etag(try digests.digests(of: source.fd, identity: DigestCache.identity(source.bucket.path, source.key)).md5)
        guard try checkCopyConditions(request, etag: sourceETag, modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000) else {
            return Self.notModified(sourceETag, exchange: exchange)
        }
        let file = try serialised(id) {
            _ = try multipart.info(id, bucket: target.bucket, key: target.key)
            return try multipart.beginPart(id, number: number, declared: range.count)
        }
        var md5 = Insecure.MD5()
        try Self.copyBytes(from: source.fd, offset: range.lowerBound, length: range.count, into: file, md5: &md5)
        // Completed or aborted while the bytes were copied: the part has no upload to join.
        let committed = Result { try file.commit() }
        guard (try? serialised(id, { try multipart.info(id, bucket: target.bucket, key: target.key) })) != nil else {
            multipart.remove(id)
            throw MultipartStore.noSuchUpload()
        }
        _ = try committed.get()
        let etag = Self.etag(Array(md5.finalize()))
        return XMLReply("CopyPartResult") { xml in
            xml.element("LastModified", XMLReply.time(Int64(clock()) * 1_000_000_000))
            xml.element("ETag", etag)
        }.response(exchange, extra: [("ETag", etag)])
    }

    /// The ETag of a part (the quoted upper-case MD5 of its bytes) and its MD5.
    func partDigest(_ part: MultipartStore.Part) throws -> [UInt8] {
        let fd = try multipart.openPart(part)
        defer { close(fd) }
        return try digests.digests(of: fd, identity: DigestCache.identity(multipart.root, part.key)).md5
    }

    /// One part as Complete uses it: opened once, so the bytes whose MD5 was checked are the
    /// bytes copied even when the part is uploaded again meanwhile (a re-upload renames a new
    /// file over the name; this descriptor keeps the old one).
    struct OpenedPart {
        var number: Int
        var fd: Int32
        var size: Int
        var md5: [UInt8]
    }

    func openForCompletion(_ part: MultipartStore.Part) throws -> OpenedPart {
        let fd = try multipart.openPart(part)
        do {
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw OSSErrorBody.internalError }
            let md5 = try digests.digests(of: fd, identity: DigestCache.identity(multipart.root, part.key)).md5
            return OpenedPart(number: part.number, fd: fd, size: Int(info.st_size), md5: md5)
        } catch {
            close(fd)
            throw error
        }
    }

    func completeMultipartUpload(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> Step {
        try authorizeObjectWrite(request.headers, target.bucket, target.key, caller: caller)
        let id = try uploadId(target)
        _ = try multipart.info(id, bucket: target.bucket, key: target.key)
        let completeAll = request.headers["x-oss-complete-all"]?.lowercased() == "yes"
        let urlEncoded = Self.value(target.query, "encoding-type") == "url"
        // 10 000 parts of about 100 bytes of XML each.
        let limit = 2 * 1024 * 1024
        return .needsBody(limit: limit, BodyContinuation { [self] body in
            do {
                guard body.count <= limit else {
                    throw OSSErrorBody(status: 400, code: "MalformedXML", message: "The body is longer than \(limit) bytes.")
                }
                // OSS refuses a part list together with complete-all: the caller would get parts it did not name.
                guard !completeAll || body.isEmpty else {
                    throw OSSErrorBody(status: 400, code: "InvalidArgument",
                                       message: "x-oss-complete-all: yes completes the upload with every part uploaded; it takes no body, and this request has one (\(body.count) bytes). Send either the header or the part list.")
                }
                // The upload is looked up again under its lock: an Abort or another Complete may
                // have finished while the body came.
                return .respond(try serialised(id) {
                    let info = try multipart.info(id, bucket: target.bucket, key: target.key)
                    return try assemble(request, target, id: id, headers: info.headers ?? [:],
                                        forbidOverwrite: Self.forbidsOverwrite(request, initiated: info.forbidOverwrite == true),
                                        body: body, completeAll: completeAll, urlEncoded: urlEncoded, caller: caller, exchange: exchange)
                })
            } catch {
                return .respond(exchange.response(for: error))
            }
        })
    }

    static func invalidPart(_ message: String) -> OSSErrorBody {
        OSSErrorBody(status: 400, code: "InvalidPart", message: message, ec: "0042-00000311")
    }

    /// Checks the client's part list against the stored parts and writes the object: the parts
    /// in order into a temporary file beside the target, renamed into place. The ETag is OSS's:
    /// the MD5 of the parts' binary MD5s, then `-<count>`, upper-case hex in quotes.
    func assemble(_ request: ServiceRequest, _ target: Target, id: String, headers: [String: String], forbidOverwrite: Bool, body: Data,
                  completeAll: Bool, urlEncoded: Bool, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        let stored = Dictionary(multipart.parts(id).map { ($0.number, $0) }, uniquingKeysWith: { a, _ in a })
        var chosen: [OpenedPart] = []
        defer { for part in chosen { close(part.fd) } }
        if completeAll {
            for number in stored.keys.sorted() { chosen.append(try openForCompletion(stored[number]!)) }
        } else {
            let text = String(decoding: body, as: UTF8.self)
            guard text.contains("<CompleteMultipartUpload>"), let blocks = XMLFields.blocks("Part", in: text) else {
                throw OSSErrorBody(status: 400, code: "MalformedXML", message: "The body must be <CompleteMultipartUpload><Part><PartNumber>…</PartNumber><ETag>…</ETag></Part>…</CompleteMultipartUpload>.")
            }
            var previous = 0
            for block in blocks {
                guard let numberText = XMLFields.values("PartNumber", in: block)?.first, let number = Int(numberText.trimmingCharacters(in: .whitespaces)),
                      let tag = XMLFields.values("ETag", in: block)?.first else {
                    throw OSSErrorBody(status: 400, code: "MalformedXML", message: "Every <Part> needs a <PartNumber> and an <ETag>.")
                }
                guard number > previous else {
                    throw OSSErrorBody(status: 400, code: "InvalidPartOrder", message: "The parts must be listed in ascending order of PartNumber.", ec: "0042-00000312")
                }
                previous = number
                guard let part = stored[number] else { throw Self.invalidPart("Part \(number) was not uploaded.") }
                let opened = try openForCompletion(part)
                chosen.append(opened)
                let wanted = tag.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")).uppercased()
                guard wanted == Self.hex(opened.md5, uppercase: true) else { throw Self.invalidPart("The ETag of part \(number) is not \(tag).") }
            }
        }
        guard !chosen.isEmpty else { throw Self.invalidPart("No part was named (or uploaded).") }
        for part in chosen.dropLast() where part.size < multipart.limits.minPartBytes {
            throw OSSErrorBody(status: 400, code: "EntityTooSmall",
                               message: "Part \(part.number) is \(part.size) bytes; every part but the last must be at least \(multipart.limits.minPartBytes).",
                               ec: "0042-00000310")
        }
        let total = chosen.reduce(0) { $0 + $1.size }
        guard total <= multipart.limits.maxUploadBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "The parts hold \(total) bytes; one upload may hold at most \(multipart.limits.maxUploadBytes).")
        }
        let file = try createFile(target.bucket, target.key, exchange: exchange)
        var bytesMD5 = Insecure.MD5()
        for part in chosen {
            try Self.copyBytes(from: part.fd, offset: 0, length: part.size, into: file, md5: &bytesMD5)
        }
        // Kept with the record: its `-N` ETag is not the bytes' MD5 (attack 14, F2).
        let contentMD5 = Self.hex(bytesMD5.finalize(), uppercase: true)
        var combined = Insecure.MD5()
        for part in chosen { combined.update(data: part.md5) }
        let etag = "\"" + Self.hex(combined.finalize(), uppercase: true) + "-\(chosen.count)\""
        // Later GETs, HEADs and listings answer this ETag and the Initiate request's headers.
        let initiated = headers
        try link(file, bucket: target.bucket.name, key: target.key, exchange: exchange, verify: {
            if forbidOverwrite, kind(target.bucket, target.key) == .file { throw OSSErrorBody.fileAlreadyExists }
        }, record: { identity in
            ObjectMetadata(headers: initiated, etag: etag, lastModified: Int(identity.modified / 1_000_000_000), contentMD5: contentMD5)
        }, link: { try commit(file, replacing: !forbidOverwrite) })
        multipart.remove(id)
        let encode = Self.encoder(urlEncoded)
        return XMLReply("CompleteMultipartUploadResult") { xml in
            if urlEncoded { xml.element("EncodingType", "url") }
            xml.element("Location", "http://\(exchange.host)/\(target.bucket.name)/\(Self.urlEncode(target.key.string))")
            xml.element("Bucket", target.bucket.name)
            xml.element("Key", encode(target.key.string))
            xml.element("ETag", etag)
        }.response(exchange, extra: [("ETag", etag)])
    }

    func abortMultipartUpload(_ target: Target, caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizeReplace(target.bucket, target.key, caller: caller)
        let id = try uploadId(target)
        try serialised(id) {
            _ = try multipart.info(id, bucket: target.bucket, key: target.key)
            multipart.remove(id)
        }
        return ServiceResponse(status: 204, headers: [("x-oss-request-id", exchange.requestId), ("Content-Length", "0")], payload: .data(Data()))
    }

    /// ListParts' checks, from the request head.
    func checkListParts(_ target: Target, caller: String?) throws {
        try authorizeReplace(target.bucket, target.key, caller: caller)
        _ = try multipart.info(try uploadId(target), bucket: target.bucket, key: target.key)
    }

    /// The parts of one upload (at most 1 000 per page, each hashed once per version; stopped
    /// between parts when the client left).
    func listParts(_ target: Target, exchange: Exchange, cancellation: WorkCancellation) throws -> ServiceResponse {
        let id = try uploadId(target)
        _ = try multipart.info(id, bucket: target.bucket, key: target.key)
        let marker = Int(Self.value(target.query, "part-number-marker") ?? "") ?? 0
        let maxParts = min(max(Int(Self.value(target.query, "max-parts") ?? "") ?? 1000, 1), 1000)
        let after = multipart.parts(id).filter { $0.number > marker }
        let page = Array(after.prefix(maxParts))
        let truncated = after.count > page.count
        var rows: [(MultipartStore.Part, String)] = []
        for part in page {
            if cancellation.isCancelled { throw Self.listingCancelled }
            rows.append((part, Self.etag(try partDigest(part))))
        }
        return XMLReply("ListPartsResult") { xml in
            xml.element("Bucket", target.bucket.name)
            xml.element("Key", target.key.string)
            xml.element("UploadId", id)
            xml.element("PartNumberMarker", marker)
            xml.element("NextPartNumberMarker", page.last?.number ?? marker)
            xml.element("MaxParts", maxParts)
            xml.element("IsTruncated", truncated ? "true" : "false")
            for (part, etag) in rows {
                xml.group("Part") { xml in
                    xml.element("PartNumber", part.number)
                    xml.element("LastModified", XMLReply.time(part.status.mtime))
                    xml.element("ETag", etag)
                    xml.element("Size", Int(part.status.size))
                }
            }
        }.response(exchange)
    }

    /// The bucket's open uploads as OSS pages them: by key, then by upload id (byte order), after
    /// `key-marker` (with `upload-id-marker`: the marker key's uploads after that id, then later
    /// keys; without it: keys after the marker), within `prefix`, keys holding `delimiter` after
    /// the prefix rolled up into one common prefix, at most `max-uploads` items (uploads and
    /// prefixes) per page. Every open upload is read (at most `maxOpenUploads` exist).
    func checkListUploads(_ bucket: Bucket, caller: String?) throws {
        guard caller != nil || bucket.acl == .publicReadWrite else {
            throw OSSErrorBody.accessDenied("You have no right to list this bucket's uploads: the request is not signed.")
        }
    }

    func listMultipartUploads(_ bucket: Bucket, query: [OSSSignature.Parameter], caller: String?, exchange: Exchange,
                              cancellation: WorkCancellation) throws -> ServiceResponse {
        try checkListUploads(bucket, caller: caller)
        let prefix = Self.value(query, "prefix") ?? ""
        let delimiter = Self.value(query, "delimiter") ?? ""
        let keyMarker = Self.value(query, "key-marker") ?? ""
        let idMarker = keyMarker.isEmpty ? "" : (Self.value(query, "upload-id-marker") ?? "")
        let urlEncoded = Self.value(query, "encoding-type") == "url"
        let maxText = Self.value(query, "max-uploads") ?? "1000"
        guard let maxUploads = Int(maxText), (1...1000).contains(maxUploads) else {
            throw OSSErrorBody.badRequest("max-uploads must be a number from 1 to 1000; it was '\(maxText)'.")
        }
        guard delimiter.utf8.count <= 1024, prefix.utf8.count <= 1024, keyMarker.utf8.count <= 1024, idMarker.utf8.count <= 1024 else {
            throw OSSErrorBody.badRequest("prefix, delimiter, key-marker and upload-id-marker may hold at most 1024 bytes each.")
        }
        let before = { (a: String, b: String) in Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) }
        // Keys are bytes: `String ==` is canonical equivalence (`caf\u{E9}` == `cafe\u{301}`), which
        // would make the order inconsistent and a marker skip another key's uploads.
        let same = { (a: String, b: String) in a.utf8.elementsEqual(b.utf8) }
        let open = multipart.openUploads { cancellation.isCancelled }
        if cancellation.isCancelled { throw Self.listingCancelled }
        let uploads = open
            .filter { $0.info.bucket == bucket.name && $0.info.key.utf8.starts(with: prefix.utf8) }
            .filter { upload in
                guard caller == nil, let key = try? ObjectKey(upload.info.key) else { return true }
                return authorizer.mayWrite(bucket, key, caller: nil)
            }
            .sorted { same($0.info.key, $1.info.key) ? before($0.id, $1.id) : before($0.info.key, $1.info.key) }
        // Items in order: an upload, or the common prefix its key rolls up into.
        enum Item { case upload(String, MultipartStore.Info), common(String) }
        var items: [Item] = []
        for upload in uploads {
            let key = upload.info.key
            if !keyMarker.isEmpty {
                if same(key, keyMarker) {
                    guard !idMarker.isEmpty, before(idMarker, upload.id) else { continue }
                } else if !before(keyMarker, key) {
                    continue
                }
            }
            if !delimiter.isEmpty, let range = key.utf8.dropFirst(prefix.utf8.count).firstRange(of: delimiter.utf8) {
                let common = String(decoding: key.utf8[..<range.upperBound], as: UTF8.self)
                // A prefix handed out as the marker was listed on an earlier page.
                guard !same(common, keyMarker) else { continue }
                if case .common(let last)? = items.last, same(last, common) { continue }
                items.append(.common(common))
                continue
            }
            items.append(.upload(upload.id, upload.info))
        }
        let page = Array(items.prefix(maxUploads))
        let truncated = items.count > page.count
        var nextKey = "", nextId = ""
        if truncated, let last = page.last {
            switch last {
            case .upload(let id, let info): nextKey = info.key; nextId = id
            case .common(let common): nextKey = common
            }
        }
        let encode = Self.encoder(urlEncoded)
        return XMLReply("ListMultipartUploadsResult") { xml in
            xml.element("Bucket", bucket.name)
            if urlEncoded { xml.element("EncodingType", "url") }
            xml.element("KeyMarker", encode(keyMarker))
            xml.element("UploadIdMarker", idMarker)
            xml.element("NextKeyMarker", encode(nextKey))
            xml.element("NextUploadIdMarker", nextId)
            xml.element("Delimiter", encode(delimiter))
            xml.element("Prefix", encode(prefix))
            xml.element("MaxUploads", maxUploads)
            xml.element("IsTruncated", truncated ? "true" : "false")
            for item in page {
                switch item {
                case .upload(let id, let info):
                    xml.group("Upload") { xml in
                        xml.element("Key", encode(info.key))
                        xml.element("UploadId", id)
                        xml.element("Initiated", XMLReply.time(Int64(info.initiated) * 1_000_000_000))
                    }
                case .common(let common):
                    xml.group("CommonPrefixes") { xml in xml.element("Prefix", encode(common)) }
                }
            }
        }.response(exchange)
    }
}
