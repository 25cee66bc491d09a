import Access
import ArgumentParser
import Builder
import DeriveServer
import Confinement
import Foundation
import ImagingCore
import RenderWorkers
import Manifest
import NIOConcurrencyHelpers
import Planner
import GRDB
import Synchronization

/// The manifest's access keys with their secrets from the environment.
enum AccessKeys {
    static func load(_ manifest: Manifest) -> [String: String] {
        var keys: [String: String] = [:]
        for key in manifest.accessKeys {
            if let secret = ProcessInfo.processInfo.environment[key.secretEnv], !secret.isEmpty {
                keys[key.id] = secret
            } else {
                Output.printWarning("access key '\(key.id)' has no secret: set the environment variable \(key.secretEnv)")
            }
        }
        return keys
    }

    static func manifest(_ path: String) throws -> Manifest {
        var argument = ManifestArgument()
        argument.manifest = path
        return try Workspace(argument).manifest
    }
}

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print a signed URL for an object, as Alibaba's oss2 SDK would make it."
    )

    @Argument(help: "The object, as bucket/key.")
    var object: String

    @Option(help: "An image/ processing chain to sign with the URL.")
    var process: String?

    @Option(help: "A style of the manifest's catalogue (signed as x-oss-process=style/NAME).")
    var style: String?

    @Option(help: "Lifetime in seconds.")
    var expires: Int = 3600

    @Flag(help: "Sign with OSS V4 (HMAC-SHA256) instead of V1.")
    var v4 = false

    @Option(help: "Region for V4 (default: the manifest's region).")
    var region: String?

    @Option(help: "The endpoint the URL points at.")
    var endpoint: String = "http://127.0.0.1:8080"

    @Option(help: "Which of the manifest's access keys signs (default: the first).")
    var accessKeyId: String?

    @Option(help: "The manifest file.")
    var manifest: String = "derive.yaml"

    func validate() throws {
        if process != nil, style != nil { throw ValidationError("give --process or --style, not both") }
        if let problem = Self.endpointProblem(endpoint) {
            throw ValidationError("--endpoint '\(TerminalText.escaped(endpoint))' \(problem); give the server's base address, http://HOST[:PORT] or https://HOST[:PORT] (default http://127.0.0.1:8080)")
        }
        // A URL that expires now or earlier is refused by every server: no point printing it.
        if expires < 1 { throw ValidationError("--expires must be at least 1 second; \(expires) makes a URL that is already expired") }
        if v4, expires > 604_800 { throw ValidationError("--expires for V4 URLs is 1 to 604800 seconds (7 days)") }
        // The V1 Expires is now + this: an Int near its maximum overflowed (a crash).
        if !v4, expires > Self.maxV1Expires {
            throw ValidationError("--expires must be from 1 to \(Self.maxV1Expires) seconds (100 years) for V1 URLs, not \(expires)")
        }
    }

    /// Why `endpoint` cannot start a URL to an object, nil when it can: an http or https address
    /// with a host, an optional port and path (a proxy's prefix), and nothing after (a query or a
    /// fragment would swallow the object's path; attack 44a's L4 printed `not a url/images/…`).
    static func endpointProblem(_ endpoint: String) -> String? {
        if endpoint.unicodeScalars.contains(where: { TerminalText.isControl($0) || $0.properties.isWhitespace }) {
            return "holds a space or a control character"
        }
        guard let parts = URLComponents(string: endpoint), let scheme = parts.scheme?.lowercased() else { return "is not a URL" }
        guard scheme == "http" || scheme == "https" else { return "is not http:// or https://" }
        guard let host = parts.host, !host.isEmpty else { return "names no host" }
        if parts.user != nil || parts.password != nil { return "holds a user name or password, which a signed URL never carries" }
        if let port = parts.port, !(1...65_535).contains(port) { return "has a port outside 1 to 65535" }
        if parts.query != nil || parts.fragment != nil || endpoint.contains("?") || endpoint.contains("#") {
            return "has a query or a fragment, which would come before the object's path"
        }
        return nil
    }

    /// The longest V1 lifetime: 100 years of 365.25 days.
    static let maxV1Expires = 3_155_760_000

    func run() throws {
        let loaded = try AccessKeys.manifest(manifest)
        let keys = AccessKeys.load(loaded)
        guard let id = accessKeyId ?? loaded.accessKeys.first(where: { keys[$0.id] != nil })?.id, let secret = keys[id] else {
            Output.printError("no usable access key: declare access_keys in \(manifest) and set their secret_env variables")
            throw ExitCode.failure
        }
        guard let (bucket, key) = PathKey.split(object), loaded.bucket(named: bucket) != nil else {
            Output.printError("'\(object)' must be bucket/key with a bucket of \(manifest)")
            throw ExitCode.failure
        }
        // Only keys serve (and OSS) can answer: `..`, `.`, empty segments and control characters never name an object.
        do throws(ObjectKey.Problem) {
            _ = try ObjectKey(key)
        } catch {
            Output.printError("cannot sign '\(object)': \(error.description); no object has such a key")
            throw ExitCode.failure
        }
        if let style, loaded.catalogue[style] == nil {
            Output.printError("unknown style '\(style)' (see derive styles \(manifest))")
            throw ExitCode.failure
        }
        var parameters: [OSSSignature.Parameter] = []
        if let process { parameters.append(.init("x-oss-process", process.hasPrefix("image/") ? process : "image/" + process)) }
        if let style { parameters.append(.init("x-oss-process", "style/" + style)) }
        let credentials = Credentials(id: id, secret: secret)
        let now = Int(Date().timeIntervalSince1970)
        let url = v4
            ? OSSSignature.signV4URL(endpoint: endpoint, bucket: bucket, key: key, credentials: credentials, region: region ?? loaded.region,
                                     lifetime: expires, now: now, parameters: parameters)
            : OSSSignature.signV1URL(endpoint: endpoint, bucket: bucket, key: key, credentials: credentials, lifetime: expires, now: now,
                                     parameters: parameters)
        print(url)
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the manifest's buckets over HTTP with OSS semantics (ACLs, signatures, x-oss-process)."
    )

    @OptionGroup var manifest: ManifestArgument

    @Option(help: "Port, 0 to 65535 (0 picks a free one).")
    var port: Int = 8080

    @Option(help: "Address to bind; loopback unless you mean otherwise (an IPv6 address with or without brackets: ::1, [::1]).")
    var host: String = "127.0.0.1"

    /// The address bound: `host` without the brackets a URL puts around an IPv6 address.
    var bindHost: String {
        host.count > 2 && host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    func validate() throws {
        // An Int past 65535 wrapped modulo 65536 when bound (attack 41b's M2: --port 131152 bound port 80).
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535, not \(port)") }
        if bindHost.isEmpty { throw ValidationError("--host is empty; give the address to bind, e.g. 127.0.0.1 (the default) or ::1") }
    }

    func run() async throws {
        let loaded = try AccessKeys.manifest(manifest.manifest)
        let verifier = Verifier(keys: AccessKeys.load(loaded), region: loaded.region)
        // The manifest's limits, the render deadline and cost limits included (engine defaults otherwise).
        let limits = Limits(maxBytes: loaded.limits.bytes, maxSide: loaded.limits.side, maxPixels: loaded.limits.pixels,
                            maxOutputSide: loaded.limits.outputSide, renderSeconds: loaded.limits.renderSeconds.map(Double.init),
                            maxWork: loaded.limits.work, maxMemory: loaded.limits.memory, setBy: .manifest)
        let service: ObjectService
        let serveLock: ServeLock
        let workers: RenderWorkerPool
        let stateProblem: String?
        do {
            // One server per state folder, taken before anything in it is opened or cleaned up.
            serveLock = try ServeLock(stateFolder: loaded.stateFolder)
            // Renders run in worker processes: a deadline, a disconnect or SIGTERM kills the worker.
            let settings = ServerSettings(loaded)
            let engine = try EngineIdentityCache.lookup()
            workers = try RenderWorkerPool(size: settings.renderThreads, expectedEngineVersion: engine.report.version)
            let recorded = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
            stateProblem = recorded.stateProblem()
            let cacheFolder = loaded.stateFolder + "/serve-cache"
            // The manifest is followed while serving: an edit (a bucket made private, a website
            // removed, a bucket added) applies to the next request, without a restart.
            let path = manifest.manifest
            let followed = ServedManifest(initial: ServedConfiguration(manifest: loaded, verifier: verifier, recorded: recorded),
                                          rootPath: path, cacheFolder: cacheFolder, alsoWatched: { RegisteredProjects.watchedFiles($0) }) {
                try Self.reload(path)
            }
            service = try ObjectService(manifest: loaded, verifier: verifier, engine: ServedEngine(limits: limits, found: engine, workers: workers),
                                        renderer: workers,
                                        cacheFolder: cacheFolder, settings: settings,
                                        recorded: recorded, followed: followed)
        } catch {
            Output.printError("derive serve will not start: \(error)")
            throw ExitCode.failure
        }
        let buckets = loaded.buckets.map(\.name).joined(separator: ", ")
        // The address as URLs spell it (`[::1]`: attack 41b's L2 printed http://::1:8080).
        let host = DeriveHTTPServer.urlHost(bindHost)
        var server = DeriveHTTPServer(service: service, host: bindHost, port: port)
        // At SIGTERM, SIGINT or SIGHUP: workers ended and every worker folder of this process removed
        // (an idle worker's folder was left behind once in a while).
        // The metadata log is checkpointed: the main file alone then holds every record.
        let metadata = service.metadata
        server.beforeExit = {
            if let warning = metadata.checkpoint() { Output.printError("warning: \(warning)") }
            workers.shutdown()
            RenderWorkerPool.removeTemporaryFolders()
        }
        try await server.run { bound in
            // Written unbuffered: scripts wait for this line to learn the port.
            _ = try? Output.writeStandardOutput(Data("Serving \(buckets) on http://\(host):\(bound) (path-style /bucket/key, or Host: bucket.localhost)\n".utf8))
            // Website buckets: the address to open in a browser.
            for bucket in loaded.buckets where bucket.website != nil {
                let page = service.websitePage(bucket, among: Self.pageFolders(bucket, manifest: loaded))
                _ = try? Output.writeStandardOutput(Data("Website \(bucket.name): \(Self.websiteLine(bucket, page: page, host: host, port: bound, manifest: loaded))\n".utf8))
            }
            if let stateProblem {
                Output.printWarning("\(stateProblem): objects Derive writes are private (anonymous requests get 403) until `derive build` records them")
            }
        }
        withExtendedLifetime(serveLock) {}
    }

    /// What follows `Website NAME: ` in serve's start-up lines: the address of the page served, or,
    /// when anonymous readers get no page yet, that plainly with how to get one (issue #13: before a
    /// first build it printed the bucket's root, which answered 403).
    static func websiteLine(_ bucket: Bucket, page: ObjectService.WebsitePage, host: String, port: Int, manifest: Manifest) -> String {
        let index = bucket.website?.index ?? "index.html"
        switch page {
        case .served(let folder):
            return websiteAddress(bucket, host: host, port: port, folder: folder)
        case .awaitingBuild(let folder):
            // Attack 45c's sv2: a copy of a built manifest beside it (same `index:`) was told to
            // run `derive build`, which refuses to write the other project's index.
            if let index = manifest.index, let indexBucket = manifest.bucket(named: index.bucket),
               let owner = ForeignProjectFiles(besides: manifest.file).owner(of: indexBucket.path + "/" + index.path), owner.isControlFile {
                return "no page is served yet: \(websiteAddress(bucket, host: host, port: port, folder: folder)) answers 403, and `derive build` "
                    + "of this manifest would not make one: its index \(TerminalText.escaped(index.bucket + "/" + index.path)) "
                    + owner.reason(display: { TerminalText.escaped(Planner.display($0, manifestPath: manifest.file)) },
                                   fix: "serve that project (derive serve \(TerminalText.escaped(Planner.display(owner.manifest, manifestPath: manifest.file)))), or give this manifest an index path of its own and build it")
            }
            return "no page is served yet: \(websiteAddress(bucket, host: host, port: port, folder: folder)) answers 403 until "
                + "`derive build` records this manifest's outputs (there is no build state serve can use); run `derive build` "
                + "and open that address (serve needs no restart)"
        case .privateIndex(let key):
            return "no page is served yet: its index document \(TerminalText.escaped(bucket.name + "/" + key)) is private (anonymous readers get 403); "
                + "give it a public ACL (public-read: the bucket's `acl:`, an `objects:` rule matching it, or the `acl:` of the rule that writes it) and run `derive build`"
        case .unreadableIndex(let key):
            return "no page is served yet: its index document \(TerminalText.escaped(bucket.name + "/" + key)) cannot be read by this server "
                + "(permission denied: anonymous readers get 403); make it readable to the user derive serve runs as (e.g. chmod a+r) "
                + "and open \(websiteAddress(bucket, host: host, port: port, folder: (key as NSString).deletingLastPathComponent)) (serve needs no restart)"
        case .unreadableFolder:
            return "no page is served yet: the bucket's folder \(TerminalText.escaped(bucket.path)) cannot be read by this server "
                + "(permission denied: anonymous readers get 403); make it readable to the user derive serve runs as (e.g. chmod a+rx) "
                + "and open \(websiteAddress(bucket, host: host, port: port)) (serve needs no restart)"
        case .noIndex:
            let folders = pageFolders(bucket, manifest: manifest).map { TerminalText.escaped($0.isEmpty ? bucket.name + "/" : bucket.name + "/" + $0 + "/") }
            return "no page is served yet: no \(TerminalText.escaped(index)) in \(folders.joined(separator: " or ")); write one there "
                + "(or a rule that writes it, then `derive build`) and open \(websiteAddress(bucket, host: host, port: port))"
        }
    }

    /// Where a website bucket's pages work. Path-style (`/site/`, the final '/' keeping relative
    /// links inside the bucket), except for `url: /`: its addresses (`/lake.avif`) resolve from the
    /// host's root, so only the virtual host (`site.localhost`, the bucket at the root) serves them.
    /// `folder`: where the page is below the bucket's root ("" the root, `site` a folder, as
    /// `pageFolders` found it): the address that answers the page, not a root that answers 403
    /// (attack 39b's L5: `Manifests/page.yaml`'s page is at `/samples/site/`).
    static func websiteAddress(_ bucket: Bucket, host: String, port: Int, folder: String = "") -> String {
        let encoded = folder.addingPercentEncoding(withAllowedCharacters: CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: ":;"))) ?? folder
        let below = folder.isEmpty ? "" : encoded + "/"
        guard bucket.url == "/" else { return "http://\(host):\(port)/\(bucket.name)/\(below)" }
        return "http://\(bucket.name).localhost:\(port)/\(below) (its url: / resolves from the host's root, so not at http://\(host):\(port)/\(bucket.name)/\(below))"
    }

    /// Folders of a website bucket where its page may be, in the order asked: the root, then the
    /// folder of the manifest's index (in this bucket) and each folder above it, shallowest first
    /// (the page that reads the index is beside it or above it).
    static func pageFolders(_ bucket: Bucket, manifest: Manifest) -> [String] {
        guard let index = manifest.index, index.bucket == bucket.name else { return [""] }
        let parts = index.path.split(separator: "/").dropLast().map(String.init)
        return [""] + parts.indices.map { parts[...$0].joined(separator: "/") }
    }

    /// The manifest loaded again for a running server, with its keys and records; its errors
    /// (file:line:column) as the reason it is refused. `serve:` and `limits:` keep their start-up
    /// values (README: restart serve for those).
    static func reload(_ path: String) throws -> ServedConfiguration {
        var argument = ManifestArgument()
        argument.manifest = path
        let result = argument.load()
        guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
            let errors = result.diagnostics.sorted.filter { $0.severity == .error }.prefix(3).map(\.description)
            throw ServedManifest.Unavailable(errors.isEmpty ? "\(path) is not a valid manifest" : errors.joined(separator: "; "))
        }
        return ServedConfiguration(manifest: manifest, verifier: Verifier(keys: AccessKeys.load(manifest), region: manifest.region),
                                   recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest))
    }
}

/// The engine as its render worker described it (`EngineIdentityCache`): cache keys record the
/// same engine identity as build fingerprints, without libvips in this process.
struct DescribedEngine: EngineDescription {
    let limits: Limits
    let found: EngineIdentityCache.Found
    /// Which of a `ServedEngine`'s descriptions this is (0: the one found at start).
    var generation = 0

    var identity: String { found.identity.engine + " " + found.identity.encoder }
    func fontFile(_ type: String) -> String? { found.fonts.file(type) }
    /// How the font is drawn, and the digest of the files the answer was read against
    /// (fontconfig's configuration among them): a text render's key changes with any of them,
    /// even an edit that the drawing summary does not show (when in doubt, render again).
    func fontRendering(_ type: String) -> String? {
        found.fonts.rendering(type).map { $0 + "; read against " + String(found.inputs.prefix(16)) }
    }
}

/// `derive serve`'s engine, looked up again at most every `period` seconds (at the first render
/// request after it), as a fresh command would look it up: a fontconfig file written, or a
/// library upgraded, while serve runs changes how renders are drawn. The check is one stat of
/// each file the engine answer was read against (`Found.isCurrent`); only when one changed is it
/// looked up again (the engine cache, else a worker `--describe`). A different answer retires the
/// render workers started before (each draws text as the configuration it loaded at start)
/// before it is put in force, so a render keyed by the new engine never runs on an old worker.
/// Plain objects never ask.
final class ServedEngine: EngineDescription {
    let limits: Limits
    let workers: RenderWorkerPool
    let period: Double
    private let lookUp: @Sendable () throws -> EngineIdentityCache.Found
    private let state: Mutex<(engine: DescribedEngine, checked: Double, checking: Bool)>
    /// Checks of the stamps and engines put in force (tests, measurements).
    private let counts = Mutex<(checks: Int, changes: Int)>((0, 0))

    init(limits: Limits, found: EngineIdentityCache.Found, workers: RenderWorkerPool, period: Double = ServedEngine.defaultPeriod,
         lookUp: @escaping @Sendable () throws -> EngineIdentityCache.Found = { try EngineIdentityCache.lookup() }) {
        self.limits = limits
        self.workers = workers
        self.period = period
        self.lookUp = lookUp
        state = Mutex((DescribedEngine(limits: limits, found: found), Self.now(), false))
    }

    /// Seconds between checks: a change is in force for renders asked at most this long after it.
    static let defaultPeriod: Double = 2

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    var identity: String { described.identity }
    func fontFile(_ type: String) -> String? { described.fontFile(type) }
    func fontRendering(_ type: String) -> String? { described.fontRendering(type) }
    var generation: Int { described.generation }
    private var described: DescribedEngine { state.withLock { $0.engine } }

    /// The engine in force, checked first when the last check is `period` old. One request
    /// checks; the others meanwhile go on with the engine in force.
    func current() -> any EngineDescription {
        let now = Self.now()
        let (engine, due) = state.withLock { state -> (DescribedEngine, Bool) in
            let due = !state.checking && now - state.checked >= period
            if due { state.checking = true }
            return (state.engine, due)
        }
        guard due else { return engine }
        var next = engine
        if !engine.found.isCurrent, let found = try? lookUp(), found.differs(from: engine.found) {
            // Retired first: a request that takes the new engine gets a worker started after this.
            workers.retire(expectedEngineVersion: found.report.version)
            next = DescribedEngine(limits: limits, found: found, generation: engine.generation + 1)
        }
        // Not found (a worker being reinstalled): the engine in force stays, asked again next period.
        let changed = next.generation != engine.generation
        state.withLock { $0 = (next, Self.now(), false) }
        counts.withLock { $0.checks += 1; if changed { $0.changes += 1 } }
        return next
    }

    var checks: (checks: Int, changes: Int) { counts.withLock { $0 } }
}

/// The builder's state store as the server's record of built outputs and their rule's ACL.
/// Opened when the first lookup finds it (a build may run after serve starts).
///
/// Fails closed: while the state is missing, was found corrupt, is not Derive's, or belongs to
/// another manifest (its `owner` record names a different manifest, or none: a copied
/// project's or a shared `state:` folder's records say nothing about this manifest's outputs),
/// an object is private when a rule may write it, the lock lists it, or it lies in a bucket
/// that a rule writes with an explicit `acl:`. A missing record must not make a private output
/// public (an object ACL rule of the target bucket may well say public-read).
struct BuiltOutputs: RecordedOutputs {
    let stateFolder: String
    /// Buckets that rules write with an explicit `acl:`.
    let guardedBuckets: Set<String>
    /// The owner a state of this manifest records: the manifest's absolute real path.
    let owner: String
    /// What the rules may write, and the lock that lists what they wrote.
    let ruleOutputs: RuleOutputs
    let lockFile: String
    private let store = NIOLockedValueBox<Opened>(.notYet)
    /// The lock's paths as last read, with the identity, size and times of the file read.
    /// `left`: by path (`bucket/key`) and by place (`LockFile.Left.place`), each line under both.
    /// `outputs`: the lock's output paths by their file's place (`recordedPlace`).
    /// `index`: the place of the index the lock names. `digests`: each output line's digest, by path.
    private let lock = NIOLockedValueBox<(identity: [Int64], paths: PathSet, left: [String: BucketACL], outputs: [String: [String]], index: (path: String, place: String)?,
                                          digests: PathDictionary<String>)?>(nil)
    /// The state as read whole from the store opened (its identity) at its `data_version` (another
    /// connection's commit changes it): every lookup answers from it, after one `data_version`
    /// read (round 23: a listing's keys read 3 to 6 SQL transactions each, a GET about 8).
    /// The store is held, not its `ObjectIdentifier`: a store opened again after the file was
    /// moved aside may be allocated at the freed one's address, and a fresh connection's
    /// `data_version` may equal the old one's, so an identifier would hand the old state's view
    /// (its owner, its records) to the new file.
    private let stateViews = NIOLockedValueBox<(store: StateStore, version: Int64, view: StateView, readAt: Double)?>(nil)
    /// Seconds a whole read of the state is the newest one after a commit (`stateView`).
    let viewInterval: Double

    /// What serve asks of the state, read in one transaction: the owner it records, every output
    /// record (ACL, rule, source), the left records by path and by place, and the records' places.
    struct StateView {
        /// The manifest the state's `owner` record names (nil: none), and whether it is this one.
        var owner: String?
        var isOwn = false
        var outputs: [String: RecordedOutput] = [:]
        /// The most private ACL of the `leftFiles` rows with that path, and with that place.
        var leftByPath: [String: BucketACL] = [:]
        var leftByPlace: [String: BucketACL] = [:]
        /// Nil when the state is not this manifest's.
        var places: RecordedPlaces?
    }

    /// The state's output records by path and by their file's place; nil when the state is not
    /// this manifest's.
    struct RecordedPlaces {
        var acl: [String: BucketACL] = [:]
        var byPlace: [String: [String]] = [:]
        /// The most private ACL of all records (an index lists every output), nil without records.
        var mostPrivate: BucketACL?
        /// The places of the files Derive wrote besides outputs (the index: `controlFiles`).
        var controlPlaces: Set<String> = []
    }

    /// The state as opened, with the identity (device, inode) of the file it was opened from.
    enum Opened { case notYet, open(StateStore, FileIdentity?), broken(String, FileIdentity?) }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    /// The manifest served: a key's place (`LockFile.place`) is its bucket's folder + the key.
    let manifest: Manifest
    /// Other projects' files (attack 42a's H1, H2).
    let foreign: ForeignServedFiles

    init(stateFolder: String, manifest: Manifest, viewInterval: Double = 0.5) {
        self.viewInterval = viewInterval
        self.manifest = manifest
        self.stateFolder = stateFolder
        self.guardedBuckets = Set(manifest.rules.filter { $0.acl != nil }.map(\.targetBucket))
        self.owner = BuildSession.ownerName(manifest.file)
        self.ruleOutputs = RuleOutputs(manifest)
        self.lockFile = manifest.lockFile
        self.foreign = ForeignServedFiles(manifest: manifest)
        // The state records each output's folder with its links resolved (`RealFolder`): keys'
        // places are matched in that form too.
        let realBase = RealFolder.of((manifest.lockFile as NSString).deletingLastPathComponent)
        self.realLockFile = realBase + "/derive.lock"
        self.realFolderPlaces = Dictionary(manifest.buckets.map { ($0.name, Self.folderPlace(RealFolder.of($0.path), lockFile: realBase + "/derive.lock")) },
                                           uniquingKeysWith: { a, _ in a })
    }

    /// The lock's folder with its links resolved (+ `/derive.lock`), and each bucket's folder place in that form.
    let realLockFile: String
    let realFolderPlaces: [String: String]

    func foreignOwner(bucket: String, key: String) -> String? { foreign.owner(bucket: bucket, key: key) }

    func foreignReadNote(bucket: String, key: String) -> String? {
        let owner = foreign.nestedOutputOwner(bucket: bucket, key: key)
        // In doubt as the build calls it (`leftACL`): that reason, not a project matched otherwise.
        if !ownFile(bucket: bucket, key: key).verified, isDerivative(bucket: bucket, key: key),
           let doubt = foreign.neighbourDoubt(bucket: bucket, key: key, recordedElsewhere: owner != nil) {
            return "'\(key)' of bucket '\(bucket)' may be another manifest's output, in doubt: \(doubt); answered privately, as the build leaves it"
        }
        return owner.map {
            "'\(key)' of bucket '\(bucket)' is an output that \($0.manifest), another project\($0.nested ? " nested in the bucket" : "")\($0.gone ? " whose manifest is no longer there" : ""), records; answered no more publicly than that project gives it (serve that manifest to publish it)"
        }
    }

    func isForeignControlFile(bucket: String, key: String, device: UInt64, inode: UInt64) -> Bool {
        foreign.isControlFile(device: device, inode: inode) || foreign.isNestedControlFile(bucket: bucket, key: key)
            || foreign.isStateHomeRecord(bucket: bucket, key: key)
    }

    /// A key that reaches a recorded output's file under another key (`placedOutputACL`) counts too.
    func isDerivative(bucket: String, key: String) -> Bool {
        ruleOutputs.mayProduce(bucket: bucket, key: key) || lockLists(bucket: bucket, key: key)
            || placedOutputACL(bucket: bucket, key: key) != nil
    }

    /// Whether the lock lists `bucket/key`. Looked at at each call (a build rewrites it) and read
    /// again when its device, inode, size or modification time changed (serve asks for every
    /// key the state does not record); a lock that does not parse lists nothing, the rules'
    /// patterns still guard their outputs.
    func lockLists(bucket: String, key: String) -> Bool {
        lockLines()?.paths.contains(bucket + "/" + key) ?? false
    }

    /// The ACL a build left a file at `bucket/key` under: the more private of the lock's `left`
    /// lines and the state's `leftFiles` records (round 21's N2: a line deleted or edited in the
    /// lock does not widen what the state recorded), each matched by its path and by the file's
    /// place, so a bucket renamed over the same folder reaches the record too (N5). A record of a
    /// file gone counts alike (N4): whatever is put back there is answered no more publicly.
    func leftACL(bucket: String, key: String) -> BucketACL? {
        let path = bucket + "/" + key
        let place = manifest.bucket(named: bucket).map { LockFile.place(bucket: $0, key: key, manifest: manifest) }
        var acl: BucketACL?
        func narrow(_ other: BucketACL?) { if let other { acl = acl.map { .morePrivate($0, other) } ?? other } }
        if let left = lockLines()?.left {
            narrow(left["p:" + path])
            if let place { narrow(left["f:" + place]) }
        }
        narrow(stateLeftACL(path: path, place: place))
        narrow(placedOutputACL(bucket: bucket, key: key))
        // Another project's recorded output, that project nested in the bucket deeper than
        // validate looks (round 45): never more public than its builder gives it.
        // A file this manifest itself records is its own: another project's lock lines matching
        // it by key and bytes alone (a clone or a backup copy beside it, mid-edit) do not cap it
        // (attack 46b's N4); another project's placed record still does.
        // Nor does another project's `left` line when this manifest's lock records the file with
        // the very bytes it holds: they are this manifest's render, not what that project left
        // (attack 48a's F2: a line written while this lock could not be read, in doubt, made
        // this manifest's public output 403 until that project built again).
        let (ownBytes, verified) = ownFile(bucket: bucket, key: key)
        let elsewhere = foreign.nestedOutputACL(bucket: bucket, key: key, byKey: !verified, leftLinesCount: !ownBytes)
        narrow(elsewhere)
        // While a manifest beside this one is in doubt (its lock does not read, or it does not
        // load), or a loading one's rule writes this very name and nothing records the file, a key
        // this manifest writes whose file is not verified its own may be that manifest's output,
        // which nothing can say the ACL of: private, as the build keeps it (README: "kept as left
        // in place (private), in doubt"). The builds' one definition (`NeighbourDoubt`).
        if !verified, isDerivative(bucket: bucket, key: key),
           foreign.neighbourDoubt(bucket: bucket, key: key, recordedElsewhere: elsewhere != nil) != nil { narrow(.private) }
        // The search for other projects stopped at a bound (validate warns): the unweighed rest may
        // hold a private writer into this public bucket (attack 52b's 5/5b, decoy manifests), so
        // only a file this manifest verifies its own is answered as the bucket says; the rest is
        // private until the bound is no longer reached.
        if !verified, let inForce = manifest.bucket(named: bucket), NeighbourProjects.mostPublic(inForce).isPublic,
           foreign.boundReached() { narrow(.private) }
        return acl
    }

    /// Whether the file at `bucket/key` holds the bytes this manifest's lock records for it
    /// (`ownBytes`), and whether it is verified this manifest's: recorded (its state or its lock)
    /// and holding the bytes one of them records. Only then is a record's ACL what the file was
    /// given (attack 49b's F2: hero.yaml's private output, put there with --overwrite, was
    /// answered under this manifest's public record).
    func ownFile(bucket: String, key: String) -> (ownBytes: Bool, verified: Bool) {
        let path = bucket + "/" + key
        let ownBytes = lockLines()?.digests[path].map { foreign.holds(bucket: bucket, key: key, digest: $0) } ?? false
        let recorded = ((try? recordedOutput(bucket: bucket, key: key)) ?? nil) != nil
        let listed = recorded || lockLists(bucket: bucket, key: key)
        return (ownBytes, listed && (ownBytes || recordedDigest(path).map { foreign.holds(bucket: bucket, key: key, digest: $0) } ?? false))
    }

    /// The digest this manifest's state records for the output `path`; nil without a record
    /// (or a state that cannot be read).
    func recordedDigest(_ path: String) -> String? {
        guard case .open(let store, _)? = try? openStore() else { return nil }
        return (try? store.queue.read { db in try String.fetchOne(db, sql: "SELECT outputDigest FROM outputs WHERE path = ?", arguments: [path]) }) ?? nil
    }

    /// The place of a recorded output `bucket/key` (`LockFile.place`): the folder it was written
    /// to when the record keeps it (the state's `folder`), else its bucket's folder in the
    /// manifest in force, else (its bucket renamed or gone) the path's own text as a place (a
    /// bucket named as its folder), as legacy `left` lines are placed.
    func recordedPlace(_ path: String, folder: String = "") -> String? {
        guard let (name, key) = PathKey.split(path) else { return nil }
        if !folder.isEmpty { return Self.folderPlace(folder, lockFile: realLockFile) + key }
        if let bucket = manifest.bucket(named: name) { return LockFile.place(bucket: bucket, key: key, manifest: manifest) }
        return path
    }

    /// `folder` relative to the lock's folder with a trailing `/` ("" for that folder itself),
    /// absolute when outside it: `LockFile.place`'s folder part, for a folder a record kept.
    static func folderPlace(_ folder: String, lockFile: String) -> String {
        let base = (lockFile as NSString).deletingLastPathComponent
        if folder == base { return "" }
        if base == "/" { return String(folder.dropFirst()) + "/" }
        if folder.hasPrefix(base + "/") { return String(folder.dropFirst(base.count + 1)) + "/" }
        return folder + "/"
    }

    /// The ACL of the recorded outputs whose file `bucket/key` reaches under another key (round
    /// 22's V1: a bucket renamed over the same folder, or a new bucket over a rule's sub-folder,
    /// answered a private rule's current outputs publicly before any build; records were matched
    /// by key only). The state's record gives the ACL; an output only the lock lists (a clone, a
    /// state without that record) is private. Nil when no other key's record reaches the file.
    func placedOutputACL(bucket: String, key: String) -> BucketACL? {
        guard let inForce = manifest.bucket(named: bucket) else { return nil }
        let path = bucket + "/" + key
        var places = [LockFile.place(bucket: inForce, key: key, manifest: manifest)]
        if let real = realFolderPlaces[bucket], real + key != places[0] { places.append(real + key) }
        var acl: BucketACL?
        func narrow(_ other: BucketACL) { acl = acl.map { .morePrivate($0, other) } ?? other }
        let lockOutputs = lockLines()?.outputs
        let lockOthers = Set(places.flatMap { lockOutputs?[$0] ?? [] }).subtracting([path])
        let state = placedRecords(places, path: path, alsoAsked: lockOthers)
        for other in state?.reaching.values ?? [:].values { narrow(other) }
        for other in lockOthers { narrow(state?.known[other] ?? .private) }
        // The index a build wrote, reached under any key (a bucket renamed without its objects:
        // rule, the private rules removed): no more public than the outputs it lists, private
        // when the state records none (the lock does not say their ACL).
        // The lock's index line counts under another key only: under its own key the index's
        // ACL is `EffectiveACL`'s (a clone's public site index stays public before its build).
        let index = lockLines()?.index
        if (state?.atIndex ?? false) || places.contains(where: { $0 == index?.place && path != index?.path }) {
            narrow(state?.mostPrivate ?? .private)
        }
        return acl
    }

    /// What `placedOutputACL` asks of the state for a key at `places`: the records of other paths
    /// reaching them with their ACLs, the ACLs of `alsoAsked` (the lock's lines there), whether
    /// the index Derive wrote is there, and the most private ACL of all records. Nil without a
    /// state of this manifest.
    struct PlacedRecords {
        var reaching: [String: BucketACL] = [:]
        var known: [String: BucketACL] = [:]
        var atIndex = false
        var mostPrivate: BucketACL?
    }

    private func placedRecords(_ places: [String], path: String, alsoAsked: Set<String>) -> PlacedRecords? {
        guard case .open(let store, _)? = try? openStore(), let (view, current) = try? stateView(store) else { return nil }
        var result: PlacedRecords?
        if let recorded = view.places {
            var found = PlacedRecords(mostPrivate: recorded.mostPrivate)
            for place in places {
                for other in recorded.byPlace[place] ?? [] where other != path { found.reaching[other] = recorded.acl[other] ?? .private }
            }
            for other in alsoAsked { found.known[other] = recorded.acl[other] }
            found.atIndex = places.contains { recorded.controlPlaces.contains($0) }
            result = found
        }
        if current { return result }
        // The state changed less than `viewInterval` after its last whole read (a build is
        // committing): the records found then are read again by path now (a record gone since
        // still counts: it only narrows), and so are the paths a bucket in force (or a path's own
        // text) places at `places`, which finds a record the build added under the manifest
        // served. A record added since under a bucket not in force or in another folder counts
        // from the next whole read.
        let reachingAsked = Set(result?.reaching.keys ?? [:].keys).union(candidatePaths(places)).subtracting([path])
        let asked = reachingAsked.union(alsoAsked)
        let fresh = try? store.queue.read { db -> [String: BucketACL]? in
            guard let recordedOwner = try String.fetchOne(db, sql: "SELECT manifest FROM owner"),
                  StateOwner.isSame(recorded: recordedOwner, owner: owner) else { return nil }
            var acl: [String: BucketACL] = [:]
            for other in asked {
                guard let value = try String.fetchOne(db, sql: "SELECT acl FROM outputs WHERE path = ?", arguments: [other]) else { continue }
                acl[other] = BucketACL(rawValue: value) ?? .private
            }
            return acl
        }
        guard let fresh else { return nil }   // not this manifest's any more (or unreadable): as without a state
        var merged = result ?? PlacedRecords()
        merged.known = [:]   // the lock's lines: as recorded now (a record gone since is private)
        for (other, acl) in fresh {
            if alsoAsked.contains(other) { merged.known[other] = merged.known[other].map { .morePrivate($0, acl) } ?? acl }
            if reachingAsked.contains(other) { merged.reaching[other] = merged.reaching[other].map { .morePrivate($0, acl) } ?? acl }
            merged.mostPrivate = merged.mostPrivate.map { .morePrivate($0, acl) } ?? acl
        }
        return merged
    }

    /// The record paths that a bucket in force places at one of `places` (by its folder, as
    /// written and with links resolved), and a place's own text as a path (a bucket not in force).
    func candidatePaths(_ places: [String]) -> Set<String> {
        var paths: Set<String> = []
        for place in places {
            for bucket in manifest.buckets {
                for prefix in Set([LockFile.place(bucket: bucket, key: "", manifest: manifest), realFolderPlaces[bucket.name] ?? ""]) where place.hasPrefix(prefix) {
                    let key = place.dropFirst(prefix.count)
                    if !key.isEmpty { paths.insert(bucket.name + "/" + key) }
                }
            }
            if let (name, _) = PathKey.split(place), manifest.bucket(named: name) == nil { paths.insert(place) }
        }
        return paths
    }

    /// The state as `StateView`, and whether it is current. Read again when its `data_version`
    /// moved (a commit) or another file was opened, but at most once per `viewInterval`: a build
    /// commits each output it records, and a whole read of a 10 000-output state after each
    /// commit cost every request 20-30 ms of CPU (debug) and held the build's commits back. A view
    /// read less than `viewInterval` before a commit is returned as not current: callers then ask
    /// the state by path (`recordedOutputBySQL`, `stateLeftACLBySQL`, `placedRecords`). The
    /// version is read before the records: a commit between the two is read again, never missed.
    func stateView(_ store: StateStore) throws -> (view: StateView, current: Bool) {
        let version = try store.queue.inDatabase { db in try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0 }
        let now = ProcessInfo.processInfo.systemUptime
        if let cached = stateViews.withLockedValue({ $0 }), cached.store === store {
            if cached.version == version { return (cached.view, true) }
            if now - cached.readAt < viewInterval { return (cached.view, false) }
        }
        let view = try store.queue.read { db in try readView(db) }
        stateViews.withLockedValue { $0 = (store, version, view, now) }
        return (view, true)
    }

    /// One read of everything serve asks of the state (one transaction).
    private func readView(_ db: Database) throws -> StateView {
        var view = StateView()
        view.owner = try String.fetchOne(db, sql: "SELECT manifest FROM owner")
        guard let recordedOwner = view.owner, StateOwner.isSame(recorded: recordedOwner, owner: owner) else { return view }
        view.isOwn = true
        var places = RecordedPlaces()
        // `recordedPlace` per row, with each folder's and each bucket's place worked out once
        // (per row, the path arithmetic made three quarters of a whole read).
        var folderPlaces: [String: String] = [:]
        let bucketPlaces = Dictionary(manifest.buckets.map { ($0.name, LockFile.place(bucket: $0, key: "", manifest: manifest)) },
                                      uniquingKeysWith: { a, _ in a })
        let rows = try Row.fetchCursor(db, sql: "SELECT path, acl, rule, source, folder FROM outputs")
        while let row = try rows.next() {
            let path: String = row[0], folder: String = row[4] ?? ""
            // An unreadable value is private: a record never widens access by accident.
            let recordedACL = (row[1] as String?).flatMap { BucketACL(rawValue: $0) } ?? .private
            view.outputs[path] = RecordedOutput(acl: recordedACL, rule: row[2], source: row[3] ?? "")
            places.acl[path] = recordedACL
            places.mostPrivate = places.mostPrivate.map { .morePrivate($0, recordedACL) } ?? recordedACL
            // By the folder it was written to, and by its bucket's folder now (or its text).
            guard let (name, key) = PathKey.split(path) else { continue }
            let inForce = bucketPlaces[name].map { $0 + key } ?? path
            places.byPlace[inForce, default: []].append(path)
            if !folder.isEmpty {
                let prefix = folderPlaces[folder] ?? Self.folderPlace(folder, lockFile: realLockFile)
                folderPlaces[folder] = prefix
                if prefix + key != inForce { places.byPlace[prefix + key, default: []].append(path) }
            }
        }
        let realBase = (realLockFile as NSString).deletingLastPathComponent
        let plain = (lockFile as NSString).deletingLastPathComponent
        for file in try String.fetchAll(db, sql: "SELECT path FROM controlFiles") {
            places.controlPlaces.insert(file.hasPrefix(realBase + "/") ? String(file.dropFirst(realBase.count + 1)) : file)
            if file.hasPrefix(plain + "/") { places.controlPlaces.insert(String(file.dropFirst(plain.count + 1))) }
        }
        view.places = places
        if try db.tableExists("leftFiles") {
            for row in try Row.fetchAll(db, sql: "SELECT path, place, acl FROM leftFiles") {
                // A record narrows only: any value not known is private.
                let acl = (row["acl"] as String?).flatMap { BucketACL(rawValue: $0) } ?? .private
                let path: String? = row["path"], place: String? = row["place"]
                if let path { view.leftByPath[path] = view.leftByPath[path].map { .morePrivate($0, acl) } ?? acl }
                if let place { view.leftByPlace[place] = view.leftByPlace[place].map { .morePrivate($0, acl) } ?? acl }
            }
        }
        return view
    }

    /// The state's record of a file left at `path` or `place`; nil when it has none, or when the
    /// state is not this manifest's or cannot be read (the lock's lines still apply, and a key a
    /// rule writes is private without a state: `recordedOutput`).
    func stateLeftACL(path: String, place: String?) -> BucketACL? {
        guard case .open(let store, _)? = try? openStore(), let (view, current) = try? stateView(store) else { return nil }
        guard current else { return stateLeftACLBySQL(path: path, place: place) }
        guard view.isOwn else { return nil }
        // The rows whose path is `path` or whose place is `place` (`path` without one), as `stateLeftACLBySQL` selects them.
        let byPath = view.leftByPath[path], byPlace = view.leftByPlace[place ?? path]
        if let byPath, let byPlace { return .morePrivate(byPath, byPlace) }
        return byPath ?? byPlace
    }

    /// `stateLeftACL` as one SQL query per key (serve's way before round 23): kept as the reference
    /// the `StateView` answers are compared with (`ServeStateViewRound23Tests`).
    func stateLeftACLBySQL(path: String, place: String?) -> BucketACL? {
        guard case .open(let store, _)? = try? openStore() else { return nil }
        return try? store.queue.read { db -> BucketACL? in
            guard let recordedOwner = try String.fetchOne(db, sql: "SELECT manifest FROM owner"),
                  StateOwner.isSame(recorded: recordedOwner, owner: owner), try db.tableExists("leftFiles") else { return nil }
            let values = try String.fetchAll(db, sql: "SELECT acl FROM leftFiles WHERE path = ? OR place = ?", arguments: [path, place ?? path])
            // A record narrows only: any value not known is private.
            var acl: BucketACL?
            for value in values {
                let one = BucketACL(rawValue: value) ?? .private
                acl = acl.map { .morePrivate($0, one) } ?? one
            }
            return acl
        }
    }

    /// The lock's output paths and left files, read again when its device, inode, size or
    /// modification time changed; nil without a lock.
    private func lockLines() -> (paths: PathSet, left: [String: BucketACL], outputs: [String: [String]], index: (path: String, place: String)?,
                                 digests: PathDictionary<String>)? {
        var info = stat()
        guard stat(lockFile, &info) == 0, Int(info.st_size) <= LockFile.maxBytes else { return nil }
        let identity = [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
                        Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        return lock.withLockedValue { cached in
            if let cached, cached.identity == identity { return (cached.paths, cached.left, cached.outputs, cached.index, cached.digests) }
            var paths = PathSet()
            var digests: PathDictionary<String> = [:]
            var left: [String: BucketACL] = [:]
            var outputs: [String: [String]] = [:]
            var index: (path: String, place: String)?
            if let data = FileManager.default.contents(atPath: lockFile), LockFile.isDeriveLock(data),
               let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) {
                paths = lock.entries.keys
                for (path, entry) in lock.entries { digests[path] = entry.digest }
                for path in paths { if let place = recordedPlace(path) { outputs[place, default: []].append(path) } }
                index = lock.index.flatMap { line in recordedPlace(line.path).map { (line.path, $0) } }
                for (path, line) in lock.left {
                    let acl = BucketACL(rawValue: line.acl) ?? .private
                    for name in ["p:" + path, "f:" + line.place, "f:" + LockFile.located(line, in: manifest).place] {
                        left[name] = left[name].map { .morePrivate($0, acl) } ?? acl
                    }
                }
            }
            cached = (identity, paths, left, outputs, index, digests)
            return (paths, left, outputs, index, digests)
        }
    }

    /// The state as opened (again when the file at its path changed).
    private func openStore() throws -> Opened {
        let path = stateFolder + "/" + StateStore.fileName
        return try self.store.withLockedValue { opened -> Opened in
            // The database is kept open: when the file at its path is no longer the one opened
            // (moved aside by another manifest's build, deleted, replaced), it is opened again, so
            // a takeover or a deletion counts at once, not at the next restart.
            let current = FileIdentity.of(path)
            if case .open(_, let identity) = opened, identity != current { opened = .notYet }
            if case .broken(_, let identity) = opened, identity != current { opened = .notYet }
            if case .notYet = opened, current != nil {
                // A database that is not Derive's is neither migrated nor trusted.
                do { try StateOwnership.check(folder: stateFolder) } catch {
                    opened = .broken("\(error)", current)
                    return opened
                }
                let store = try StateStore(folder: stateFolder)
                // A corrupt state was moved aside and an empty one started: its silence proves nothing.
                opened = store.movedAside.map { .broken("the build state was corrupt (moved to \($0)); run derive build", FileIdentity.of(path)) }
                    ?? .open(store, FileIdentity.of(path))
            }
            return opened
        }
    }

    /// Why the state cannot vouch for any output, said once when serve starts (attack 40b's M3:
    /// in a fresh clone every anonymous GET of the site answered 403 and nothing said why); nil
    /// when the state is this manifest's or nothing is guarded by it.
    func stateProblem() -> String? {
        guard !manifest.rules.isEmpty else { return nil }
        switch try? openStore() {
        case .open(let store, _)?:
            guard let view = try? stateView(store).view, !view.isOwn else { return nil }
            return view.owner.map { "the build state in \(stateFolder) belongs to \($0), not this manifest" } ?? "the build state in \(stateFolder) records no owner"
        case .broken(let reason, _)?: return reason
        case .notYet?, nil: return "no build state yet (\(stateFolder))"
        }
    }

    func recordedACL(bucket: String, key: String) throws -> BucketACL? {
        try recordedOutput(bucket: bucket, key: key)?.acl
    }

    /// The open state for a record lookup, or nil when there is none to ask: a missing or broken
    /// state makes a key `guarded` names (its bucket is guarded, or a rule or the lock makes it a
    /// derivative) unavailable, since serve cannot know its recorded ACL; any other key has no record.
    private func storeForRecords(guarded: () -> Bool) throws -> StateStore? {
        switch try openStore() {
        case .open(let store, _): return store
        case .broken(let reason, _):
            if guarded() { throw Unavailable(description: reason) }
            return nil
        case .notYet:
            if guarded() { throw Unavailable(description: "no build state in \(stateFolder) yet; run derive build") }
            return nil
        }
    }

    /// The record of the output with its rule and source, so serve applies the manifest in force
    /// to its ACL (`Authorizer.effectiveACL`).
    func recordedOutput(bucket: String, key: String) throws -> RecordedOutput? {
        func guarded() -> Bool { guardedBuckets.contains(bucket) || isDerivative(bucket: bucket, key: key) }
        guard let store = try storeForRecords(guarded: guarded) else { return nil }
        // The owner is read with the records, in one transaction: a build of another manifest may
        // take the state over while serve runs.
        let (view, current) = try stateView(store)
        guard current else { return try recordedOutputBySQL(bucket: bucket, key: key) }
        guard view.isOwn else {
            if guarded() {
                throw Unavailable(description: view.owner.map { "the build state in \(stateFolder) belongs to \($0), not \(owner); run derive build" }
                                  ?? "the build state in \(stateFolder) records no owner; run derive build")
            }
            return nil
        }
        return view.outputs[bucket + "/" + key]
    }

    /// `recordedOutput` as one SQL transaction per key (serve's way before round 23): kept as the
    /// reference the `StateView` answers are compared with (`ServeStateViewRound23Tests`).
    func recordedOutputBySQL(bucket: String, key: String) throws -> RecordedOutput? {
        func guarded() -> Bool { guardedBuckets.contains(bucket) || isDerivative(bucket: bucket, key: key) }
        guard let store = try storeForRecords(guarded: guarded) else { return nil }
        let (recordedOwner, record) = try store.queue.read { db -> (String?, [String?]?) in
            let owner = try String.fetchOne(db, sql: "SELECT manifest FROM owner")
            let row = try Row.fetchOne(db, sql: "SELECT acl, rule, source FROM outputs WHERE path = ?", arguments: [bucket + "/" + key])
            let values: [String?]? = row.map { row in
                let acl: String? = row["acl"], rule: String? = row["rule"], source: String? = row["source"]
                return [acl, rule, source]
            }
            return (owner, values)
        }
        guard let recordedOwner, StateOwner.isSame(recorded: recordedOwner, owner: owner) else {
            if guarded() {
                throw Unavailable(description: recordedOwner.map { "the build state in \(stateFolder) belongs to \($0), not \(owner); run derive build" }
                                  ?? "the build state in \(stateFolder) records no owner; run derive build")
            }
            return nil
        }
        guard let record, record.count == 3 else { return nil }
        // An unreadable value is private: a record never widens access by accident.
        return RecordedOutput(acl: record[0].flatMap { BucketACL(rawValue: $0) } ?? .private, rule: record[1], source: record[2] ?? "")
    }
}
