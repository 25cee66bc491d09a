import Access
import Confinement
import Crypto
import Foundation
import ImagingCore
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
                                     "if-none-match", "if-match", "if-modified-since", "if-unmodified-since", "range"]

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
    /// Connection timeouts, in seconds (see `ServeSettings`).
    public var headTimeout = 30
    public var idleTimeout = 60
    public var bodyTimeout = 30
    public var sendTimeout = 60
    /// Most open connections; nil: `OpenConnections.derivedLimit()`.
    public var maxConnections: Int?
    /// Multipart uploads: open at once, bytes they hold together, hours before an unfinished one is removed.
    public var multipartMaxUploads = 100
    public var multipartMaxBytes = 4 << 30
    public var multipartExpiryHours = 24
    /// Of those, what uploads initiated by anonymous callers may use (signed callers keep the rest).
    public var multipartMaxAnonymousUploads = 20
    public var multipartMaxAnonymousBytes = 1 << 30
    /// Appendable objects remembered, and how many of them anonymous callers may create.
    public var appendableMaxObjects = ServeSettings.defaultAppendableMaxObjects
    public var appendableMaxAnonymous = ServeSettings.defaultAppendableMaxObjects / 2
    /// Units one listing page may spend (`serve: list_max_entries`): folder entries read (files
    /// and folders, as read) and keys walked past that the caller may not see.
    public var listEntryBudget = 100_000
    /// Listings that may walk folders at once (`serve: list_max_concurrent`); one more is 503
    /// SlowDown. Fewer than the I/O threads (4), so listings can never hold every thread plain
    /// GETs and HEADs need.
    public var listConcurrency = 2

    public init() {}

    public init(_ manifest: Manifest) {
        self.init()
        cacheMaxBytes = manifest.serve.cacheMaxBytes
        renderQueue = manifest.serve.renderQueue
        headTimeout = manifest.serve.headTimeout
        idleTimeout = manifest.serve.idleTimeout
        bodyTimeout = manifest.serve.bodyTimeout
        sendTimeout = manifest.serve.sendTimeout
        maxConnections = manifest.serve.maxConnections
        multipartMaxUploads = manifest.serve.multipartMaxUploads
        multipartMaxBytes = manifest.serve.multipartMaxBytes
        multipartExpiryHours = manifest.serve.multipartExpiryHours
        multipartMaxAnonymousUploads = manifest.serve.multipartMaxAnonymousUploads
        multipartMaxAnonymousBytes = manifest.serve.multipartMaxAnonymousBytes
        appendableMaxObjects = manifest.serve.appendableMaxObjects
        appendableMaxAnonymous = manifest.serve.appendableMaxAnonymous
        listConcurrency = manifest.serve.listMaxConcurrent
        listEntryBudget = manifest.serve.listMaxEntries
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
    /// File work that may read many entries (listings): run on the I/O pool, stopped as soon as
    /// its client disconnects.
    case work(WorkJob)
}

/// Blocking file work whose answer only its client wants: cancelled when the client goes away,
/// it stops at its next step (a listing: the next folder entry) and answers an error nobody reads.
public final class WorkJob: Sendable {
    private let work: @Sendable (WorkCancellation) -> ServiceResponse
    public let cancellation = WorkCancellation()

    init(work: @escaping @Sendable (WorkCancellation) -> ServiceResponse) { self.work = work }

    public func run() -> ServiceResponse { work(cancellation) }
}

/// Set once, read at every step of the work.
public final class WorkCancellation: Sendable {
    private let cancelled = NIOLockedValueBox(false)
    public init() {}
    public func cancel() { cancelled.withLockedValue { $0 = true } }
    public var isCancelled: Bool { cancelled.withLockedValue { $0 } }
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
    /// The manifest and keys as of the request being handled: a followed manifest
    /// (`ServedManifest`, `derive serve`) is reloaded when its files change.
    public var manifest: Manifest { configuration.manifest }
    public var verifier: Verifier { configuration.verifier }
    var authorizer: Authorizer { configuration.authorizer }
    var configuration: ServedConfiguration { followed?.configuration ?? fixed }
    /// The configuration given at start (tests), or the first a followed manifest loaded.
    private let fixed: ServedConfiguration
    /// The manifest `derive serve` follows; nil: `fixed` for good.
    public let followed: ServedManifest?
    public let engine: any EngineDescription
    /// Where renders run (render workers in `derive serve`), with `engine`'s limits.
    public let renderer: any ImageRenderer
    public let maxBodyBytes: Int
    public let settings: ServerSettings
    let cache: RenderCache
    let gate: RenderGate
    let logger: Logger
    let clock: @Sendable () -> Int
    let requestCounter = Counter()
    let digests = DigestCache()
    /// Headers, ETag and time of uploads (the state folder's `serve-metadata.sqlite`).
    public let metadata: ObjectMetadataStore
    private let folders = NIOLockedValueBox<[String: ConfinedFolder]>([:])
    /// Objects AppendObject created, and multipart uploads in progress (both in the state folder).
    let appendables: AppendableObjects
    let multipart: MultipartStore
    /// One append at a time: each checks the length and rewrites the object.
    let appendLock = NIOLock()
    /// Admission of listings (`ServerSettings.listConcurrency` at once).
    let listingGate: RenderGate
    /// Bytes of request bodies being read into memory now (`bounded`).
    let bufferedBytes = NIOLockedValueBox(0)
    /// Seals where truncated listings resume (a key the caller may not see stays unnamed).
    let listingTokens = ListingTokens()
    /// Test hooks (empty when serving).
    let hooks = ServiceHooks()
    /// Longest save-as body (the chain and target).
    static let maxSaveAsBody = 64 * 1024

    /// Fails when the cache folder lies inside a bucket folder (a request could then write entries).
    /// Without `renderer`, renders run in this process when `engine` is loaded here (tests).
    public init(manifest: Manifest, verifier: Verifier, engine: any EngineDescription, renderer: (any ImageRenderer)? = nil,
                cacheFolder: String, maxBodyBytes: Int = 20 * 1024 * 1024,
                settings: ServerSettings = ServerSettings(), recorded: any RecordedOutputs = NoRecordedOutputs(),
                metadata: ObjectMetadataStore? = nil, followed: ServedManifest? = nil,
                logger: Logger = Logger(label: "derive.serve"),
                clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }) throws {
        // Control files inside a bucket could be replaced by a PUT: refuse to serve them.
        // Nor Derive's per-user secrets and registry (attack 51a's 3: listed and answered to anyone).
        let controls = [("the manifest", manifest.file), ("the state folder", manifest.stateFolder), ("the serve cache folder", cacheFolder)]
            + (StateHome.tokenFolder().map { [("Derive's folder of per-user secrets (XDG_STATE_HOME)", $0)] } ?? [])
        for bucket in manifest.buckets {
            for (what, path) in controls where Self.isInside(path, bucket.path) {
                throw ServeSetupError(message: "\(what) \(path) is inside the folder of bucket '\(bucket.name)' (\(bucket.path)), where requests could write it. Move the bucket's path or the file (state: for the state folder, XDG_STATE_HOME for Derive's secrets) so that no control file is in a bucket.")
            }
        }
        try? StateFiles.createPrivateFolder(cacheFolder)   // renders of private objects: the user's alone
        self.fixed = followed?.configuration ?? ServedConfiguration(manifest: manifest, verifier: verifier, recorded: recorded)
        self.followed = followed
        self.engine = engine
        guard let renderer = renderer ?? engine.inProcessRenderer else {
            throw ServeSetupError(message: "no renderer: derive serve renders in render workers (derive-render-worker)")
        }
        self.renderer = renderer
        self.maxBodyBytes = maxBodyBytes
        self.settings = settings
        self.cache = RenderCache(folder: cacheFolder, maxBytes: settings.cacheMaxBytes)
        self.gate = RenderGate(capacity: settings.renderThreads + settings.renderQueue)
        self.listingGate = RenderGate(capacity: settings.listConcurrency)
        self.logger = logger
        self.clock = clock
        if let metadata {
            self.metadata = metadata
        } else {
            let path = manifest.stateFolder + "/" + StateFiles.objectMetadata
            // Not memory-only when it cannot be opened: appendability and headers would then be
            // lost at the next start, and only the log would say so. Serve does not start.
            do { self.metadata = try ObjectMetadataStore(path: path) } catch let error as MetadataDatabaseError {
                throw ServeSetupError(message: error.message)
            } catch {
                throw ServeSetupError(message: "cannot open the object metadata database \(path) (\(error)). Move that file away (serve then starts a new, empty one) or use another state folder.")
            }
        }
        // Before the appendable rows are loaded: a copied project's records follow their files (F2).
        MovedRecords.rebind(self.metadata, buckets: manifest.buckets, logger: logger)
        appendables = try AppendableObjects(store: self.metadata, legacyFile: manifest.stateFolder + "/" + StateFiles.serveAppendable,
                                            limits: AppendableObjects.Limits(total: settings.appendableMaxObjects,
                                                                             anonymous: settings.appendableMaxAnonymous),
                                            clock: clock)
        multipart = MultipartStore(root: manifest.stateFolder + "/" + StateFiles.serveUploads,
                                   limits: MultipartStore.Limits(maxPartBytes: maxBodyBytes, maxOpenUploads: settings.multipartMaxUploads,
                                                                 maxAnonymousUploads: settings.multipartMaxAnonymousUploads,
                                                                 maxPendingBytes: settings.multipartMaxBytes, maxAnonymousBytes: settings.multipartMaxAnonymousBytes,
                                                                 maxAgeSeconds: settings.multipartExpiryHours * 3600),
                                   clock: clock)
        // Uploads abandoned while the server was down go now; later ones go with the periodic sweep.
        multipart.sweep()
        // Bodies of appends a stop interrupted (each request removes its own when it ends).
        if let uploads = multipart.folder(create: false) {
            let removed = ServeStateCleanup.removeStagedAppends(in: uploads)
            if !removed.isEmpty {
                logger.notice("removed \(removed.count) staged append \(removed.count == 1 ? "body" : "bodies") a stopped server left in \(uploads.path) (\(removed.prefix(5).joined(separator: ", "))\(removed.count > 5 ? ", …" : ""))")
            }
        }
        logAppendableStartup()
    }

    public var cacheFolder: String { cache.folder }

    /// Whether `path` is `folder` or below it, after resolving links (the file system decides).
    static func isInside(_ path: String, _ folder: String) -> Bool {
        func real(_ path: String) -> String {
            // The nearest existing ancestor resolved, the rest appended (a folder not created yet).
            var existing = URL(literalFilePath: path).standardizedFileURL
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

    /// Listings walking folders now.
    public var listingsInFlight: Int { listingGate.inFlight }

    /// Renders admitted and not yet finished.
    public var rendersInFlight: Int { gate.inFlight }

    /// Handles a whole request synchronously (tests, fuzzing): the same steps the HTTP front runs.
    public func handle(_ request: ServiceRequest) -> ServiceResponse {
        switch begin(request) {
        case .respond(let response): return response
        case .render(let job): return job.run()
        case .work(let job): return job.run()
        case .upload(let upload):
            upload.write(request.body)
            return upload.finish()
        case .needsBody(let limit, let next):
            switch next.continue(request.body.prefix(limit)) {
            case .respond(let response): return response
            case .render(let job): return job.run()
            case .work(let job): return job.run()
            default: return ServiceResponse(status: 500, headers: [], payload: .data(Data()))
            }
        }
    }

    /// Bytes all bodies held in memory at once (DeleteMultipleObjects, CompleteMultipartUpload,
    /// save-as) may take together: their Content-Length, or their limit when they have none.
    static let bufferedBodyBudget = 64 * 1024 * 1024

    /// A body to be read into memory takes its share of `bufferedBodyBudget` from its head, and
    /// gives it back once read and answered; when the budget is spent the request is 503 SlowDown
    /// (attack 23's F2: each connection could hold 8 MiB, thousands of them the whole memory).
    func bounded(_ step: Step, _ request: ServiceRequest, _ exchange: Exchange) -> Step {
        guard case .needsBody(let limit, let next) = step else { return step }
        let declared = request.headers["content-length"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let share = min(limit, max(0, declared ?? limit))
        let budget = bufferedBytes
        let taken = budget.withLockedValue { held -> Bool in
            guard held + share <= Self.bufferedBodyBudget else { return false }
            held += share
            return true
        }
        guard taken else {
            return .respond(exchange.response(for: OSSErrorBody(status: 503, code: "SlowDown",
                message: "Too many request bodies are being read into memory. Please reduce your request rate and retry later.", ec: "0044-00000001")))
        }
        return .needsBody(limit: limit, BodyContinuation { body in
            defer { budget.withLockedValue { $0 -= share } }
            return next.continue(body)
        })
    }

    /// Decides what a request needs from its head alone: authentication, authorisation and
    /// limits are all checked before any body byte is read.
    public func begin(_ request: ServiceRequest) -> Step {
        let exchange = Exchange(requestId: requestCounter.nextId(), host: request.headers["host"] ?? "localhost",
                                method: request.method, target: request.target, logger: logger)
        do {
            // A manifest that changed is loaded again first; one that no longer loads refuses
            // every request (its old ACLs are never applied again).
            if let followed, case .failure(let unavailable) = followed.current() {
                throw unavailable.cause == nil ? OSSErrorBody.manifestUnavailable : OSSErrorBody.manifestRefusedByOtherFiles
            }
            try SingleHeaders.check(request)
            multipart.sweepIfDue()
            return try bounded(route(request, exchange), request, exchange)
        } catch {
            return .respond(exchange.response(for: error))
        }
    }

    // MARK: Routing

    /// An object: what object operations work on.
    struct Target {
        var bucket: Bucket
        var key: ObjectKey
        var query: [OSSSignature.Parameter]
    }

    /// A request's bucket and key, either of which may be absent.
    struct ResolvedTarget {
        var bucket: Bucket?
        var key: ObjectKey?
        var query: [OSSSignature.Parameter]
        /// A GET or HEAD of `folder/` in a website bucket: the folder's bytes with the `/`.
        var websiteFolder: [UInt8]? = nil
    }

    /// Bucket and key from the request target, before the operation is known. The path is
    /// percent-decoded to bytes and the key validated on those bytes (`ObjectKey`): never on
    /// `Character`s. No bucket (`/`) and an empty key (`/bucket/`) are service and bucket requests.
    func resolve(_ request: ServiceRequest) throws -> ResolvedTarget {
        let parts = request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawQuery = parts.count > 1 ? String(parts[1]) : ""
        guard SignedRequest.isWellFormedQuery(rawQuery) else {
            throw OSSErrorBody.badRequest("The query string has a malformed percent escape or text that is not UTF-8.", code: "InvalidArgument")
        }
        let query = SignedRequest.parseQuery(rawQuery)
        try SingleHeaders.check(query)
        let path: [UInt8]
        do { path = try ObjectKey.percentDecode(Array(parts[0].utf8)) } catch {
            throw OSSErrorBody.invalidObjectName("the request path has a malformed percent escape")
        }
        // Host names are case-insensitive (RFC 9110 §4.2.3): PRIV.localhost names bucket priv.
        let hostName = ((request.headers["host"] ?? "").split(separator: ":").first.map(String.init) ?? "").lowercased()
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
        if bucketName.isEmpty { return ResolvedTarget(bucket: nil, key: nil, query: query) }
        guard let bucket = manifest.bucket(named: bucketName) else { throw OSSErrorBody.noSuchBucket(bucketName) }
        if keyBytes.isEmpty { return ResolvedTarget(bucket: bucket, key: nil, query: query) }
        if bucket.website != nil, request.method == "GET" || request.method == "HEAD", keyBytes.last == slash {
            return ResolvedTarget(bucket: bucket, key: nil, query: query, websiteFolder: keyBytes)
        }
        do {
            return ResolvedTarget(bucket: bucket, key: try ObjectKey(bytes: keyBytes), query: query)
        } catch {
            throw OSSErrorBody.invalidObjectName(error.description)
        }
    }
    /// Static website hosting (OSS): an anonymous GET or HEAD of the bucket root (no
    /// sub-resource: a signed one lists the bucket) or of `folder/` reads the index document
    /// below it. Nil: the request is not a website request. Authorisation is the handler's, as
    /// for any object.
    func websiteIndex(_ resolved: ResolvedTarget, bucket: Bucket, caller: String?, method: String) throws -> (key: ObjectKey, operation: OSSOperation)? {
        let operation: OSSOperation = method == "HEAD" ? .headObject : .getObject
        if let folder = resolved.websiteFolder {
            // A signed request names `folder/` itself, which is not an object key.
            guard caller == nil, let website = bucket.website,
                  let key = try? ObjectKey(bytes: folder + Array(website.index.utf8)) else {
                throw OSSErrorBody.invalidObjectName(ObjectKey.Problem.trailingSlash.description)
            }
            return (key, operation)
        }
        guard caller == nil, resolved.key == nil, Self.isPageQuery(resolved.query), method == "GET" || method == "HEAD",
              let website = bucket.website, let key = try? ObjectKey(website.index) else { return nil }
        return (key, operation)
    }

    /// Query names a ListObjects or ListObjectsV2 call reads (any case).
    static let listingParameters: Set<String> = ["prefix", "marker", "max-keys", "delimiter", "encoding-type", "list-type",
                                                 "continuation-token", "start-after", "fetch-owner"]

    /// Whether an anonymous GET of a website's root with this query is a page address (`?utm_source=`,
    /// a cache-buster: the index document, as a web server answers) rather than a bucket call: none of
    /// its names is a listing parameter, a sub-resource or an `x-oss-` / `response-` parameter.
    static func isPageQuery(_ query: [OSSSignature.Parameter]) -> Bool {
        query.allSatisfy { parameter in
            let name = parameter.name.lowercased()
            return !listingParameters.contains(name) && OSSOperation.subresourceSpellings[name] == nil
                && !name.hasPrefix("x-oss-") && !name.hasPrefix("response-")
        }
    }

    /// The request target's path and raw query (nil without `?`).
    static func splitTarget(_ target: String) -> (path: Substring, query: Substring?) {
        guard let mark = target.firstIndex(of: "?") else { return (target[...], nil) }
        return (target[..<mark], target[target.index(after: mark)...])
    }

    /// The website's error document for an anonymous reader of a missing key, with status 404;
    /// nil when the bucket has none or the caller may not read it (then NoSuchKey stands). The
    /// request's `Range` and conditions were for the missing key, which has none: the document is
    /// answered whole (attack 18's L4: a media element's `Range` got the XML NoSuchKey).
    func websiteErrorPage(_ bucket: Bucket, request: OperationRequest, head: Bool) -> ServiceResponse? {
        var whole = request.request
        whole.headers = whole.headers.filter { name, _ in name != "range" && name != "x-oss-range-behavior" && !name.hasPrefix("if-") }
        let document = OperationRequest(service: request.service, request: whole, operation: request.operation, bucket: request.bucket,
                                        key: request.key, query: request.query, caller: request.caller, exchange: request.exchange)
        guard request.caller == nil, let name = bucket.website?.error, let key = try? ObjectKey(name),
              (try? authorizer.authorizeRead(bucket, key, caller: nil)) != nil else { return nil }
        let page: ServiceResponse
        do { page = try plain(Target(bucket: bucket, key: key, query: []), request: document, head: head) } catch {
            // The client gets NoSuchKey without the document: the log says so (attack 43's L-b: it said "answered 403").
            if let note = (error as? OSSErrorBody)?.logNote {
                logger.warning("\(note); it is the website's error document: answered 404 NoSuchKey without it",
                               metadata: ["request-id": .string(request.exchange.requestId), "target": .string(request.exchange.target)])
            }
            return nil
        }
        guard page.status == 200 else { return nil }
        return ServiceResponse(status: 404, headers: page.headers, payload: page.payload)
    }

    /// Whether `opened` (the folder just opened for `bucket`) is the folder of another bucket of
    /// the manifest in force, lies inside one, or holds one: by device and inode, walking up
    /// from its descriptor (`ConfinedFolder.lineage`). Asked when a folder is opened, not per
    /// request. With a followed manifest the other buckets' folders and the folders above them
    /// are the ones its walks found, checked at the start of this request (attack 18's P1: no
    /// other bucket's path is resolved again); otherwise each is opened and walked up.
    func sharesFiles(_ bucket: Bucket, _ opened: ConfinedFolder) -> Bool {
        let mine = opened.lineage
        guard let me = mine.first else { return true }
        func same(_ a: FileStatus, _ b: FileStatus) -> Bool { a.device == b.device && a.inode == b.inode }
        let walked = followed?.folderLineages() ?? [:]
        for other in configuration.manifest.buckets where other.name != bucket.name {
            if let line = walked[URL(literalFilePath: other.path).standardizedFileURL.path] {
                // Led nowhere: no folder there, it shares nothing.
                guard let them = line.first else { continue }
                // Never looked at by a load: not served until one has.
                if them == [-1, -1] { return true }
                func held(_ pair: [Int64]) -> Bool { pair.count == 2 && UInt64(bitPattern: pair[0]) == me.device && UInt64(bitPattern: pair[1]) == me.inode }
                if mine.contains(where: { UInt64(bitPattern: them[0]) == $0.device && UInt64(bitPattern: them[1]) == $0.inode })
                    || line.contains(where: held) { return true }
                continue
            }
            // No folder there: it shares nothing.
            guard let theirs = try? ConfinedFolder(path: other.path) else { continue }
            let line = theirs.lineage
            guard let them = line.first else { return true }
            if mine.contains(where: { same($0, them) }) || line.contains(where: { same($0, me) }) { return true }
        }
        return false
    }

    /// The bucket's folder: the one at its path now (links on the way followed, as build does),
    /// nil while there is none. Kept open while it is still the folder at the path: each call
    /// compares the held folder's device and inode with what `stat` finds at the path now and
    /// opens the path again when they differ (attack 17's N1/N1b: the folder opened at start was
    /// served after `rm -rf site` and a build, after a blue/green link swap, and after
    /// `mv site drafts; mkdir site` with `drafts` declared private, until a restart).
    ///
    /// With a followed manifest the folder must also be the one the manifest in force was
    /// loaded with (`ServedManifest.validatedFolder`, which reloads when a bucket folder
    /// changes, so the loader's overlap and control-file checks saw it): one swapped in between
    /// is refused (503), never served.
    func folder(_ bucket: Bucket, create: Bool = false) throws -> ConfinedFolder? {
        var info = stat()
        if create, !(stat(bucket.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR) {
            // A file in the way fails here, with the file system's reason (logged as an internal error).
            try FileManager.default.createDirectory(atPath: bucket.path, withIntermediateDirectories: true)
        }
        guard stat(bucket.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        let now = (device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        func same(_ status: FileStatus?) -> Bool { status.map { $0.device == now.device && $0.inode == now.inode } ?? false }
        if let expected = followed?.validatedFolder(bucket.path), !same(expected) {
            throw OSSErrorBody.bucketFolderChanged
        }
        // Keyed by the folder's path: a reloaded manifest may point a bucket elsewhere.
        if let open = folders.withLockedValue({ $0[bucket.path] }), same(open.heldStatus) { return open }
        let opened: ConfinedFolder
        do { opened = try ConfinedFolder(path: bucket.path) } catch {
            // The folder is there, but the user serve runs as may not open it (`chmod 000`): every
            // key and the listing are refused and logged as a sub-folder's are, not answered as
            // missing or empty (attack 43's L-e: 404 NoSuchKey and an empty listing).
            guard case .permissionDenied = error else { return nil }
            throw OSSErrorBody.unreadable("bucket's folder", logNote: "the folder of bucket '\(bucket.name)' (\(TerminalText.escaped(bucket.path))) "
                                          + "cannot be read by the user derive serve runs as (permission denied)")
        }
        // Replaced again between the stat and the open: not the folder checked.
        guard same(opened.heldStatus) else { throw OSSErrorBody.bucketFolderChanged }
        // The folder opened itself, whatever the manifest's checks saw (attack 18's R1: a link
        // flipped away and back while the manifest loaded left a folder inside a private bucket
        // taken for checked): never another bucket's folder, inside one, or holding one.
        guard !sharesFiles(bucket, opened) else { throw OSSErrorBody.bucketFolderChanged }
        return folders.withLockedValue { folders in
            if let open = folders[bucket.path], same(open.heldStatus) { return open }
            folders[bucket.path] = opened
            return opened
        }
    }

    func kind(_ bucket: Bucket, _ key: ObjectKey) -> ConfinedFolder.EntryKind? {
        guard !Self.isNeverObject(key) else { return nil }
        return (try? folder(bucket))?.kind(key)
    }

    /// A key naming one of Derive's temporary files (an upload or a build output being written,
    /// left by a killed writer): never an object, whatever the file system holds.
    static func isTemporary(_ key: ObjectKey) -> Bool {
        key.segments.last.map { ConfinedFolder.isTemporaryName($0) } ?? false
    }

    /// A key that is never an object, whatever the file system holds: one of Derive's temporary
    /// files, or one in a version control folder or a `.derive` (`ObjectKey.isUnserved`).
    static func isNeverObject(_ key: ObjectKey) -> Bool { isTemporary(key) || key.isUnserved }

    /// Classifies the request into one OSS operation and hands it to that operation's handler.
    /// An operation without a handler answers 501 NotImplemented from the head alone (before
    /// authentication: nothing is read or written either way, and no body byte is consumed).
    func route(_ request: ServiceRequest, _ exchange: Exchange) throws -> Step {
        let resolved = try resolve(request)
        var operation = OSSOperation.classify(method: request.method, hasBucket: resolved.bucket != nil,
                                              hasKey: resolved.key != nil || resolved.websiteFolder != nil,
                                              query: resolved.query, headers: request.headers)
        guard var handler = OperationHandlers.all[operation], let bucket = resolved.bucket else {
            throw OSSErrorBody.notImplemented(operation)
        }
        let writtenKey = resolved.key?.string ?? resolved.websiteFolder.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let signed = SignedRequest(method: request.method, bucket: bucket.name, key: writtenKey, query: resolved.query,
                                   headers: request.headers)
        let caller = try verifier.authenticate(signed, now: clock())
        // `/site` (path style, no final slash) on a website bucket: the index page's relative
        // addresses would resolve from the server's root, so the browser is sent to `/site/`, as
        // web servers send a folder's address. Only when that page is served: the index document
        // a file an anonymous GET may read (`websitePage`, what serve's Website line prints from).
        // Otherwise `/site` is answered as `/site/` is (attack 41b's L1: a private index, a
        // private bucket or no index at all was sent to `/site/`, which answered 403 or 404).
        let (path, rawQuery) = Self.splitTarget(request.target)
        if caller == nil, bucket.website != nil, resolved.key == nil, resolved.websiteFolder == nil, Self.isPageQuery(resolved.query),
           request.method == "GET" || request.method == "HEAD", path == "/" + bucket.name, websitePage(bucket, folder: "") != nil {
            let location = "/\(bucket.name)/" + (rawQuery.map { "?" + $0 } ?? "")
            return .respond(ServiceResponse(status: 301, headers: [("Location", location)], payload: .data(Data())))
        }
        var key = resolved.key
        var isWebsiteIndex = false
        if let index = try websiteIndex(resolved, bucket: bucket, caller: caller, method: request.method),
           let indexHandler = OperationHandlers.all[index.operation] {
            key = index.key
            operation = index.operation
            handler = indexHandler
            isWebsiteIndex = true
        }
        // Handlers read sub-resources by OSS's spelling, whatever case was sent (`?UPLOADID=` is
        // `uploadId`, as the classifier took it); the signature above used the names as sent.
        return try handler.begin(OperationRequest(service: self, request: request, operation: operation, bucket: bucket, key: key,
                                                  query: OSSOperation.canonicalNames(resolved.query), caller: caller, exchange: exchange,
                                                  isWebsiteIndex: isWebsiteIndex))
    }

    // MARK: Reading

    /// Opens the object for reading; anything but a regular file reached without links is NoSuchKey.
    func open(_ bucket: Bucket, _ key: ObjectKey) throws -> Int32 {
        guard !Self.isNeverObject(key), let folder = try folder(bucket), Self.fitsFileSystem(key) else { throw OSSErrorBody.noSuchKey(key.string) }
        let fd: Int32
        do { fd = try folder.openForReading(key) } catch {
            switch error {
            case .notFound, .symbolicLink, .mountPoint, .notRegularFile, .notAFolder, .specialFile: throw OSSErrorBody.noSuchKey(key.string)
            case .permissionDenied:
                // The file is there, but the user serve runs as may not open it (`chmod 000`): a
                // refusal, as OSS answers one, not a server fault (attack 42c's L2: 500 InternalError).
                // Logged where the answer is made, with what the client got.
                throw OSSErrorBody.unreadable("object's file", logNote: "'\(key)' in bucket '\(bucket.name)' cannot be read by the user derive serve runs as (permission denied)")
            case .system, .alreadyExists, .tooLarge, .removalRefused: throw error
            }
        }
        // Another project's control file (a hard link to its lock, a project put in the bucket
        // after the manifest was checked) is no object here: answered as a missing key.
        var info = stat()
        if fstat(fd, &info) != 0 || authorizer.recorded.isForeignControlFile(bucket: bucket.name, key: key.string,
                                                                                      device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) {
            close(fd)
            throw OSSErrorBody.noSuchKey(key.string)
        }
        return fd
    }

    /// Whether `key` is a file a GET would open: one answered as missing (another project's control
    /// file, Derive's per-user records) is a missing watermark too, so the answer does not tell
    /// it exists (attack 53b's 3: a state-home secret answered 404 NoSuchKey, a missing key 400).
    func isReadableFile(_ bucket: Bucket, _ key: ObjectKey) -> Bool {
        guard kind(bucket, key) == .file else { return false }
        do {
            close(try open(bucket, key))
        } catch let error as OSSErrorBody where error.code == "NoSuchKey" {
            return false
        } catch {}
        return true
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
        // One description for the key and the render (`derive serve`: the engine as looked up
        // again every few seconds, its old workers retired when it changed).
        let engine = self.engine.current()
        let marks = try authorizer.authorizeWatermarks(pipeline, bucket: bucket, caller: caller) { isReadableFile(bucket, $0) }
        let sourceFD = try open(bucket, target.key)
        let source = OpenFile(descriptor: sourceFD, length: 0)
        // The source and its marks, sized from their files, must fit one render before any of
        // them is read or hashed (a 600 MB source with a 500 MB mark: 29 s and 2.3 GB, then 400).
        let resolver = ConfinedResolver(folder: try folder(bucket), allowed: Set(marks), limits: engine.limits)
        let inputs = try RenderInputs(pipeline, resolver: resolver, limits: engine.limits)
        var status = stat()
        guard fstat(sourceFD, &status) == 0 else { throw OpenFile.FileReadError(code: errno) }
        try inputs.checkSource(target.key.string, bytes: Int(status.st_size))
        var parts = [engine.identity, pipeline.canonical,
                     try digests.digests(of: sourceFD, identity: DigestCache.identity(bucket.path, target.key)).sha256]
        for mark in marks {
            let fd = try open(bucket, mark)
            defer { close(fd) }
            parts.append("object:\(mark.string)=\(try digests.digests(of: fd, identity: DigestCache.identity(bucket.path, mark)).sha256)")
        }
        for case .font(let name, _, _) in pipeline.dependencies {
            // The font file's identity (path, size, mtime): a replaced font invalidates entries.
            let file = engine.fontFile(name) ?? "missing"
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            parts.append("font:\(name)=\(file):\(size):\(modified)" + (engine.fontRendering(name).map { " (" + $0 + ")" } ?? ""))
        }
        let actionKey = Self.sha256(Data(parts.joined(separator: "\n").utf8))
        if let hit = cache.lookup(actionKey) {
            return .respond(try answer(.file(hit.body), hit.contentType))
        }
        guard let ticket = gate.admit() else { throw OSSErrorBody.slowDown }
        return .render(RenderJob(ticket: ticket) { [self] cancellation in
            do {
                guard !cancellation.isCancelled else {
                    throw OSSErrorBody(status: 503, code: "SlowDown", message: "The render was cancelled: the client disconnected or the server is stopping.")
                }
                let bytes = try Self.readSource(source.descriptor, key: target.key, inputs: inputs)
                let output = try renderer.render(bytes, pipeline, limits: engine.limits, resolver: resolver, cancellation: cancellation)
                requestCounter.rendered()
                // Keyed by the engine before a change and rendered after it (by a worker started
                // since): answered, not kept under a key that names the other engine.
                if self.engine.generation == engine.generation {
                    cache.store(actionKey, contentType: output.contentType, bytes: output.bytes)
                }
                return try answer(.data(output.bytes), output.contentType)
            } catch {
                return exchange.response(for: error)
            }
        })
    }

    /// The source's bytes for libvips (which needs them in memory), refusing more than fits one
    /// render beside its marks (checked again: it may have grown since it was sized).
    static func readSource(_ fd: Int32, key: ObjectKey, inputs: RenderInputs) throws -> Data {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw OpenFile.FileReadError(code: errno) }
        guard Int(info.st_size) <= inputs.maxSourceBytes else { throw inputs.sourceRefusal(key.string, bytes: Int(info.st_size)) }
        return try OpenFile(descriptor: dup(fd), length: Int(info.st_size)).readAll()
    }

    // MARK: Writing

    /// A temporary file for `key`; keys that cannot be files answer OSS's 400, not 500.
    func createFile(_ bucket: Bucket, _ key: ObjectKey, exchange: Exchange) throws -> TemporaryFile {
        guard Self.fitsFileSystem(key) else {
            throw OSSErrorBody.invalidObjectName("a part of the key between '/' is longer than \(Self.maxSegmentBytes) bytes, the file system's limit")
        }
        guard !Self.isTemporary(key) else {
            throw OSSErrorBody.invalidObjectName("names of the form .<name>.<pid>.<number>.derive-tmp are Derive's temporary files, never objects")
        }
        // Every writer comes here: the build's keys are refused again, whoever asks, whatever
        // the operation checked from the head (one rule for PUT, save-as, copy, complete, append).
        try authorizer.refuseOwned(bucket, key)
        try Self.refuseProjectPath(key)
        try Self.refuseUnservedPath(key)
        guard let folder = try folder(bucket, create: true) else { throw OSSErrorBody.internalError }
        if folder.kind(key) == .folder {
            throw OSSErrorBody.invalidObjectName("'\(key)' is a folder of other objects here, so it cannot also be an object")
        }
        do { return try folder.createTemporary(for: key, keepingLinks: true) } catch {
            switch error {
            case .notAFolder, .notRegularFile:
                throw OSSErrorBody.invalidObjectName("a part of '\(key)' before its last '/' is an object, so it cannot be a folder")
            case .symbolicLink, .mountPoint, .specialFile:
                // Refused like a forbidden path: the answer must not reveal the bucket's layout.
                throw OSSErrorBody.keptAtKey
            default:
                throw error
            }
        }
    }

    // MARK: Helpers

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
    let limits: Limits

    func object(_ name: String) throws -> Data {
        guard let key = try? ObjectKey(name), allowed.contains(key), let folder else { throw Authorizer.missingWatermark(name) }
        do {
            return try folder.read(key, maxBytes: limits.maxBytes)
        } catch ConfinementError.tooLarge(_, let size, _) {
            // The caller may read it: its size is the answer, not "does not exist".
            try limits.checkWatermark(name, bytes: size, width: 0, height: 0)
            throw Authorizer.missingWatermark(name)
        } catch {
            throw Authorizer.missingWatermark(name)
        }
    }

    func objectSize(_ name: String) -> Int? {
        guard let key = try? ObjectKey(name), allowed.contains(key), let folder else { return nil }
        return folder.status(key).map { Int($0.size) }
    }
}

/// Request ids and render counts.
final class Counter: Sendable {
    private let state = NIOLockedValueBox<(next: Int, renders: Int)>((0, 0))
    /// A random prefix per server: ids stay unique across restarts without revealing the PID.
    private let prefix = UInt32.random(in: 0 ... .max)

    /// 24 upper-case hex digits, as OSS's: the server's random prefix, then a counter.
    func nextId() -> String {
        let next = state.withLockedValue { $0.next += 1; return $0.next }
        return String(format: "%08X%016X", prefix, next)
    }

    func rendered() { state.withLockedValue { $0.renders += 1 } }
    var renders: Int { state.withLockedValue { $0.renders } }
}
