import Access
import Confinement
import Crypto
import Foundation
import Imaging
import Logging
import Manifest
import NIOConcurrencyHelpers
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP request as the object service sees it, independent of the server framework.
public struct ServiceRequest: Sendable {
    public var method: String
    /// The request target as sent: percent-encoded path, `?`, raw query.
    public var target: String
    /// Header names lowercased.
    public var headers: [String: String]
    /// The body, for `handle` (tests, fuzzing); the HTTP front streams bodies through `begin` instead.
    public var body: Data

    /// Lowercased names of headers sent more than once with different values (the dictionary
    /// keeps one of them): `begin` refuses those that carry a signature, a digest, a length or a
    /// time, so no check can read one copy while another is used.
    public var conflicting: Set<String>

    public init(method: String, target: String, headers: [String: String], body: Data = Data()) {
        self.init(method: method, target: target, fields: headers.map { ($0.key, $0.value) }, body: body)
    }

    /// A request with its header fields as sent, repeated names included.
    public init(method: String, target: String, fields: [(String, String)], body: Data = Data()) {
        self.method = method.uppercased()
        self.target = target
        var headers: [String: String] = [:]
        var conflicting: Set<String> = []
        for (name, value) in fields {
            let name = name.lowercased()
            if let seen = headers[name] {
                if seen != value { conflicting.insert(name) }
            } else {
                headers[name] = value
            }
        }
        self.headers = headers
        self.conflicting = conflicting
        self.body = body
    }
}

/// Headers that may appear once only (or repeated with the same value): each carries a
/// signature, a digest, a length, a time or a copy source. Every `x-oss-*` header counts too.
enum SingleHeaders {
    static let names: Set<String> = ["authorization", "date", "content-length", "content-md5", "content-type", "host",
                                     "if-none-match"]

    static func check(_ request: ServiceRequest) throws {
        guard let name = request.conflicting.sorted().first(where: { names.contains($0) || $0.hasPrefix("x-oss-") }) else { return }
        if name == "content-md5" {
            throw OSSErrorBody.invalidDigest("Content-MD5 was sent more than once with different values.")
        }
        throw OSSErrorBody.badRequest("The header \(name) was sent more than once with different values.")
    }

    /// Query parameters of a signature or a process, which a check and a use could otherwise
    /// read from different copies.
    static let parameters: Set<String> = ["ossaccesskeyid", "expires", "signature", "security-token"]

    static func check(_ query: [OSSSignature.Parameter]) throws {
        var seen: Set<String> = []
        for parameter in query {
            let name = parameter.name.lowercased()
            guard parameters.contains(name) || name.hasPrefix("x-oss-") else { continue }
            guard seen.insert(name).inserted else {
                throw OSSErrorBody.badRequest("The query parameter \(parameter.name) was given more than once.")
            }
        }
    }
}

public struct ServiceResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var payload: Payload

    /// The whole body in memory (tests; the HTTP front streams file payloads).
    public var body: Data {
        switch payload {
        case .data(let data): return data
        case .file(let file): return (try? file.readAll()) ?? Data()
        }
    }
}

/// How the server spends its resources: the manifest's `serve:` block (cache size, render
/// queue) and the render threads.
public struct ServerSettings: Sendable {
    /// Bytes the render cache may hold (least recently used entries go first).
    public var cacheMaxBytes: Int = ServeSettings.defaultCacheMaxBytes
    /// Renders that may wait for a render thread; one more is answered 503 SlowDown.
    public var renderQueue: Int = ServeSettings.defaultRenderQueue
    /// Threads that render (libvips work), apart from the threads that read and write files:
    /// one core is left to answer plain requests.
    public var renderThreads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)

    public init() {}

    public init(_ manifest: Manifest) {
        self.init()
        cacheMaxBytes = manifest.serve.cacheMaxBytes
        renderQueue = manifest.serve.renderQueue
    }
}

/// What to do next with a request whose head was accepted.
public enum Step: Sendable {
    /// The answer is ready (plain objects, cache hits, every error).
    case respond(ServiceResponse)
    /// A render to run on the render pool.
    case render(RenderJob)
    /// A PUT: stream the body into the upload, then `finish`.
    case upload(Upload)
    /// A save-as: collect at most `limit` bytes of body, then `continue` decides.
    case needsBody(limit: Int, BodyContinuation)
}

/// A step that needs the (small) request body.
public struct BodyContinuation: Sendable {
    let next: @Sendable (Data) -> Step
    public func `continue`(_ body: Data) -> Step { next(body) }
}

/// A render admitted to the queue; it holds its slot until it runs or is dropped.
public final class RenderJob: Sendable {
    private let work: @Sendable (RenderCancellation) -> ServiceResponse
    private let ticket: RenderGate.Ticket
    /// Cancelled when the client disconnects or the server stops: a queued render never starts,
    /// a running one stops inside libvips.
    public let cancellation = RenderCancellation()

    init(ticket: RenderGate.Ticket, work: @escaping @Sendable (RenderCancellation) -> ServiceResponse) {
        self.ticket = ticket
        self.work = work
    }

    /// Renders (within the engine's deadline), unless cancelled first.
    public func run() -> ServiceResponse {
        defer { ticket.release() }
        return work(cancellation)
    }
}

/// Admission to the render pool: at most `capacity` renders running or waiting.
final class RenderGate: Sendable {
    let capacity: Int
    private let admitted = NIOLockedValueBox(0)

    init(capacity: Int) { self.capacity = capacity }

    var inFlight: Int { admitted.withLockedValue { $0 } }

    final class Ticket: Sendable {
        private let gate: RenderGate
        private let released = NIOLockedValueBox(false)
        init(gate: RenderGate) { self.gate = gate }
        func release() {
            let first = released.withLockedValue { done in defer { done = true }; return !done }
            if first { gate.admitted.withLockedValue { $0 -= 1 } }
        }
        deinit { release() }
    }

    func admit() -> Ticket? {
        let ok = admitted.withLockedValue { count -> Bool in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        return ok ? Ticket(gate: self) : nil
    }
}

/// Serves a manifest's buckets with OSS semantics: path-style and virtual-host URLs, GET/HEAD
/// of objects with and without `x-oss-process`, styles (query and delimiter forms), ACLs,
/// signatures, PUT, POST `sys/saveas`, and OSS XML errors.
///
/// Every object a request reads or writes is authorised through one `Authorizer`; every file is
/// reached through a `ConfinedFolder`, so a key can never leave its bucket. Rendered results are
/// cached on disk by action key in a bounded cache; a hit never touches libvips.
public final class ObjectService: Sendable {
    public let manifest: Manifest
    public let verifier: Verifier
    public let engine: Engine
    /// Where renders run (render workers in `derive serve`), with `engine`'s limits.
    public let renderer: any ImageRenderer
    public let maxBodyBytes: Int
    public let settings: ServerSettings
    let authorizer: Authorizer
    let cache: RenderCache
    let gate: RenderGate
    let logger: Logger
    let clock: @Sendable () -> Int
    let requestCounter = Counter()
    let digests = DigestCache()
    private let folders = NIOLockedValueBox<[String: ConfinedFolder]>([:])
    /// Objects AppendObject created, and multipart uploads in progress (both in the state folder).
    let appendables: AppendableObjects
    let multipart: MultipartStore
    /// One append at a time: each checks the length and rewrites the object.
    let appendLock = NIOLock()
    /// Longest save-as body (the chain and target).
    static let maxSaveAsBody = 64 * 1024

    /// Fails when the cache folder lies inside a bucket folder (a request could then write entries).
    public init(manifest: Manifest, verifier: Verifier, engine: Engine, renderer: any ImageRenderer = InProcessRenderer(),
                cacheFolder: String, maxBodyBytes: Int = 20 * 1024 * 1024,
                settings: ServerSettings = ServerSettings(), recorded: any RecordedOutputs = NoRecordedOutputs(),
                logger: Logger = Logger(label: "derive.serve"),
                clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }) throws {
        // Control files inside a bucket could be replaced by a PUT: refuse to serve them.
        let controls = [("the manifest", manifest.file), ("the state folder", manifest.stateFolder), ("the serve cache folder", cacheFolder)]
        for bucket in manifest.buckets {
            for (what, path) in controls where Self.isInside(path, bucket.path) {
                throw ServeSetupError(message: "\(what) \(path) is inside the folder of bucket '\(bucket.name)' (\(bucket.path)), where requests could write it. Move the bucket's path or the file (state: for the state folder) so that no control file is in a bucket.")
            }
        }
        try? FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true)
        self.manifest = manifest
        self.verifier = verifier
        self.engine = engine
        self.renderer = renderer
        self.maxBodyBytes = maxBodyBytes
        self.settings = settings
        self.authorizer = Authorizer(recorded: recorded)
        self.cache = RenderCache(folder: cacheFolder, maxBytes: settings.cacheMaxBytes)
        self.gate = RenderGate(capacity: settings.renderThreads + settings.renderQueue)
        self.logger = logger
        self.clock = clock
        appendables = AppendableObjects(file: manifest.stateFolder + "/" + StateFiles.serveAppendable)
        multipart = MultipartStore(root: manifest.stateFolder + "/" + StateFiles.serveUploads,
                                   limits: MultipartStore.Limits(maxPartBytes: maxBodyBytes), clock: clock)
    }

    public var cacheFolder: String { cache.folder }

    /// Whether `path` is `folder` or below it, after resolving links (the file system decides).
    static func isInside(_ path: String, _ folder: String) -> Bool {
        func real(_ path: String) -> String {
            // The nearest existing ancestor resolved, the rest appended (a folder not created yet).
            var existing = URL(fileURLWithPath: path).standardizedFileURL
            var rest: [String] = []
            while existing.path != "/", !FileManager.default.fileExists(atPath: existing.path) {
                rest.insert(existing.lastPathComponent, at: 0)
                existing.deleteLastPathComponent()
            }
            guard let resolved = realpath(existing.path, nil) else { return existing.path }
            defer { free(resolved) }
            return ([String(cString: resolved)] + rest).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
        }
        let inner = real(path), outer = real(folder)
        return inner == outer || inner.hasPrefix(outer.hasSuffix("/") ? outer : outer + "/")
    }

    /// Renders since start (cache hits do not count), for tests.
    public var renders: Int { requestCounter.renders }

    /// Renders admitted and not yet finished.
    public var rendersInFlight: Int { gate.inFlight }

    /// Handles a whole request synchronously (tests, fuzzing): the same steps the HTTP front runs.
    public func handle(_ request: ServiceRequest) -> ServiceResponse {
        switch begin(request) {
        case .respond(let response): return response
        case .render(let job): return job.run()
        case .upload(let upload):
            upload.write(request.body)
            return upload.finish()
        case .needsBody(let limit, let next):
            switch next.continue(request.body.prefix(limit)) {
            case .respond(let response): return response
            case .render(let job): return job.run()
            default: return ServiceResponse(status: 500, headers: [], payload: .data(Data()))
            }
        }
    }

    /// Decides what a request needs from its head alone: authentication, authorisation and
    /// limits are all checked before any body byte is read.
    public func begin(_ request: ServiceRequest) -> Step {
        let exchange = Exchange(requestId: requestCounter.nextId(), host: request.headers["host"] ?? "localhost",
                                method: request.method, target: request.target, logger: logger)
        do {
            try SingleHeaders.check(request)
            return try route(request, exchange)
        } catch {
            return .respond(exchange.response(for: error))
        }
    }

    // MARK: Routing

    struct Target {
        var bucket: Bucket
        var key: ObjectKey
        var query: [OSSSignature.Parameter]
    }

    /// Bucket and key from the request target. The path is percent-decoded to bytes and the key
    /// validated on those bytes (`ObjectKey`): never on `Character`s.
    func resolve(_ request: ServiceRequest) throws -> Target {
        switch try address(request) {
        case .object(let target): return target
        case .bucket: throw OSSErrorBody.invalidObjectName(ObjectKey.Problem.empty.description)
        }
    }

    /// What a request names: a bucket itself (no key) or an object.
    enum Addressed {
        case bucket(Bucket, [OSSSignature.Parameter])
        case object(Target)
    }

    func address(_ request: ServiceRequest) throws -> Addressed {
        let parts = request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let query = SignedRequest.parseQuery(parts.count > 1 ? String(parts[1]) : "")
        try SingleHeaders.check(query)
        let path: [UInt8]
        do { path = try ObjectKey.percentDecode(Array(parts[0].utf8)) } catch {
            throw OSSErrorBody.invalidObjectName("the request path has a malformed percent escape")
        }
        let hostName = (request.headers["host"] ?? "").split(separator: ":").first.map(String.init) ?? ""
        var bucketName: String
        var keyBytes: [UInt8]
        let slash = UInt8(ascii: "/")
        let trimmed = path.first == slash ? Array(path.dropFirst()) : path
        if let dot = hostName.firstIndex(of: "."), manifest.bucket(named: String(hostName[..<dot])) != nil {
            bucketName = String(hostName[..<dot])          // virtual host: bucket.localhost
            keyBytes = trimmed
        } else {
            let end = trimmed.firstIndex(of: slash) ?? trimmed.count
            bucketName = String(decoding: trimmed[..<end], as: UTF8.self)
            keyBytes = end < trimmed.count ? Array(trimmed[(end + 1)...]) : []
        }
        guard let bucket = manifest.bucket(named: bucketName) else {
            if bucketName.isEmpty { throw OSSErrorBody.badRequest("Listing buckets is not supported; name a bucket and an object.") }
            throw OSSErrorBody.noSuchBucket(bucketName)
        }
        if keyBytes.isEmpty { return .bucket(bucket, query) }
        do {
            return .object(Target(bucket: bucket, key: try ObjectKey(bytes: keyBytes), query: query))
        } catch {
            throw OSSErrorBody.invalidObjectName(error.description)
        }
    }

    /// The bucket's folder, opened once; nil while it does not exist.
    func folder(_ bucket: Bucket, create: Bool = false) throws -> ConfinedFolder? {
        if let open = folders.withLockedValue({ $0[bucket.name] }) { return open }
        if create { try FileManager.default.createDirectory(atPath: bucket.path, withIntermediateDirectories: true) }
        guard let opened = try? ConfinedFolder(path: bucket.path) else { return nil }
        return folders.withLockedValue { folders in
            if let open = folders[bucket.name] { return open }
            folders[bucket.name] = opened
            return opened
        }
    }

    func kind(_ bucket: Bucket, _ key: ObjectKey) -> ConfinedFolder.EntryKind? {
        guard !Self.isTemporary(key) else { return nil }
        return (try? folder(bucket))?.kind(key)
    }

    /// A key naming one of Derive's temporary files (an upload or a build output being written,
    /// left by a killed writer): never an object, whatever the file system holds.
    static func isTemporary(_ key: ObjectKey) -> Bool {
        key.segments.last.map { ConfinedFolder.isTemporaryName($0) } ?? false
    }

    func route(_ request: ServiceRequest, _ exchange: Exchange) throws -> Step {
        var target: Target
        switch try address(request) {
        case .bucket(let bucket, let query): return try bucketStep(request, bucket: bucket, query: query, exchange: exchange)
        case .object(let object): target = object
        }
        let process = target.query.first { $0.name == "x-oss-process" }
        // A sub-resource derive serve does not implement (PutObjectACL, AppendObject, UploadPart,
        // symlinks, tagging, …) must not fall through to a plain PUT or GET: `PUT ?acl` would
        // replace the object with an empty body, `?append` would overwrite instead of append.
        if let unsupported = target.query.first(where: { Self.unsupportedSubresources.contains($0.name) && !Self.implementedSubresources.contains($0.name) }) {
            throw OSSErrorBody(status: 501, code: "NotImplemented",
                               message: "The ?\(unsupported.name) operation is not supported by derive serve; nothing was read or written.")
        }
        let signed = SignedRequest(method: request.method, bucket: target.bucket.name, key: target.key.string, query: target.query,
                                   headers: request.headers)
        let caller = try verifier.authenticate(signed, now: clock())
        if let step = try objectOperation(request, target: target, caller: caller, exchange: exchange) { return step }

        switch request.method {
        case "GET", "HEAD":
            var processText = process?.value
            if processText == nil, kind(target.bucket, target.key) != .file,
               let (key, style) = styleByDelimiter(target.key, bucket: target.bucket) {
                target.key = key
                processText = "style/" + style
            }
            try authorizer.authorizeRead(target.bucket, target.key, caller: caller)
            let head = request.method == "HEAD"
            if let processText, !processText.isEmpty {
                if processText.contains("|sys/saveas") || processText.hasPrefix("sys/saveas") {
                    throw OSSErrorBody.badRequest("sys/saveas needs POST /<key>?x-oss-process with the chain in the body.", code: "InvalidArgument")
                }
                let pipeline = try Pipeline.parse(processText, styles: manifest.catalogue.mapValues(\.process))
                let ifNoneMatch = request.headers["if-none-match"]
                return try renderStep(target, pipeline: pipeline, caller: caller, exchange: exchange) { bytes, contentType in
                    Self.imageResponse(bytes, contentType: contentType, head: head, ifNoneMatch: ifNoneMatch, exchange: exchange)
                }
            }
            return .respond(try plain(target, head: head, ifNoneMatch: request.headers["if-none-match"], exchange: exchange))
        case "PUT":
            return try beginUpload(request, target: target, caller: caller, exchange: exchange)
        case "POST" where process != nil:
            try authorizer.authorizeRead(target.bucket, target.key, caller: caller)
            let source = target
            return .needsBody(limit: Self.maxSaveAsBody, BodyContinuation { [self] body in
                do { return try saveAs(body, source: source, caller: caller, exchange: exchange) } catch {
                    return .respond(exchange.response(for: error))
                }
            })
        default:
            throw OSSErrorBody(status: 405, code: "MethodNotAllowed", message: "The specified method is not allowed against this resource.")
        }
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

    // MARK: Reading

    /// Opens the object for reading; anything but a regular file reached without links is NoSuchKey.
    func open(_ bucket: Bucket, _ key: ObjectKey) throws -> Int32 {
        guard !Self.isTemporary(key), let folder = try folder(bucket), Self.fitsFileSystem(key) else { throw OSSErrorBody.noSuchKey(key.string) }
        do { return try folder.openForReading(key) } catch {
            switch error {
            case .notFound, .symbolicLink, .notRegularFile, .notAFolder: throw OSSErrorBody.noSuchKey(key.string)
            case .permissionDenied, .system: throw error
            }
        }
    }

    func plain(_ target: Target, head: Bool, ifNoneMatch: String?, exchange: Exchange) throws -> ServiceResponse {
        let fd = try open(target.bucket, target.key)
        var info = stat()
        fstat(fd, &info)
        let file = OpenFile(descriptor: fd, length: Int(info.st_size))
        let digests = try digests.digests(of: fd, identity: target.bucket.path + "\0" + target.key.string)
        let etag = Self.etag(digests.md5)
        if Self.matches(ifNoneMatch, etag) { return Self.notModified(etag, exchange: exchange) }
        let headers = [("Content-Type", Self.contentType(try file.read(at: 0, count: 12))), ("Content-Length", String(file.length)),
                       ("ETag", etag), ("x-oss-request-id", exchange.requestId),
                       ("x-oss-object-acl", authorizer.objectACLHeader(target.bucket, target.key))]
        return ServiceResponse(status: 200, headers: headers, payload: head ? .data(Data()) : .file(file))
    }

    /// A rendered answer. Its ETag is the MD5 of its bytes in OSS's form (quoted upper-case hex),
    /// so the same bytes always carry the same ETag, whether rendered now or from the cache.
    static func imageResponse(_ bytes: Payload, contentType: String, head: Bool, ifNoneMatch: String?, exchange: Exchange) -> ServiceResponse {
        let md5: [UInt8]
        switch bytes {
        case .data(let data): md5 = Array(Insecure.MD5.hash(data: data))
        case .file(let file): md5 = file.md5 ?? Array(Insecure.MD5.hash(data: (try? file.readAll()) ?? Data()))
        }
        let etag = etag(md5)
        if matches(ifNoneMatch, etag) { return notModified(etag, exchange: exchange) }
        return ServiceResponse(status: 200, headers: [("Content-Type", contentType), ("Content-Length", String(bytes.count)),
                                                      ("ETag", etag), ("x-oss-request-id", exchange.requestId)],
                               payload: head ? .data(Data()) : bytes)
    }

    static func etag(_ md5: [UInt8]) -> String { "\"" + hex(md5, uppercase: true) + "\"" }

    /// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare as strong ones (RFC 9110 §13.1.2).
    static func matches(_ ifNoneMatch: String?, _ etag: String) -> Bool {
        guard let ifNoneMatch else { return false }
        return ifNoneMatch.split(separator: ",").contains { candidate in
            var tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            return tag.caseInsensitiveCompare(etag) == .orderedSame
        }
    }

    static func notModified(_ etag: String, exchange: Exchange) -> ServiceResponse {
        ServiceResponse(status: 304, headers: [("ETag", etag), ("x-oss-request-id", exchange.requestId)], payload: .data(Data()))
    }

    // MARK: Rendering

    /// The cache hit, or a render admitted to the queue (503 SlowDown when it is full). Watermark
    /// objects are authorised first, with the rules of a GET of each.
    func renderStep(_ target: Target, pipeline: Pipeline, caller: String?, exchange: Exchange,
                    answer: @escaping @Sendable (Payload, String) throws -> ServiceResponse) throws -> Step {
        let bucket = target.bucket
        let marks = try authorizer.authorizeWatermarks(pipeline, bucket: bucket, caller: caller) { kind(bucket, $0) == .file }
        let sourceFD = try open(bucket, target.key)
        let source = OpenFile(descriptor: sourceFD, length: 0)
        var parts = [Engine.version, Engine.encoderSettings, pipeline.canonical,
                     try digests.digests(of: sourceFD, identity: bucket.path + "\0" + target.key.string).sha256]
        for mark in marks {
            let fd = try open(bucket, mark)
            defer { close(fd) }
            parts.append("object:\(mark.string)=\(try digests.digests(of: fd, identity: bucket.path + "\0" + mark.string).sha256)")
        }
        for case .font(let name) in pipeline.dependencies {
            // The font file's identity (path, size, mtime): a replaced font invalidates entries.
            let file = (try? FontCatalog.file(for: name)) ?? "missing"
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            parts.append("font:\(name)=\(file):\(size):\(modified)")
        }
        let actionKey = Self.sha256(Data(parts.joined(separator: "\n").utf8))
        if let hit = cache.lookup(actionKey) {
            return .respond(try answer(.file(hit.body), hit.contentType))
        }
        guard let ticket = gate.admit() else { throw OSSErrorBody.slowDown }
        let resolver = ConfinedResolver(folder: try folder(bucket), allowed: Set(marks), maxBytes: engine.limits.maxBytes)
        return .render(RenderJob(ticket: ticket) { [self] cancellation in
            do {
                guard !cancellation.isCancelled else {
                    throw OSSErrorBody(status: 503, code: "SlowDown", message: "The render was cancelled: the client disconnected or the server is stopping.")
                }
                let bytes = try Self.readSource(source.descriptor, key: target.key, limit: engine.limits.maxBytes)
                let output = try renderer.render(bytes, pipeline, limits: engine.limits, resolver: resolver, cancellation: cancellation)
                requestCounter.rendered()
                cache.store(actionKey, contentType: output.contentType, bytes: output.bytes)
                return try answer(.data(output.bytes), output.contentType)
            } catch {
                return exchange.response(for: error)
            }
        })
    }

    /// The source's bytes for libvips (which needs them in memory), refusing more than `limit`.
    static func readSource(_ fd: Int32, key: ObjectKey, limit: Int) throws -> Data {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw OpenFile.FileReadError(code: errno) }
        guard Int(info.st_size) <= limit else {
            throw ProcessError(.imageTooLarge, "the source is \(info.st_size) bytes; the limit is \(limit) bytes")
        }
        return try OpenFile(descriptor: dup(fd), length: Int(info.st_size)).readAll()
    }

    // MARK: Writing

    /// Checks a PUT before its body: caller, effective ACL of the target, declared length,
    /// digest headers, and that the key can be a file (not under an object, not a folder).
    func beginUpload(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> Step {
        try authorizer.authorizeWrite(target.bucket, target.key, caller: caller)
        // CopyObject is not implemented: storing the (empty) body as if the copy happened would
        // lie to the client, so the request is refused before anything is written.
        if request.headers["x-oss-copy-source"] != nil {
            throw OSSErrorBody(status: 501, code: "NotImplemented", message: "CopyObject (x-oss-copy-source) is not supported by derive serve.")
        }
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
        let file = try createFile(target.bucket, target.key, exchange: exchange)
        return .upload(Upload(file: file, exchange: exchange, key: target.key, declared: declared, limit: min(declared ?? maxBodyBytes, maxBodyBytes),
                              expectedMD5: expectedMD5, expectedSHA256: expectedSHA256))
    }

    /// A temporary file for `key`; keys that cannot be files answer OSS's 400, not 500.
    func createFile(_ bucket: Bucket, _ key: ObjectKey, exchange: Exchange) throws -> TemporaryFile {
        guard Self.fitsFileSystem(key) else {
            throw OSSErrorBody.invalidObjectName("a part of the key between '/' is longer than \(Self.maxSegmentBytes) bytes, the file system's limit")
        }
        guard !Self.isTemporary(key) else {
            throw OSSErrorBody.invalidObjectName("names of the form .<name>.<pid>.<number>.derive-tmp are Derive's temporary files, never objects")
        }
        guard let folder = try folder(bucket, create: true) else { throw OSSErrorBody.internalError }
        if folder.kind(key) == .folder {
            throw OSSErrorBody.invalidObjectName("'\(key)' is a folder of other objects here, so it cannot also be an object")
        }
        do { return try folder.createTemporary(for: key) } catch {
            switch error {
            case .notAFolder, .notRegularFile:
                throw OSSErrorBody.invalidObjectName("a part of '\(key)' before its last '/' is an object, so it cannot be a folder")
            case .symbolicLink:
                // Refused like a forbidden path: the answer must not reveal the bucket's layout.
                throw OSSErrorBody.accessDenied("You have no right to write this object.")
            default:
                throw error
            }
        }
    }

    /// `POST /key?x-oss-process` with `x-oss-process=<chain>|sys/saveas,o_<b64 key>[,b_<b64 bucket>]`.
    func saveAs(_ raw: Data, source: Target, caller: String?, exchange: Exchange) throws -> Step {
        var body = String(decoding: raw, as: UTF8.self)
        if body.contains("%7C") || body.contains("%7c") { body = body.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? body }
        if body.hasPrefix("x-oss-process=") { body.removeFirst("x-oss-process=".count) }
        guard let bar = body.range(of: "|sys/saveas") else {
            throw OSSErrorBody.badRequest("The body must be x-oss-process=<chain>|sys/saveas,o_<base64 key>[,b_<base64 bucket>].")
        }
        let chain = String(body[..<bar.lowerBound])
        var objectBytes: [UInt8]?, bucketName: String?
        for item in body[bar.upperBound...].split(separator: ",") {
            if item.hasPrefix("o_") { objectBytes = Base64URL.decode(String(item.dropFirst(2))).map(Array.init) }
            if item.hasPrefix("b_") { bucketName = Base64URL.decodeString(String(item.dropFirst(2))) }
        }
        guard let objectBytes else { throw OSSErrorBody.badRequest("sys/saveas needs o_<base64url target key>.") }
        let objectKey: ObjectKey
        do { objectKey = try ObjectKey(bytes: objectBytes) } catch { throw OSSErrorBody.invalidObjectName(error.description) }
        guard let destination = bucketName.map({ manifest.bucket(named: $0) }) ?? source.bucket else {
            throw OSSErrorBody.noSuchBucket(bucketName ?? "")
        }
        try authorizer.authorizeWrite(destination, objectKey, caller: caller)
        let pipeline = try Pipeline.parse(chain, styles: manifest.catalogue.mapValues(\.process))
        let file = try createFile(destination, objectKey, exchange: exchange)
        let replyBucket = bucketName ?? ""
        return try renderStep(source, pipeline: pipeline, caller: caller, exchange: exchange) { payload, _ in
            let bytes: Data
            switch payload {
            case .data(let data): bytes = data
            case .file(let cached): bytes = try cached.readAll()
            }
            try file.write(bytes)
            do { try file.commit() } catch {
                if case ConfinementError.notRegularFile = error { throw OSSErrorBody.invalidObjectName("a folder of objects already has this name") }
                throw error
            }
            let reply = "{\"bucket\": \(JSONText.string(replyBucket)), \"fileSize\": \(bytes.count), \"object\": \(JSONText.string(objectKey.string)), \"status\": \"OK\"}"
            return ServiceResponse(status: 200, headers: [("Content-Type", "application/json"), ("x-oss-request-id", exchange.requestId)],
                                   payload: .data(Data(reply.utf8)))
        }
    }

    // MARK: Helpers

    /// OSS sub-resources that name another operation than GetObject/PutObject/PostObject.
    static let unsupportedSubresources: Set<String> = [
        "acl", "append", "position", "uploadId", "partNumber", "uploads", "symlink", "tagging", "restore", "objectMeta",
        "versionId", "versions", "delete", "comp", "x-oss-async-process", "cors", "website", "lifecycle", "logging", "referer",
        "policy", "versioning", "location", "stat", "bucketInfo", "select", "meta", "worm", "inventory", "encryption",
    ]

    /// Longest name of one file or folder (NAME_MAX), less room for the temporary-file marker.
    static let maxSegmentBytes = 200

    /// OSS allows segments as long as the key; a file system does not (found by FuzzRouter:
    /// ENAMETOOLONG answered 500).
    static func fitsFileSystem(_ key: ObjectKey) -> Bool {
        key.segments.allSatisfy { $0.count <= maxSegmentBytes }
    }

    static func sha256(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    static func hex<Bytes: Sequence>(_ bytes: Bytes, uppercase: Bool = false) -> String where Bytes.Element == UInt8 {
        OSSSignature.hex(bytes, uppercase: uppercase)
    }

    static func contentType(_ data: Data) -> String {
        let bytes = [UInt8](data.prefix(12))
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if bytes.starts(with: Array("GIF8".utf8)) { return "image/gif" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
        return "application/octet-stream"
    }
}

/// Why `derive serve` will not start.
public struct ServeSetupError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Watermark objects for a render: only the keys already authorised, read through the bucket's
/// confined folder with the source size limit.
struct ConfinedResolver: ObjectResolver {
    let folder: ConfinedFolder?
    let allowed: Set<ObjectKey>
    let maxBytes: Int

    func object(_ name: String) throws -> Data {
        guard let key = try? ObjectKey(name), allowed.contains(key), let folder,
              let data = try? folder.read(key, maxBytes: maxBytes) else {
            throw Authorizer.missingWatermark(name)
        }
        return data
    }
}

/// Request ids and render counts.
final class Counter: Sendable {
    private let state = NIOLockedValueBox<(next: Int, renders: Int)>((0, 0))

    func nextId() -> String {
        let next = state.withLockedValue { $0.next += 1; return $0.next }
        return String(format: "%08X%016X", getpid(), next)
    }

    func rendered() { state.withLockedValue { $0.renders += 1 } }
    var renders: Int { state.withLockedValue { $0.renders } }
}
