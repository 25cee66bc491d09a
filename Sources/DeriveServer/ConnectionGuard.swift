import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTPTypes

/// Open connections, bounded so that silent clients cannot exhaust the file descriptors that
/// renders, uploads and answers need: when full, a new connection is closed at once and the
/// accepted ones keep being served.
final class OpenConnections: Sendable {
    let limit: Int
    private let count = NIOLockedValueBox(0)

    init(limit: Int) { self.limit = max(1, limit) }

    /// Takes a place; false when the bound is reached.
    func admit() -> Bool {
        count.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { count.withLockedValue { $0 -= 1 } }

    var current: Int { count.withLockedValue { $0 } }

    /// Descriptors kept for everything but connections: the listening socket, the databases,
    /// the render workers and their pipes, files opened by renders and uploads.
    static func reserve(renderThreads: Int, ioThreads: Int) -> Int { 64 + 8 * (renderThreads + ioThreads) }

    /// The default bound: the soft `RLIMIT_NOFILE` minus the reserve, halved because a
    /// connection answering a file holds that file open too.
    static func derivedLimit(renderThreads: Int, ioThreads: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 64 }
        let soft = Int(clamping: min(limit.rlim_cur, 1 << 20))  // RLIM_INFINITY is the largest value
        return max(8, min(100_000, (soft - reserve(renderThreads: renderThreads, ioThreads: ioThreads)) / 2))
    }
}

/// The three waits a connection may cost, as durations.
struct ConnectionTimeouts: Sendable {
    /// From the connection's opening, or from the first byte after an idle wait, to a complete head.
    var head: TimeAmount
    /// From an answer's last byte to the first byte of the next request.
    var idle: TimeAmount
    /// Longest gap between two body bytes.
    var body: TimeAmount
    /// Longest time an answer may wait for its client to take some of it (the connection stays
    /// unwritable: NIO's outgoing buffer above its high mark, the kernel's full).
    var send: TimeAmount
}

/// Closes a connection that keeps a descriptor without making progress: a head not complete
/// in time (slowloris: trickling bytes do not extend it), a keep-alive connection idle too long,
/// a request body stalled, an answer the client stopped taking (`send`: the connection unwritable
/// that long; attack 23's F1: such a client held its connection for ever). While an answer is
/// being prepared no timer runs (renders have their own deadline). Also takes the connection's
/// place in `OpenConnections`.
/// Event-loop confined; sits after the HTTP codec, with a byte watcher in front of the codec.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeouts: ConnectionTimeouts
    private let connections: OpenConnections
    private var admitted = false
    /// A request's head was read and its end not yet.
    private var readingBody = false
    /// Requests whose answer has not been written in full.
    private var pending = 0
    /// The head timer runs (set at the opening and at the first byte after an idle wait).
    private var headTimerRunning = false
    private var timer: Scheduled<Void>?
    /// Runs while the connection is unwritable (the client takes none of the answer).
    private var sendTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(timeouts: ConnectionTimeouts, connections: OpenConnections) {
        self.timeouts = timeouts
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard connections.admit() else {
            // Closed once set-up is over: closing inside it fails the set-up noisily.
            let channel = context.channel
            context.eventLoop.execute { channel.close(promise: nil) }
            return
        }
        admitted = true
        try? context.pipeline.syncOperations.addHandler(ByteWatcher(owner: self), position: .first)
        headTimerRunning = true
        arm(timeouts.head)
    }

    func handlerRemoved(context: ChannelHandlerContext) { finish() }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    /// Unwritable: the client is not taking the answer; writable again: it took some.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sendTimer?.cancel()
        sendTimer = nil
        if admitted, !context.channel.isWritable {
            let channel = context.channel
            sendTimer = context.eventLoop.scheduleTask(in: timeouts.send) { channel.close(promise: nil) }
        }
        context.fireChannelWritabilityChanged()
    }

    private func finish() {
        timer?.cancel()
        timer = nil
        sendTimer?.cancel()
        sendTimer = nil
        if admitted { connections.leave() }
        admitted = false
        context = nil
    }

    /// Raw bytes arrived (before parsing).
    func bytesArrived() {
        if readingBody {
            arm(timeouts.body)
        } else if pending == 0, !headTimerRunning {
            headTimerRunning = true
            arm(timeouts.head)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            headTimerRunning = false
            pending += 1
            readingBody = true
            arm(timeouts.body)
        case .body:
            arm(timeouts.body)
        case .end:
            readingBody = false
            if pending > 0 { disarm() }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            pending = max(0, pending - 1)
            if pending == 0, !readingBody {
                headTimerRunning = false
                arm(timeouts.idle)
            }
        }
        context.write(data, promise: promise)
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ amount: TimeAmount) {
        guard let context else { return }
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: amount) { channel.close(promise: nil) }
    }
}

/// Tells its guard whenever bytes arrive, before the HTTP decoder holds them back.
final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let owner: ConnectionGuard

    init(owner: ConnectionGuard) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.bytesArrived()
        context.fireChannelRead(data)
    }
}
