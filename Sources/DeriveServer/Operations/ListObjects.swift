import Access
import Confinement
import Foundation
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

    func listing(_ bucket: Bucket, _ parameters: ListParameters, marker: String, caller: String?) throws -> BucketListing.Page {
        guard let folder = try folder(bucket) else { return BucketListing.Page() }
        // A walk may read many entries: only `listConcurrency` run at once, so listings never
        // take every I/O thread from plain GETs (four anonymous listings starved them for 47 s).
        guard let ticket = listingGate.admit() else {
            throw OSSErrorBody(status: 503, code: "SlowDown",
                               message: "\(settings.listConcurrency) listings are running, the most this server runs at once; retry later.")
        }
        defer { ticket.release() }
        hooks.run(hooks.listingAdmitted)
        var listing = BucketListing(folder: folder, prefix: Array(parameters.prefix.utf8), delimiter: Array(parameters.delimiter.utf8),
                                    marker: Array(marker.utf8), maxKeys: parameters.maxKeys) { [authorizer] key in
            authorizer.mayRead(bucket, key, caller: caller)
        }
        listing.budget = settings.listEntryBudget
        let page = listing.list()
        if page.budgetExhausted {
            throw OSSErrorBody.badRequest("This page would read more than \(settings.listEntryBudget) folder entries before finding a key (a folder on its way holds too many entries); derive serve reads at most that many per listing request. Split the folder, or list below it with a prefix that avoids it.")
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
        return Self.etag(try digests.digests(of: opened.descriptor, identity: bucket.path + "\0" + key.string).md5)
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
        return Self.etag(try digests.digests(of: fd, identity: bucket.path + "\0" + key.string).md5)
    }

    func listObjects(_ bucket: Bucket, query: [OSSSignature.Parameter], caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizeList(bucket, caller: caller)
        let parameters = try Self.listParameters(query)
        let marker = Self.value(query, "marker") ?? ""
        let page = try listing(bucket, parameters, marker: marker, caller: caller)
        let encode = Self.encoder(parameters.urlEncoded)
        return XMLReply("ListBucketResult") { xml in
            xml.element("Name", bucket.name)
            xml.element("Prefix", encode(parameters.prefix))
            xml.element("Marker", encode(marker))
            xml.element("MaxKeys", parameters.maxKeys)
            xml.element("Delimiter", encode(parameters.delimiter))
            if parameters.urlEncoded { xml.element("EncodingType", "url") }
            xml.element("IsTruncated", page.truncated ? "true" : "false")
            if page.truncated, let last = page.items.last {
                xml.element("NextMarker", encode(String(decoding: last.bytes, as: UTF8.self)))
            }
            writeContents(&xml, page, bucket: bucket, encode: encode, owner: true)
        }.response(exchange)
    }

    func listObjectsV2(_ bucket: Bucket, query: [OSSSignature.Parameter], caller: String?, exchange: Exchange) throws -> ServiceResponse {
        try authorizeList(bucket, caller: caller)
        let parameters = try Self.listParameters(query)
        let startAfter = Self.value(query, "start-after") ?? ""
        // oss2 sends an empty token on the first page.
        let token = Self.value(query, "continuation-token").flatMap { $0.isEmpty ? nil : $0 }
        var marker = startAfter
        if let token {
            // The token is the last item of the previous page, base64: opaque to clients.
            guard let data = Base64URL.decode(token), let last = String(validating: Array(data), as: UTF8.self) else {
                throw OSSErrorBody.badRequest("The continuation-token is not one this server gave.", code: "InvalidArgument")
            }
            if Array(marker.utf8).lexicographicallyPrecedes(Array(last.utf8)) { marker = last }
        }
        let fetchOwner = Self.value(query, "fetch-owner") == "true"
        let page = try listing(bucket, parameters, marker: marker, caller: caller)
        let encode = Self.encoder(parameters.urlEncoded)
        return XMLReply("ListBucketResult") { xml in
            xml.element("Name", bucket.name)
            xml.element("Prefix", encode(parameters.prefix))
            if !startAfter.isEmpty { xml.element("StartAfter", encode(startAfter)) }
            if let token { xml.element("ContinuationToken", token) }
            xml.element("MaxKeys", parameters.maxKeys)
            xml.element("Delimiter", encode(parameters.delimiter))
            if parameters.urlEncoded { xml.element("EncodingType", "url") }
            xml.element("IsTruncated", page.truncated ? "true" : "false")
            if page.truncated, let last = page.items.last {
                xml.element("NextContinuationToken", Base64URL.encode(Data(last.bytes)))
            }
            xml.element("KeyCount", page.items.count)
            writeContents(&xml, page, bucket: bucket, encode: encode, owner: fetchOwner)
        }.response(exchange)
    }
}
