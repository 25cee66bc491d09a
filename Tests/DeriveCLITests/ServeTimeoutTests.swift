import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack (#11, round 4, finding 1): idle and stalled connections were never closed; 300 silent
/// connections under `ulimit -n 256` made the server unreachable. Timeouts are shortened
/// through the manifest's `serve:` block; bounds are loose for a loaded 2-core machine.
@Suite(.ownThreads, .serialized) struct ServeTimeoutTests {
    typealias Server = ServeConnectionTests.RunningServer
    typealias Connection = ServeConnectionTests.Connection

    /// Seconds until the server closes `connection` (reads and drops whatever it sends);
    /// nil when it is still open after `limit` seconds.
    static func secondsUntilClosed(_ connection: Connection, limit: Double) -> Double? {
        let start = Date()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince(start) < limit {
            var descriptor = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, (limit - Date().timeIntervalSince(start)) * 1000))
            guard poll(&descriptor, 1, min(left, 100)) >= 0 else { return nil }
            if descriptor.revents != 0 {
                let count = chunk.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
                if count == 0 || (count < 0 && errno != EAGAIN) { return Date().timeIntervalSince(start) }
            }
        }
        return nil
    }

    @Test func aSilentConnectionIsClosedAfterTheHeadTimeout() throws {
        let server = try Server(serve: "  head_timeout: 1\n")
        let connection = try Connection(port: server.port)
        let closed = Self.secondsUntilClosed(connection, limit: 8)
        #expect(closed != nil, "a silent connection stayed open")
        #expect((closed ?? 0) > 0.5)
    }

    /// Slowloris: one byte of head every 200 ms never completes it; the bytes do not extend the
    /// head timeout.
    @Test func aTricklingHeadIsClosed() throws {
        let server = try Server(serve: "  head_timeout: 2\n")
        let connection = try Connection(port: server.port)
        let head = Array("GET /pubr/photo.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: \(String(repeating: "a", count: 200))".utf8)
        let start = Date()
        var closedAfter: Double?
        for byte in head {
            connection.send([byte])
            if let seconds = Self.secondsUntilClosed(connection, limit: 0.2) {
                closedAfter = Date().timeIntervalSince(start) + seconds - 0.2
                break
            }
            if Date().timeIntervalSince(start) > 10 { break }
        }
        let seconds = try #require(closedAfter, "a trickling head kept the connection open for 10 s")
        #expect(seconds > 1.5 && seconds < 7)
    }

    /// Keep-alive works (a second request after a pause longer than the head timeout), and an
    /// idle kept-alive connection is closed after the idle timeout.
    @Test func anIdleKeptAliveConnectionIsClosed() throws {
        let server = try Server(serve: "  head_timeout: 1\n  idle_timeout: 3\n")
        let connection = try Connection(port: server.port)
        connection.send(ServeConnectionTests.get("/pubr/photo.jpg"))
        #expect(try #require(connection.response()).status == 200)
        Thread.sleep(forTimeInterval: 1.5)
        connection.send(ServeConnectionTests.get("/pubr/photo.jpg"))
        #expect(try #require(connection.response(), "closed before the idle timeout").status == 200)
        let closed = Self.secondsUntilClosed(connection, limit: 10)
        #expect(closed != nil, "an idle kept-alive connection stayed open")
        #expect((closed ?? 0) > 2)
    }

    /// A PUT whose body stops arriving is closed after the body timeout and nothing is stored.
    @Test func aStalledUploadIsClosedAndNothingStored() throws {
        let server = try Server(serve: "  body_timeout: 1\n")
        let connection = try Connection(port: server.port)
        connection.send("PUT /prw/stalled.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000\r\n\r\n")
        connection.send([UInt8](repeating: 0x41, count: 100))
        let closed = Self.secondsUntilClosed(connection, limit: 8)
        #expect(closed != nil, "a stalled upload kept its connection")
        Thread.sleep(forTimeInterval: 0.3)
        let reader = try Connection(port: server.port)
        reader.send(ServeConnectionTests.get("/prw/stalled.bin"))
        #expect(reader.response()?.status == 404)
        let left = try FileManager.default.contentsOfDirectory(atPath: server.folder.appendingPathComponent("prw").path)
        #expect(left.isEmpty, "left behind: \(left)")
    }

    /// With the bound reached, a new connection is closed at once while accepted ones keep
    /// working; once the silent ones are cut, new clients are served again.
    @Test func theConnectionBoundRefusesNewcomersNotAcceptedClients() throws {
        let server = try Server(serve: "  max_connections: 4\n  head_timeout: 3\n")
        let active = try Connection(port: server.port)
        active.send(ServeConnectionTests.get("/pubr/photo.jpg"))
        #expect(try #require(active.response()).status == 200)
        let silent = try (0..<3).map { _ in try Connection(port: server.port) }
        Thread.sleep(forTimeInterval: 0.3)
        let newcomer = try Connection(port: server.port)
        #expect(Self.secondsUntilClosed(newcomer, limit: 1.5) != nil, "a connection beyond the bound was kept")
        active.send(ServeConnectionTests.get("/pubr/photo.jpg"))
        #expect(try #require(active.response(), "an accepted client was cut").status == 200)
        for connection in silent { #expect(Self.secondsUntilClosed(connection, limit: 8) != nil) }
        let later = try Connection(port: server.port)
        later.send(ServeConnectionTests.get("/pubr/photo.jpg"))
        #expect(try #require(later.response(), "no answer after the silent connections were cut").status == 200)
    }
}
