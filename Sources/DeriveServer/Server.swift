import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdCore
import ImagingCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The HTTP front: Hummingbird on loopback by default. File work (stat, open, hashing, reading
/// and writing bodies) runs on an I/O thread pool; renders on a separate render pool behind a
/// bounded queue, so plain GETs, HEADs, cache hits and errors never wait behind a render.
/// Bodies stream both ways; a render whose client disconnected is dropped before it starts.
/// SIGTERM or SIGINT stops accepting at once; the process exits as soon as no request is in
/// flight, and within about 1 second whatever still runs.
public struct DeriveHTTPServer: Sendable {
    public let service: ObjectService
    public let host: String
    public let port: Int
    /// Threads for file work (never blocked by renders).
    public var ioThreads = 4
    /// Runs right before the process exits at SIGTERM or SIGINT (ends the render workers and
    /// removes their temporary folders); it may run twice, concurrently.
    public var beforeExit: @Sendable () -> Void = {}

    public init(service: ObjectService, host: String = "127.0.0.1", port: Int = 8080) {
        self.service = service
        self.host = host
        self.port = port
    }

    /// `host` as a URL spells it: an IPv6 address in brackets (`[::1]`), any other as it is.
    public static func urlHost(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }

    /// Longest request line (or single header), and longest request head, the parser accepts.
    static let maxRequestLineBytes = 256 * 1024
    static let maxHeadBytes = 384 * 1024

    /// A body read into memory (DeleteMultipleObjects, CompleteMultipartUpload, a save-as) must
    /// arrive whole within this many `body_timeout`s from its head.
    static let bufferedBodyDeadlineFactor = 4

    /// Bytes per read when streaming a file answer.
    static let chunk = 256 * 1024

    public func run(onReady: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let service = self.service
        let io = NIOThreadPool(numberOfThreads: ioThreads)
        let renders = NIOThreadPool(numberOfThreads: service.settings.renderThreads)
        io.start()
        renders.start()
        let running = RunningRenders()
        let bodies = OpenBodies()
        let inFlight = InFlight()
        let responder = CallbackResponder<ServeRequestContext> { request, context in
            // Counted from the head until the answer's last byte is handed over (the token is
            // released with the response), so shutdown knows when nothing is left to finish.
            let token = inFlight.enter()
            // Every field as sent: a header repeated with different values is refused, not overwritten.
            var fields = request.headers.map { ($0.name.canonicalName, $0.value) }
            if let authority = request.head.authority { fields.append(("host", authority)) }
            let head = ServiceRequest(method: request.method.rawValue, target: request.uri.string, fields: fields)
            let reply: ServiceResponse
            switch try await io.runIfActive({ service.begin(head) }) {
            case .respond(let response):
                reply = response
            case .render(let job):
                running.track(job)
                defer { running.untrack(job) }
                // A client that disconnects cancels its render, queued or inside libvips. The
                // connection is watched from the channel, not by consuming the request stream
                // (that swallowed the next request's head and closed keep-alive connections).
                let watch = try await DisconnectWatch.on(context.channel) { job.cancellation.cancel() }
                defer { watch.cancel() }
                reply = try await renders.runIfActive {
                    Self.lowerPriority()
                    return job.run()
                }
            case .work(let job):
                // A listing stops at its next folder entry once its client is gone.
                let watch = try await DisconnectWatch.on(context.channel) { job.cancellation.cancel() }
                defer { watch.cancel() }
                reply = try await io.runIfActive { job.run() }
            case .upload(let upload):
                // A client stalled mid-body must not hold shutdown up: at SIGTERM its connection
                // is closed, the body stream ends in an error and the unnamed file is dropped.
                bodies.track(context.channel)
                defer { bodies.untrack(context.channel) }
                do {
                    for try await buffer in request.body {
                        let accepted = try await io.runIfActive { buffer.withUnsafeReadableBytes { upload.write($0) } }
                        if !accepted { break }
                    }
                    reply = try await io.runIfActive { upload.finish() }
                } catch {
                    upload.abort()
                    throw error
                }
            case .needsBody(let limit, let next):
                bodies.track(context.channel)
                defer { bodies.untrack(context.channel) }
                // A body held in memory has a whole-body deadline besides body_timeout's per-gap
                // one: trickled a byte at a time it held its connection for ever (attack 23's F2).
                let channel = context.channel
                let deadline = channel.eventLoop.scheduleTask(in: .seconds(Int64(Self.bufferedBodyDeadlineFactor * service.settings.bodyTimeout))) {
                    channel.close(promise: nil)
                }
                defer { deadline.cancel() }
                let body = (try? await request.body.collect(upTo: limit)).map { Data($0.readableBytesView) }
                switch try await io.runIfActive({ next.continue(body ?? Data(count: limit + 1)) }) {
                case .respond(let response): reply = response
                case .render(let job):
                    running.track(job)
                    defer { running.untrack(job) }
                    reply = try await renders.runIfActive {
                        Self.lowerPriority()
                        return job.run()
                    }
                default:
                    reply = ServiceResponse(status: 500, headers: [], payload: .data(Data()))
                }
            }
            return Self.response(reply, io: io, token: token)
        }
        let logger = Logger(label: "derive.serve")
        // Set once the socket listens: an error before that is a `ListenFailure`.
        let listening = NIOLockedValueBox(false)
        // The parser counts the request line against its header limits (80 KiB by default): a
        // ~100 KB URL got a bare 400. With room for it, the service answers OSS XML (a key over
        // 1 023 bytes, a process chain too long); beyond these limits the bare 400 remains.
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration(maxHeaderFieldSize: Self.maxRequestLineBytes,
                                                                      maxHeaderListSize: Self.maxHeadBytes)
        // Stalled and idle connections are closed, and their number is bounded (ConnectionGuard).
        let settings = service.settings
        let connections = OpenConnections(limit: settings.maxConnections
            ?? OpenConnections.derivedLimit(renderThreads: settings.renderThreads, ioThreads: ioThreads))
        let timeouts = ConnectionTimeouts(head: .seconds(Int64(settings.headTimeout)), idle: .seconds(Int64(settings.idleTimeout)),
                                          body: .seconds(Int64(settings.bodyTimeout)), send: .seconds(Int64(settings.sendTimeout)))
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionGuard(timeouts: timeouts, connections: connections)],
                                               httpDecoderConfiguration: decoder)
        let app = Application(responder: responder,
                              server: .http1(configuration: http1),
                              configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Derive"),
                              onServerRunning: { channel in
                                  listening.withLockedValue { $0 = true }
                                  onReady(channel.localAddress?.port ?? 0)
                              },
                              logger: logger)
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: app),
                       .init(service: ShutdownWatchdog(inFlight: inFlight, beforeExit: beforeExit) { running.cancelAll(); bodies.closeAll() }, successTerminationBehavior: .ignore)],
            // SIGHUP too (a closed terminal): the same stop, checkpoint included (attack 14, F3).
            gracefulShutdownSignals: [.sigterm, .sigint, .sighup], logger: logger)
        // In-flight answers get half a second; a render still inside libvips is cut off by the watchdog
        // (no cancellation timeout: ServiceLifecycle's would crash the process with a backtrace).
        configuration.maximumGracefulShutdownDuration = .milliseconds(500)
        // The process ends either here or in the watchdog's `_exit`, whichever comes first.
        defer { beforeExit() }
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            // Never listening: the address could not be bound (taken, not this machine's, unknown).
            guard listening.withLockedValue({ $0 }) else { throw ListenFailure(error, host: host, port: port) }
            throw error
        }
    }

    /// Render threads run at a lower priority (nice 10): when renders and plain requests compete
    /// for the cores, plain requests win.
    static func lowerPriority() {
        #if os(Linux)
        // On Linux, PRIO_PROCESS with id 0 sets the calling thread's nice value only.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    static func response(_ reply: ServiceResponse, io: NIOThreadPool, token: InFlight.Token) -> Response {
        var fields = HTTPFields()
        for (name, value) in reply.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        let status = HTTPResponse.Status(code: reply.status)
        switch reply.payload {
        case .data(let data):
            return Response(status: status, headers: fields, body: ResponseBody(contentLength: data.count) { writer in
                withExtendedLifetime(token) {}
                try await writer.write(ByteBuffer(bytes: data))
                try await writer.finish(nil)
            })
        case .file(let file):
            return Response(status: status, headers: fields, body: ResponseBody(contentLength: file.length) { writer in
                withExtendedLifetime(token) {}
                var position = 0
                while position < file.length {
                    let offset = position
                    let piece = try await io.runIfActive { try file.read(at: offset, count: chunk) }
                    if piece.isEmpty { break }
                    try await writer.write(ByteBuffer(bytes: piece))
                    position += piece.count
                }
                try await writer.finish(nil)
            })
        }
    }
}

/// The server could not listen on `host:port`: which address, why, and what to do.
public struct ListenFailure: Error, CustomStringConvertible {
    public let description: String

    init(_ error: any Error, host: String, port: Int) {
        let address = "\(DeriveHTTPServer.urlHost(host)):\(port)"
        let hosts = "give an address of this machine with --host (127.0.0.1, the default, or ::1 for loopback only; 0.0.0.0 or :: for every interface)"
        let reason: String
        if let error = error as? IOError {
            switch error.errnoCode {
            case EADDRINUSE:
                reason = "the port is already in use (another server listens there); stop that server, or choose another port with --port (--port 0 picks a free one)"
            case EACCES:
                reason = "permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE); choose a port from 1024 up with --port (--port 0 picks a free one)"
            case EADDRNOTAVAIL:
                reason = "\(host) is not an address of this machine (\(String(cString: strerror(EADDRNOTAVAIL)))); \(hosts)"
            default:
                reason = "\(String(cString: strerror(error.errnoCode))); check --host and --port (--port 0 picks a free port)"
            }
        } else if let error = error as? SocketAddressError.UnknownHost {
            reason = "no address found for the host \(host) (\(error.errorDescription)); \(hosts)"
        } else if error is SocketAddressError {
            reason = "\(host) is not an address derive serve can listen on (\(error)); \(hosts)"
        } else {
            reason = "\(error); check --host and --port (--port 0 picks a free port)"
        }
        description = "cannot listen on \(address): \(reason)"
    }
}

/// Renders admitted and not yet answered, so shutdown can cancel them all.
final class RunningRenders: Sendable {
    private let jobs = NIOLockedValueBox<[ObjectIdentifier: RenderJob]>([:])
    private let stopping = NIOLockedValueBox(false)

    func track(_ job: RenderJob) {
        jobs.withLockedValue { $0[ObjectIdentifier(job)] = job }
        if stopping.withLockedValue({ $0 }) { job.cancellation.cancel() }
    }

    func untrack(_ job: RenderJob) { _ = jobs.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(job)) } }

    func cancelAll() {
        stopping.withLockedValue { $0 = true }
        for job in jobs.withLockedValue({ Array($0.values) }) { job.cancellation.cancel() }
    }
}

/// Connections whose request body is still being read, so shutdown can close them: a client
/// that stalls mid-body would otherwise keep its connection (and the exit) waiting.
final class OpenBodies: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let stopping = NIOLockedValueBox(false)

    func track(_ channel: any Channel) {
        channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        if stopping.withLockedValue({ $0 }) { channel.close(promise: nil) }
    }

    func untrack(_ channel: any Channel) { _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) } }

    func closeAll() {
        stopping.withLockedValue { $0 = true }
        for channel in channels.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
    }
}

/// Requests between their head and the hand-over of their answer's last byte.
final class InFlight: Sendable {
    private let count = NIOLockedValueBox(0)

    /// Held by a request and its response; the request leaves when the token is released.
    final class Token: Sendable {
        let owner: InFlight
        init(_ owner: InFlight) { self.owner = owner }
        deinit { owner.count.withLockedValue { $0 -= 1 } }
    }

    func enter() -> Token {
        count.withLockedValue { $0 += 1 }
        return Token(self)
    }

    var current: Int { count.withLockedValue { $0 } }
}

/// On SIGTERM/SIGINT: every render is cancelled (queued ones never start, running ones stop
/// inside libvips), uploads still reading their body are closed, and the process exits as soon
/// as no request is in flight (at once when idle: it used to wait for the whole grace period),
/// and 1 s later whatever still runs (well inside the 2 s promise).
struct ShutdownWatchdog: Service {
    let inFlight: InFlight
    let beforeExit: @Sendable () -> Void
    let onShutdown: @Sendable () -> Void
    /// The longest wait for requests in flight.
    static let cutoff: Double = 1

    func run() async throws {
        // Cancelled, not asked to shut down: another service failed (the listener could not
        // bind), and its error ends `ServiceGroup.run`, so the process exits 1 with the message.
        // Exiting 0 here raced that error and won about half the time (attack 41b's M1).
        do { try await gracefulShutdown() } catch { return }
        onShutdown()
        let inFlight = self.inFlight, beforeExit = self.beforeExit
        Thread.detachNewThread {
            let deadline = Date().addingTimeInterval(Self.cutoff)
            while inFlight.current > 0, Date() < deadline { usleep(5_000) }
            beforeExit()
            _exit(0)
        }
    }
}

/// Hummingbird's context plus the connection, so a render can watch for its client leaving.
struct ServeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}

/// Calls back when a connection's client goes away (its input closes or the connection drops).
/// One `DisconnectHandler` per connection, first in the pipeline so that it sees end of input
/// before the HTTP handlers (which hold it back until the answer is written).
final class DisconnectWatch: Sendable {
    private struct State { var gone = false; var next = 0; var callbacks: [Int: @Sendable () -> Void] = [:] }
    private let state = NIOLockedValueBox(State())

    /// A registration: `cancel` it once the answer is ready.
    struct Registration: Sendable {
        let watch: DisconnectWatch
        let id: Int
        func cancel() { _ = watch.state.withLockedValue { $0.callbacks.removeValue(forKey: id) } }
    }

    /// Calls `onGone` when the client of `channel` goes away (at once if it already has).
    static func on(_ channel: any Channel, _ onGone: @escaping @Sendable () -> Void) async throws -> Registration {
        let watch = try await channel.eventLoop.submit { () throws -> DisconnectWatch in
            let pipeline = channel.pipeline.syncOperations
            if let handler = try? pipeline.handler(type: DisconnectHandler.self) { return handler.watch }
            let handler = DisconnectHandler()
            try pipeline.addHandler(handler, position: .first)
            if !channel.isActive { handler.watch.fire() }
            return handler.watch
        }.get()
        return watch.add(onGone)
    }

    func add(_ callback: @escaping @Sendable () -> Void) -> Registration {
        let (id, gone) = state.withLockedValue { state -> (Int, Bool) in
            state.next += 1
            if !state.gone { state.callbacks[state.next] = callback }
            return (state.next, state.gone)
        }
        if gone { callback() }
        return Registration(watch: self, id: id)
    }

    func fire() {
        let callbacks = state.withLockedValue { state -> [@Sendable () -> Void] in
            state.gone = true
            defer { state.callbacks = [:] }
            return Array(state.callbacks.values)
        }
        for callback in callbacks { callback() }
    }
}

/// Passes everything on; tells its watch when input closes or the connection goes inactive.
final class DisconnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let watch = DisconnectWatch()

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { watch.fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.fire()
        context.fireChannelInactive()
    }
}
