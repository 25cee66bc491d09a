import Access
import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import ProcessLanguage

/// GetObject and HeadObject: a plain object, or a processed one (`x-oss-process`, a style by
/// query or by delimiter), authorised against the caller.
struct GetObject: OperationHandler {
    func begin(_ request: OperationRequest) throws -> Step {
        let service = request.service
        var target = try request.target()
        let exchange = request.exchange
        var processText = request.parameter("x-oss-process")
        if processText == nil, service.kind(target.bucket, target.key) != .file,
           let (key, style) = service.styleByDelimiter(target.key, bucket: target.bucket) {
            target.key = key
            processText = "style/" + style
        }
        do {
            try service.authorizer.authorizeRead(target.bucket, target.key, caller: request.caller)
        } catch {
            // `/site/blog` in a private bucket whose `blog/` pages are public: the folder's address.
            if processText == nil, let redirect = service.websiteFolderRedirect(target, request: request) { return .respond(redirect) }
            throw error
        }
        let head = request.request.method == "HEAD"
        if let processText, !processText.isEmpty {
            if processText.contains("|sys/saveas") || processText.hasPrefix("sys/saveas") {
                throw OSSErrorBody.badRequest("sys/saveas needs POST /<key>?x-oss-process with the chain in the body.", code: "InvalidArgument")
            }
            let pipeline = try Pipeline.parse(processText, styles: service.manifest.catalogue.mapValues(\.process))
            let ifNoneMatch = request.header("if-none-match")
            return try service.renderStep(target, pipeline: pipeline, caller: request.caller, exchange: exchange) { bytes, contentType in
                let answer = ObjectService.imageResponse(bytes, contentType: contentType, head: head, ifNoneMatch: ifNoneMatch, exchange: exchange)
                guard answer.status == 200 else { return answer }
                return ServiceResponse(status: 200, headers: ObjectService.overriding(answer.headers, request: request), payload: answer.payload)
            }
        }
        do {
            return .respond(try service.plain(target, request: request, head: head))
        } catch let error as OSSErrorBody where error.code == "NoSuchKey" {
            if let redirect = service.websiteFolderRedirect(target, request: request) { return .respond(redirect) }
            // A website bucket answers a missing key with its error document (404).
            guard let page = service.websiteErrorPage(target.bucket, request: request, head: head) else { throw error }
            return .respond(page)
        }
    }
}

extension ObjectService {
    /// `/site/blog` (no final `/`) in a website bucket, where `blog` is a folder holding an index
    /// document anonymous readers may read: `301` to `/site/blog/`, as OSS static hosting sends a
    /// sub-folder's address (attack 39b's L5: it answered 403 or 404), keeping the query. Only
    /// anonymous page requests; nil otherwise (the request's own answer stands).
    func websiteFolderRedirect(_ target: Target, request: OperationRequest) -> ServiceResponse? {
        let method = request.request.method
        // Not the index document put in for a folder's address: a folder named `index.html` holding
        // an `index.html` sent `/site/` on to `/site//` (attack 42c's M3).
        guard request.caller == nil, !request.isWebsiteIndex, method == "GET" || method == "HEAD", Self.isPageQuery(request.query),
              websitePage(target.bucket, folder: target.key.string) != nil else { return nil }
        let (path, rawQuery) = Self.splitTarget(request.request.target)
        let location = String(path) + "/" + (rawQuery.map { "?" + $0 } ?? "")
        return ServiceResponse(status: 301, headers: [("Location", location)], payload: .data(Data()))
    }

    /// The index document of `folder` ("" for the bucket's root) in a website bucket when it is a
    /// regular file (reached without links) anonymous readers may read; nil otherwise.
    func websitePage(_ bucket: Bucket, folder: String) -> ObjectKey? {
        guard let website = bucket.website else { return nil }
        if !folder.isEmpty {
            guard let key = try? ObjectKey(folder), kind(bucket, key) == .folder else { return nil }
        }
        guard let index = try? ObjectKey(folder.isEmpty ? website.index : folder + "/" + website.index),
              kind(bucket, index) == .file, (try? authorizer.authorizeRead(bucket, index, caller: nil)) != nil, canOpen(bucket, index) else { return nil }
        return index
    }

    /// Whether a GET could open `key`'s file as it opens it (`open`): an index document this
    /// server may not read (`chmod 000`) is no page (attack 42c's L2: it got a Website address
    /// and a 301, then 500).
    func canOpen(_ bucket: Bucket, _ key: ObjectKey) -> Bool {
        guard let fd = try? open(bucket, key) else { return false }
        close(fd)
        return true
    }

    /// Whether the bucket's folder is there but this server may not open it (`chmod 000`).
    func bucketFolderIsUnreadable(_ bucket: Bucket) -> Bool {
        do { _ = try folder(bucket); return false } catch { return (error as? OSSErrorBody)?.code == "AccessDenied" }
    }

    /// Where a website bucket's page is: the first of `folders` ("" the root, `site` a folder)
    /// whose index document anonymous readers may read; nil when none is (serve's Website line).
    public func websiteFolder(_ bucket: Bucket, among folders: [String]) -> String? {
        folders.first { websitePage(bucket, folder: $0) != nil }
    }

    /// What a website bucket serves as its page, for serve's Website line: `served` the first of
    /// `folders` whose index document anonymous readers may read; else `awaitingBuild` the first
    /// whose index document is refused only for want of a usable build state (`derive build`
    /// makes it public); else `unreadableIndex` the first whose public index document this server
    /// may not open; else `privateIndex` the first holding an index document that is private;
    /// else `noIndex` (no index document in any of them).
    public enum WebsitePage: Equatable, Sendable {
        case served(folder: String)
        case awaitingBuild(folder: String)
        case privateIndex(key: String)
        /// An index document anonymous readers may read but this server may not open.
        case unreadableIndex(key: String)
        /// The bucket's own folder, which this server may not open (attack 43's L-e: it was
        /// called a folder without an index document, "write one there").
        case unreadableFolder
        case noIndex
    }

    public func websitePage(_ bucket: Bucket, among folders: [String]) -> WebsitePage {
        if let folder = websiteFolder(bucket, among: folders) { return .served(folder: folder) }
        guard let website = bucket.website else { return .noIndex }
        if bucketFolderIsUnreadable(bucket) { return .unreadableFolder }
        var indexes: [(folder: String, key: ObjectKey)] = []
        for folder in folders {
            if !folder.isEmpty {
                guard let key = try? ObjectKey(folder), kind(bucket, key) == .folder else { continue }
            }
            if let index = try? ObjectKey(folder.isEmpty ? website.index : folder + "/" + website.index), kind(bucket, index) == .file {
                indexes.append((folder, index))
            }
        }
        if let waiting = indexes.first(where: { authorizer.refusedForWantOfState(bucket, $0.key) }) { return .awaitingBuild(folder: waiting.folder) }
        if let unreadable = indexes.first(where: { (try? authorizer.authorizeRead(bucket, $0.key, caller: nil)) != nil && !canOpen(bucket, $0.key) }) {
            return .unreadableIndex(key: unreadable.key.string)
        }
        return indexes.first.map { .privateIndex(key: $0.key.string) } ?? .noIndex
    }

    /// `key!style` (or another enabled delimiter): precedence `-`, `_`, `/`, `!`, last occurrence
    /// of the delimiter byte.
    func styleByDelimiter(_ key: ObjectKey, bucket: Bucket) -> (ObjectKey, String)? {
        for delimiter in ["-", "_", "/", "!"] where bucket.styleDelimiters.contains(Character(delimiter)) {
            let byte = UInt8(ascii: Unicode.Scalar(delimiter)!)
            guard let split = key.bytes.lastIndex(of: byte), let object = try? ObjectKey(bytes: Array(key.bytes[..<split])) else { continue }
            let style = String(decoding: key.bytes[(split + 1)...], as: UTF8.self)
            if manifest.catalogue[style] != nil, kind(bucket, object) == .file { return (object, style) }
        }
        return nil
    }

    /// A plain object: stored headers and ETag when the metadata record still describes the
    /// file (else the MD5 and the file's time, the type by extension), conditions, one byte
    /// range, and `response-*` overrides for signed requests.
    func plain(_ target: Target, request: OperationRequest, head: Bool) throws -> ServiceResponse {
        let exchange = request.exchange
        let opened = try openRecorded(target.bucket, target.key)
        let fd = opened.descriptor, info = opened.status, record = opened.record
        let size = Int(info.st_size)
        let file = OpenFile(descriptor: fd, length: size)
        let etag = try record?.etag ?? Self.etag(digests.digests(of: fd, identity: DigestCache.identity(target.bucket.path, target.key)).md5)
        let lastModified = record?.lastModified ?? Int(info.st_mtim.tv_sec)
        // Without one, a browser would cache a page or an index for a tenth of its age and keep
        // an old index whose `{hash}` files a rebuild removed: revalidate (ETag) on every use.
        let storedCacheControl = record?.headers["cache-control"]
        let cacheControl = storedCacheControl ?? Self.defaultCacheControl
        switch Conditions.evaluate(request.request.headers, etag: etag, lastModified: lastModified) {
        case .preconditionFailed: throw OSSErrorBody.preconditionFailed
        case .notModified:
            return ServiceResponse(status: 304, headers: [("ETag", etag), ("Last-Modified", HTTPDate.string(lastModified)),
                                                          ("Cache-Control", cacheControl),
                                                          ("x-oss-request-id", exchange.requestId)], payload: .data(Data()))
        case .proceed: break
        }
        // An `If-Range` whose validator is not this object's: the whole object (RFC 9110 §13.1.5).
        let ranged = !head && Conditions.rangeApplies(request.request.headers, etag: etag, lastModified: lastModified)
        let range: ByteRange = ranged ? ByteRange.parse(request.header("range"), size: size,
                                                        standard: ByteRange.isStandard(request.header("x-oss-range-behavior"))) : .whole
        if range == .unsatisfiable { throw OSSErrorBody.invalidRange(size: size) }
        let firstBytes = try file.read(at: 0, count: 12)
        let sniffed = Self.contentType(firstBytes)
        let byName = record == nil ? ContentTypes.forFile(target.key) : ContentTypes.forKey(target.key)
        let contentType = record?.headers["content-type"] ?? byName ?? sniffed
        var headers: [(String, String)] = [("Content-Type", contentType)]
        if record == nil, let encoding = ContentTypes.encodingForFile(target.key, head: firstBytes) { headers.append(("Content-Encoding", encoding)) }
        for (name, value) in record?.orderedHeaders ?? [] where name != "content-type" { headers.append((name, value)) }
        if storedCacheControl == nil { headers.append(("Cache-Control", cacheControl)) }
        let identity = ObjectFileIdentity(info)
        let type = objectType(target.bucket, target.key, FileStatus(size: identity.size, mtime: identity.modified, ctime: 0, inode: identity.inode),
                              etag: etag)
        headers += [("ETag", etag), ("Last-Modified", HTTPDate.string(lastModified)), ("Accept-Ranges", "bytes"),
                    ("x-oss-object-type", type), ("x-oss-request-id", exchange.requestId),
                    ("x-oss-object-acl", authorizer.objectACLHeader(target.bucket, target.key))]
        if type == "Appendable" { headers.append(("x-oss-next-append-position", String(size))) }
        headers = Self.overriding(headers, request: request)
        switch range {
        case .part(let start, let length):
            headers += [("Content-Length", String(length)), ("Content-Range", "bytes \(start)-\(start + length - 1)/\(size)")]
            return ServiceResponse(status: 206, headers: headers, payload: .file(OpenFile(descriptor: dup(fd), offset: Int64(start), length: length)))
        default:
            headers.append(("Content-Length", String(size)))
            return ServiceResponse(status: 200, headers: headers, payload: head ? .data(Data()) : .file(file))
        }
    }

    /// `response-content-type` and its siblings replace the answer's headers, for signed
    /// requests only (OSS ignores them on anonymous ones).
    static func overriding(_ headers: [(String, String)], request: OperationRequest) -> [(String, String)] {
        guard request.caller != nil else { return headers }
        var headers = headers
        for (parameter, name) in responseOverrides {
            guard let value = request.parameter(parameter) else { continue }
            headers.removeAll { $0.0.lowercased() == name.lowercased() }
            headers.append((name, value))
        }
        return headers
    }

    /// What a plain object without a stored `Cache-Control` is answered with.
    static let defaultCacheControl = "no-cache"

    static let responseOverrides = [("response-content-type", "Content-Type"), ("response-content-language", "Content-Language"),
                                    ("response-expires", "Expires"), ("response-cache-control", "Cache-Control"),
                                    ("response-content-disposition", "Content-Disposition"),
                                    ("response-content-encoding", "Content-Encoding")]
}
