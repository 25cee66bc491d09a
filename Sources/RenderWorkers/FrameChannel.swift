import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One end of a worker's socket pair, moving whole frames. Writes never raise SIGPIPE
/// (`MSG_NOSIGNAL`): a dead peer is an error value, not a dead process.
struct FrameChannel {
    let fd: Int32

    enum Failure: Error {
        /// The peer closed its end (exited or was killed).
        case closed
        /// `interrupt` asked to stop waiting (deadline or cancellation).
        case interrupted
        case system(String)
    }

    func send(_ payload: Data) throws { try send(parts: [payload]) }

    /// One frame whose payload is `parts` one after the other, never joined in memory.
    func send(parts: [Data]) throws {
        try write(Wire.header(payloadLength: parts.reduce(0) { $0 + $1.count }))
        for part in parts { try write(part) }
    }

    private func write(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE || errno == ECONNRESET { throw Failure.closed }
                    throw Failure.system("sending to the render worker: \(String(cString: strerror(errno)))")
                }
                offset += sent
            }
        }
    }

    /// The next frame's payload; nil when the peer closed cleanly between frames. While waiting,
    /// `interrupt` is asked every `slice` seconds whether to give up (it then throws `.interrupted`).
    func receive(slice: Double = 0.05, interrupt: () -> Bool = { false }) throws -> Data? {
        guard let header = try read(Wire.headerSize, slice: slice, interrupt: interrupt, cleanEOF: true) else { return nil }
        let length = try Wire.payloadLength(header)
        return try read(length, slice: slice, interrupt: interrupt, cleanEOF: false) ?? Data()
    }

    private func read(_ count: Int, slice: Double, interrupt: () -> Bool, cleanEOF: Bool) throws -> Data? {
        var data = Data(count: count)
        var filled = 0
        while filled < count {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(slice * 1000))
            if ready < 0 {
                if errno == EINTR { continue }
                throw Failure.system("waiting for the render worker: \(String(cString: strerror(errno)))")
            }
            if ready == 0 {
                // What the peer sent between the poll and the question is read first: a worker
                // that sends its hello and exits (describing the engine) was otherwise reported,
                // under load, as ended before its start with the hello unread.
                if interrupt() {
                    var last = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&last, 1, 0) > 0, last.revents & Int16(POLLIN) != 0 else { throw Failure.interrupted }
                }
                continue
            }
            let got = data.withUnsafeMutableBytes { raw in
                Glibc.recv(fd, raw.baseAddress! + filled, count - filled, 0)
            }
            if got < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { throw Failure.closed }
                throw Failure.system("reading from the render worker: \(String(cString: strerror(errno)))")
            }
            if got == 0 {
                if cleanEOF && filled == 0 { return nil }
                throw Failure.closed
            }
            filled += got
        }
        return data
    }
}
