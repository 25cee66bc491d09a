import Access
import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import ProcessLanguage

/// ListObjects (`GET /bucket/`) and ListObjectsV2 (`GET /bucket/?list-type=2`).
///
/// Who may list: a signed caller everything; an anonymous caller a bucket whose ACL is public,
/// and then only the keys it could read (an object made private by an `objects:` rule is not
/// named to it: OSS would list it, Derive does not reveal private names).
extension ObjectService {
    /// OSS's limit on max-keys.
    static let maxListKeys = 1000

    struct ListParameters {
        var prefix = ""
        var delimiter = ""
        var maxKeys = 100
        var urlEncoded = false
    }

    static func value(_ query: [OSSSignature.Parameter], _ name: String) -> String? {
        query.first { $0.name == name }.map { $0.value ?? "" }
    }

    static func listParameters(_ query: [OSSSignature.Parameter]) throws -> ListParameters {
        var parameters = ListParameters()
        parameters.prefix = value(query, "prefix") ?? ""
        parameters.delimiter = value(query, "delimiter") ?? ""
        if let text = value(query, "max-keys") {
            guard let number = Int(text), number >= 0, number <= maxListKeys else {
                throw OSSErrorBody.badRequest("max-keys must be a number from 0 to \(maxListKeys); it was '\(text)'.")
            }
            parameters.maxKeys = number
        }
        if let encoding = value(query, "encoding-type") {
            guard encoding == "url" else { throw OSSErrorBody.badRequest("encoding-type may only be 'url'; it was '\(encoding)'.") }
            parameters.urlEncoded = true
        }
        guard parameters.prefix.utf8.count <= ObjectKey.maxBytes, parameters.delimiter.utf8.count <= ObjectKey.maxBytes else {
            throw OSSErrorBody.badRequest("prefix and delimiter may be at most \(ObjectKey.maxBytes) bytes long.")
        }
        return parameters
    }

    func authorizeList(_ bucket: Bucket, caller: String?) throws {
        guard caller != nil || bucket.acl.isPublic else {
            throw OSSErrorBody.accessDenied("You have no right to list this bucket: it is private and the request is not signed.")
        }
    }

    /// Admits a listing (at most `listConcurrency` walk at once; one more is 503 SlowDown at once,
    /// before reading anything) and hands its walk to a job the HTTP front cancels when the
    /// client disconnects: the walk then stops at its next folder entry.
    func listingStep(_ request: OperationRequest, _ answer: @escaping @Sendable (WorkCancellation) throws -> ServiceResponse) throws -> Step {
        // A walk may read many entries: only `listConcurrency` run at once, so listings never
        // take every I/O thread from plain GETs (four anonymous listings starved them for 47 s).
        guard let ticket = listingGate.admit() else {
            throw OSSErrorBody(status: 503, code: "SlowDown",
                               message: "\(settings.listConcurrency) listings are running, the most this server runs at once (serve: list_max_concurrent); retry later.")
        }
        let exchange = request.exchange, head = request.request.method == "HEAD"
        return .work(WorkJob { [self] cancellation in
            defer { ticket.release() }
            hooks.run(hooks.listingAdmitted)
            do {
                var response = try answer(cancellation)
                if head { response.payload = .data(Data()) }
                return response
            } catch {
                return exchange.response(for: error)
            }
        })
    }

    static let listingCancelled = OSSErrorBody(status: 503, code: "SlowDown",
                                               message: "The listing was cancelled: the client disconnected or the server is stopping.")

    /// One page after `marker` (a position: a key, or where a sealed token resumes).
    func listing(_ bucket: Bucket, _ parameters: ListParameters, marker: [UInt8], caller: String?, cancellation: WorkCancellation) throws -> BucketListing.Page {
        guard let folder = try folder(bucket) else { return BucketListing.Page() }
        var listing = BucketListing(folder: folder, prefix: Array(parameters.prefix.utf8), delimiter: Array(parameters.delimiter.utf8),
                                    marker: marker, maxKeys: parameters.maxKeys) { [authorizer] key in
            guard authorizer.mayRead(bucket, key, caller: caller) else { return false }
            // Another project's manifest, include, lock or state file is answered as missing to
            // every reader (`isForeignControlFile`): not listed either (attack 45b's F4 listed a
            // nested project's lock that a GET of it answered 404).
            var info = stat()
            guard stat(bucket.path + "/" + key.string, &info) == 0 else { return true }
            return !authorizer.recorded.isForeignControlFile(bucket: bucket.name, key: key.string,
                                                             device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        }
        listing.budget = settings.listEntryBudget
        listing.cancelled = { cancellation.isCancelled }
        let page = listing.list()
        if page.cancelled { throw Self.listingCancelled }
        if page.budgetExhausted {
            throw OSSErrorBody.badRequest("This page would read more than \(settings.listEntryBudget) folder entries before finding a key (a folder on its way holds too many entries); derive serve reads at most that many per listing request (serve: list_max_entries). Split the folder, or list below it with a prefix that avoids it.")
        }
        return page
    }

    /// `%XX` for every byte but unreserved ones and `/` (encoding-type=url).
    static func urlEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// `urlEncode` for encoding-type=url, else the text as it is.
    static func encoder(_ urlEncoded: Bool) -> @Sendable (String) -> String {
        if urlEncoded { return { urlEncode($0) } }
        return { $0 }
    }

    static let owner = (id: "derive", name: "derive")

    func writeContents(_ xml: inout XMLReply, _ page: BucketListing.Page, bucket: Bucket, encode: (String) -> String, owner: Bool) {
        for item in page.items {
            guard case .object(let key, let status) = item else { continue }
            let etag = (try? self.etag(bucket, key)) ?? ""
            xml.group("Contents") { xml in
                xml.element("Key", encode(key.string))
                xml.element("LastModified", XMLReply.time(status.mtime))
                xml.element("ETag", etag)
                xml.element("Type", objectType(bucket, key, status, etag: etag))
                xml.element("Size", Int(status.size))
                xml.element("StorageClass", "Standard")
                if owner {
                    xml.group("Owner") { xml in
                        xml.element("ID", Self.owner.id)
                        xml.element("DisplayName", Self.owner.name)
                    }
                }
            }
        }
        for item in page.items {
            guard case .commonPrefix(let bytes) = item else { continue }
            xml.group("CommonPrefixes") { $0.element("Prefix", encode(String(decoding: bytes, as: UTF8.self))) }
        }
    }

    /// The object's ETag: the one its metadata recorded (an upload's; a multipart object's
    /// `-N` form), else the quoted upper-case MD5 of its bytes (hashed once per file version).
    func etag(_ bucket: Bucket, _ key: ObjectKey) throws -> String {
        let opened = try openRecorded(bucket, key)
        defer { close(opened.descriptor) }
        if let record = opened.record { return record.etag }
        return Self.etag(try digests.digests(of: opened.descriptor, identity: DigestCache.identity(bucket.path, key)).md5)
    }

    /// The object's type as OSS names it, the one answer of listings, HEAD and GET: Appendable
    /// when AppendObject made this very file, Multipart when a completed upload did (its ETag is
    /// `"…-N"`), else Normal.
    func objectType(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus, etag: String) -> String {
        appendables.isAppendable(bucket, key, status) ? "Appendable" : etag.contains("-") ? "Multipart" : "Normal"
    }

    func etag(_ bucket: Bucket, _ key: ObjectKey, fd: Int32) throws -> String {
        if let identity = ObjectFileIdentity(descriptor: fd), let record = metadata.read(bucket: bucket.name, key: key, identity: identity) {
            return record.etag
        }
        return Self.etag(try digests.digests(of: fd, identity: DigestCache.identity(bucket.path, key)).md5)
    }

    /// ListObjects. `NextMarker` is the page's last item, as OSS gives it; when the page ended
    /// on its budget past keys the caller may not see, it is a sealed resume marker instead
    /// (`derive-resume.…`: OSS's clients send NextMarker back unread), so no private name leaks.
    func listObjects(_ request: OperationRequest) throws -> Step {
        let bucket = request.bucket, caller = request.caller, query = request.query, exchange = request.exchange
        try authorizeList(bucket, caller: caller)
        let parameters = try Self.listParameters(query)
        let marker = Self.value(query, "marker") ?? ""
        let position = listingTokens.position(ofMarker: marker, bucket: bucket.name)
        return try listingStep(request) { [self] cancellation in
            let page = try listing(bucket, parameters, marker: position, caller: caller, cancellation: cancellation)
            let encode = Self.encoder(parameters.urlEncoded)
            var nextMarker: String?
            if page.truncated, let resume = page.resume {
                nextMarker = page.resumesAtLastItem ? encode(String(decoding: resume, as: UTF8.self))
                    : try listingTokens.marker(bucket: bucket.name, position: resume)
            }
            return XMLReply("ListBucketResult") { xml in
                xml.element("Name", bucket.name)
                xml.element("Prefix", encode(parameters.prefix))
                xml.element("Marker", encode(marker))
                xml.element("MaxKeys", parameters.maxKeys)
                xml.element("Delimiter", encode(parameters.delimiter))
                if parameters.urlEncoded { xml.element("EncodingType", "url") }
                xml.element("IsTruncated", page.truncated ? "true" : "false")
                if let nextMarker { xml.element("NextMarker", nextMarker) }
                writeContents(&xml, page, bucket: bucket, encode: encode, owner: true)
            }.response(exchange)
        }
    }

    /// ListObjectsV2. The continuation token is always sealed (`ListingTokens`).
    func listObjectsV2(_ request: OperationRequest) throws -> Step {
        let bucket = request.bucket, caller = request.caller, query = request.query, exchange = request.exchange
        try authorizeList(bucket, caller: caller)
        let parameters = try Self.listParameters(query)
        let startAfter = Self.value(query, "start-after") ?? ""
        // oss2 sends an empty token on the first page.
        let token = Self.value(query, "continuation-token").flatMap { $0.isEmpty ? nil : $0 }
        var marker = Array(startAfter.utf8)
        if let token {
            guard let resume = listingTokens.open(token, bucket: bucket.name) else {
                throw OSSErrorBody.badRequest("The continuation-token is not one this server gave (tokens do not survive a restart of derive serve; list again from the start).",
                                              code: "InvalidArgument")
            }
            if marker.lexicographicallyPrecedes(resume) { marker = resume }
        }
        let fetchOwner = Self.value(query, "fetch-owner") == "true"
        return try listingStep(request) { [self, marker] cancellation in
            let page = try listing(bucket, parameters, marker: marker, caller: caller, cancellation: cancellation)
            let encode = Self.encoder(parameters.urlEncoded)
            let next = try page.truncated ? page.resume.map { try listingTokens.seal(bucket: bucket.name, position: $0) } : nil
            return XMLReply("ListBucketResult") { xml in
                xml.element("Name", bucket.name)
                xml.element("Prefix", encode(parameters.prefix))
                if !startAfter.isEmpty { xml.element("StartAfter", encode(startAfter)) }
                if let token { xml.element("ContinuationToken", token) }
                xml.element("MaxKeys", parameters.maxKeys)
                xml.element("Delimiter", encode(parameters.delimiter))
                if parameters.urlEncoded { xml.element("EncodingType", "url") }
                xml.element("IsTruncated", page.truncated ? "true" : "false")
                if let next { xml.element("NextContinuationToken", next) }
                xml.element("KeyCount", page.items.count)
                writeContents(&xml, page, bucket: bucket, encode: encode, owner: fetchOwner)
            }.response(exchange)
        }
    }
}
