import Access
import Crypto
import Foundation
import Imaging
import Manifest
import ProcessLanguage

/// An HTTP request as the object service sees it, independent of the server framework.
public struct ServiceRequest: Sendable {
    public var method: String
    /// The request target as sent: percent-encoded path, `?`, raw query.
    public var target: String
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: Data

    public init(method: String, target: String, headers: [String: String], body: Data = Data()) {
        self.method = method.uppercased()
        self.target = target
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.body = body
    }
}

public struct ServiceResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data
}

/// Serves a manifest's buckets with OSS semantics: path-style and virtual-host URLs, GET/HEAD
/// of objects with and without `x-oss-process`, styles (query and delimiter forms), ACLs,
/// signatures, PUT, POST `sys/saveas`, and OSS XML errors. Rendered results are cached on disk
/// by action key; a cache hit never touches libvips.
public final class ObjectService: Sendable {
    public let manifest: Manifest
    public let verifier: Verifier
    public let engine: Engine
    public let cacheFolder: String
    public let maxBodyBytes: Int
    let clock: @Sendable () -> Int
    let requestCounter = Counter()
    let digests = DigestCache()

    public init(manifest: Manifest, verifier: Verifier, engine: Engine, cacheFolder: String, maxBodyBytes: Int = 20 * 1024 * 1024,
                clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }) {
        self.manifest = manifest
        self.verifier = verifier
        self.engine = engine
        self.cacheFolder = cacheFolder
        self.maxBodyBytes = maxBodyBytes
        self.clock = clock
    }

    /// Renders since start (cache hits do not count), for tests.
    public var renders: Int { requestCounter.renders }

    public func handle(_ request: ServiceRequest) -> ServiceResponse {
        let requestId = requestCounter.nextId()
        let host = request.headers["host"] ?? "localhost"
        do {
            return try respond(request, requestId: requestId)
        } catch let error as OSSErrorBody {
            return errorResponse(error, request: request, requestId: requestId, host: host)
        } catch let error as AccessError {
            let body = OSSErrorBody(status: error.status, code: error.code, message: error.message, ec: error.ec,
                                    details: error.details.map { ($0.name, $0.value) })
            return errorResponse(body, request: request, requestId: requestId, host: host)
        } catch let error as ProcessError {
            let body = OSSErrorBody(status: error.httpStatus, code: error.code.rawValue, message: error.message, ec: error.ec)
            return errorResponse(body, request: request, requestId: requestId, host: host)
        } catch {
            let body = OSSErrorBody(status: 500, code: "InternalError", message: "\(error)")
            return errorResponse(body, request: request, requestId: requestId, host: host)
        }
    }

    func errorResponse(_ error: OSSErrorBody, request: ServiceRequest, requestId: String, host: String) -> ServiceResponse {
        let xml = error.xml(requestId: requestId, hostId: host)
        var headers = [("Content-Type", "application/xml"), ("x-oss-request-id", requestId)]
        if let ec = error.ec { headers.append(("x-oss-ec", ec)) }
        if request.method == "HEAD" {
            // HEAD has no body: the XML travels base64-encoded in x-oss-err, as OSS does.
            headers.append(("x-oss-err", Data(xml.utf8).base64EncodedString()))
            return ServiceResponse(status: error.status, headers: headers, body: Data())
        }
        return ServiceResponse(status: error.status, headers: headers, body: Data(xml.utf8))
    }

    // MARK: Routing

    struct Target {
        var bucket: Bucket
        var key: String
        var query: [OSSSignature.Parameter]
    }

    func resolve(_ request: ServiceRequest) throws -> Target {
        let parts = request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = String(parts[0])
        let query = SignedRequest.parseQuery(parts.count > 1 ? String(parts[1]) : "")
        guard let path = rawPath.removingPercentEncoding else { throw OSSErrorBody.badRequest("The request path is not valid percent-encoded UTF-8.") }
        let hostName = (request.headers["host"] ?? "").split(separator: ":").first.map(String.init) ?? ""
        var bucketName: String
        var key: String
        if let dot = hostName.firstIndex(of: "."), manifest.bucket(named: String(hostName[..<dot])) != nil {
            bucketName = String(hostName[..<dot])          // virtual host: bucket.localhost
            key = String(path.dropFirst())
        } else {
            let trimmed = path.dropFirst()
            let pieces = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            bucketName = String(pieces.first ?? "")
            key = pieces.count > 1 ? String(pieces[1]) : ""
        }
        guard let bucket = manifest.bucket(named: bucketName) else {
            if bucketName.isEmpty { throw OSSErrorBody.badRequest("Listing buckets is not supported; name a bucket and an object.") }
            throw OSSErrorBody.noSuchBucket(bucketName)
        }
        try Self.checkKey(key)
        return Target(bucket: bucket, key: key, query: query)
    }

    /// Keys stay inside their bucket: no `..` or `.` segments (also when percent-encoded), no
    /// absolute paths, no NUL, no empty segments, at most 1023 bytes.
    static func checkKey(_ key: String) throws {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        let escapes = key.isEmpty || key.utf8.count > 1023 || key.hasPrefix("/") || key.hasPrefix("\\") || key.contains("\0")
            || key.contains("\\") || segments.contains { $0 == ".." || $0 == "." } || segments.dropLast().contains { $0.isEmpty }
        if escapes {
            throw OSSErrorBody(status: 400, code: "InvalidObjectName", message: "The object key is not valid: it must stay inside its bucket (no '..', '.', empty segments, NUL, '\\' or leading '/').",
                               ec: "0016-00000005")
        }
    }

    func path(_ bucket: Bucket, _ key: String) -> String { bucket.path + "/" + key }

    func respond(_ request: ServiceRequest, requestId: String) throws -> ServiceResponse {
        var target = try resolve(request)
        let process = target.query.first { $0.name == "x-oss-process" }
        let signed = SignedRequest(method: request.method, bucket: target.bucket.name, key: target.key, query: target.query, headers: request.headers)
        let caller = try verifier.authenticate(signed, now: clock())

        switch request.method {
        case "GET", "HEAD":
            var processText = process?.value
            if processText == nil, FileManager.default.fileExists(atPath: path(target.bucket, target.key)) == false,
               let (key, style) = styleByDelimiter(target.key, bucket: target.bucket) {
                target.key = key
                processText = "style/" + style
            }
            try authorizeRead(target, caller: caller)
            if let processText, !processText.isEmpty {
                if processText.contains("|sys/saveas") || processText.hasPrefix("sys/saveas") {
                    throw OSSErrorBody.badRequest("sys/saveas needs POST /<key>?x-oss-process with the chain in the body.", code: "InvalidArgument")
                }
                return try processed(target, process: processText, head: request.method == "HEAD", requestId: requestId)
            }
            return try plain(target, head: request.method == "HEAD", requestId: requestId)
        case "PUT":
            try authorizeWrite(target.bucket, caller: caller)
            guard request.body.count <= maxBodyBytes else {
                throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "Your proposed upload exceeds the maximum allowed size of \(maxBodyBytes) bytes.")
            }
            try Self.writeAtomically(request.body, to: path(target.bucket, target.key))
            return ServiceResponse(status: 200, headers: [("x-oss-request-id", requestId), ("ETag", Self.etag(request.body)), ("Content-Length", "0")], body: Data())
        case "POST" where process != nil:
            return try saveAs(request, target: target, caller: caller, requestId: requestId)
        default:
            throw OSSErrorBody(status: 405, code: "MethodNotAllowed", message: "The specified method is not allowed against this resource.")
        }
    }

    /// `key!style` (or another enabled delimiter): precedence `-`, `_`, `/`, `!`, last occurrence.
    func styleByDelimiter(_ key: String, bucket: Bucket) -> (String, String)? {
        for delimiter in ["-", "_", "/", "!"] where bucket.styleDelimiters.contains(Character(delimiter)) {
            guard let range = key.range(of: delimiter, options: .backwards) else { continue }
            let object = String(key[..<range.lowerBound]), style = String(key[range.upperBound...])
            if manifest.catalogue[style] != nil, FileManager.default.fileExists(atPath: path(bucket, object)) { return (object, style) }
        }
        return nil
    }

    func authorizeRead(_ target: Target, caller: String?) throws {
        if caller != nil { return }
        guard target.bucket.effectiveACL(of: target.key).isPublic else { throw OSSErrorBody.accessDenied() }
    }

    func authorizeWrite(_ bucket: Bucket, caller: String?) throws {
        if caller != nil { return }
        guard bucket.acl == .publicReadWrite else {
            throw OSSErrorBody.accessDenied("You have no right to write to this bucket: it is not public-read-write and the request is not signed.")
        }
    }

    func read(_ target: Target) throws -> Data {
        let file = path(target.bucket, target.key)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), !isFolder.boolValue,
              let data = FileManager.default.contents(atPath: file) else {
            throw OSSErrorBody.noSuchKey(target.key)
        }
        return data
    }

    func plain(_ target: Target, head: Bool, requestId: String) throws -> ServiceResponse {
        let data = try read(target)
        let headers = [("Content-Type", Self.contentType(data, key: target.key)), ("Content-Length", String(data.count)),
                       ("ETag", Self.etag(data)), ("x-oss-request-id", requestId),
                       ("x-oss-object-acl", target.bucket.objects.first { $0.match.matches(target.key) }?.acl.rawValue ?? "default")]
        return ServiceResponse(status: 200, headers: headers, body: head ? Data() : data)
    }

    func processed(_ target: Target, process: String, head: Bool, requestId: String) throws -> ServiceResponse {
        let pipeline = try Pipeline.parse(process, styles: manifest.catalogue.mapValues(\.process))
        let (bytes, contentType) = try render(target, pipeline: pipeline)
        return ServiceResponse(status: 200, headers: [("Content-Type", contentType), ("Content-Length", String(bytes.count)),
                                                      ("ETag", Self.etag(bytes)), ("x-oss-request-id", requestId)],
                               body: head ? Data() : bytes)
    }

    /// Renders through the disk cache keyed by action key (engine version, canonical pipeline,
    /// source digest, watermark object digests). Digests come from a stat-keyed cache, so a hit
    /// reads neither the source nor libvips.
    func render(_ target: Target, pipeline: Pipeline) throws -> (Data, String) {
        let bucket = target.bucket
        guard let sourceDigest = digests.digest(path(bucket, target.key)) else { throw OSSErrorBody.noSuchKey(target.key) }
        var parts = [Engine.version, Engine.encoderSettings, pipeline.canonical, sourceDigest]
        for dependency in pipeline.dependencies {
            if case .object(let key) = dependency, let digest = digests.digest(path(bucket, key)) {
                parts.append("object:\(key)=\(digest)")
            } else if case .font(let name) = dependency {
                // The font file's identity (path, size, mtime): a replaced font invalidates entries.
                let file = (try? FontCatalog.file(for: name)) ?? "missing"
                let attributes = try? FileManager.default.attributesOfItem(atPath: file)
                let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
                let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                parts.append("font:\(name)=\(file):\(size):\(modified)")
            }
        }
        let key = Self.sha256(Data(parts.joined(separator: "\n").utf8))
        let cached = cacheFolder + "/" + key.prefix(2) + "/" + key
        if let data = FileManager.default.contents(atPath: cached), let newline = data.firstIndex(of: 0x0A) {
            return (Data(data[data.index(after: newline)...]), String(decoding: data[..<newline], as: UTF8.self))
        }
        let output = try engine.render(try read(target), pipeline, resolver: FolderResolver(root: bucket.path))
        requestCounter.rendered()
        try? Self.writeAtomically(Data((output.contentType + "\n").utf8) + output.bytes, to: cached)
        return (output.bytes, output.contentType)
    }

    /// `POST /key?x-oss-process` with `x-oss-process=<chain>|sys/saveas,o_<b64 key>[,b_<b64 bucket>]`.
    func saveAs(_ request: ServiceRequest, target: Target, caller: String?, requestId: String) throws -> ServiceResponse {
        try authorizeRead(target, caller: caller)
        var body = String(decoding: request.body.prefix(64 * 1024), as: UTF8.self)
        if body.contains("%7C") || body.contains("%7c") { body = body.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? body }
        if body.hasPrefix("x-oss-process=") { body.removeFirst("x-oss-process=".count) }
        guard let bar = body.range(of: "|sys/saveas") else {
            throw OSSErrorBody.badRequest("The body must be x-oss-process=<chain>|sys/saveas,o_<base64 key>[,b_<base64 bucket>].")
        }
        let chain = String(body[..<bar.lowerBound])
        var objectKey: String?, bucketName: String?
        for item in body[bar.upperBound...].split(separator: ",") {
            if item.hasPrefix("o_") { objectKey = Base64URL.decodeString(String(item.dropFirst(2))) }
            if item.hasPrefix("b_") { bucketName = Base64URL.decodeString(String(item.dropFirst(2))) }
        }
        guard let objectKey else { throw OSSErrorBody.badRequest("sys/saveas needs o_<base64url target key>.") }
        try Self.checkKey(objectKey)
        guard let destination = bucketName.map({ manifest.bucket(named: $0) }) ?? target.bucket else {
            throw OSSErrorBody.noSuchBucket(bucketName ?? "")
        }
        try authorizeWrite(destination, caller: caller)
        let pipeline = try Pipeline.parse(chain, styles: manifest.catalogue.mapValues(\.process))
        let (bytes, _) = try render(target, pipeline: pipeline)
        try Self.writeAtomically(bytes, to: path(destination, objectKey))
        let reply = "{\"bucket\": \(JSONText.string(bucketName ?? "")), \"fileSize\": \(bytes.count), \"object\": \(JSONText.string(objectKey)), \"status\": \"OK\"}"
        return ServiceResponse(status: 200, headers: [("Content-Type", "application/json"), ("x-oss-request-id", requestId)], body: Data(reply.utf8))
    }

    // MARK: Helpers

    static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).derive-tmp")
        try data.write(to: temporary)
        guard rename(temporary.path, path) == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw OSSErrorBody(status: 500, code: "InternalError", message: "cannot write the object")
        }
    }

    static func sha256(_ data: Data) -> String { OSSSignature.hex(SHA256.hash(data: data)) }

    static func etag(_ data: Data) -> String {
        "\"" + OSSSignature.hex(Insecure.MD5.hash(data: data), uppercase: true) + "\""
    }

    static func contentType(_ data: Data, key: String) -> String {
        let bytes = [UInt8](data.prefix(12))
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if bytes.starts(with: Array("GIF8".utf8)) { return "image/gif" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
        return "application/octet-stream"
    }
}

/// Request ids and render counts.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var renderCount = 0

    func nextId() -> String {
        lock.withLock {
            next += 1
            return String(format: "%08X%016X", getpid(), next)
        }
    }

    func rendered() { lock.withLock { renderCount += 1 } }
    var renders: Int { lock.withLock { renderCount } }
}
