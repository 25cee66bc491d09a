import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `derive serve` over real HTTP connections (issue #11 follow-up): keep-alive survives a
/// rendered answer, rendered answers carry a stable ETag and honour If-None-Match, and an
/// upload cut off mid-body is never visible under any name.
@Suite(.ownThreads, .serialized) struct ServeConnectionTests {
    /// A running `derive serve` on a free loopback port, stopped (by its pid) when released.
    final class RunningServer {
        let folder: URL
        let process = Process()
        var port: UInt16 = 0

        /// `serve`: extra lines of the manifest's `serve:` block (indented by the caller).
        init(serve: String = "") throws {
            folder = try CLI.temporaryFolder()
            for name in ["pubr", "prw"] {
                try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("pubr/photo.jpg"))
            try Data(("""
            version: 1
            buckets:
              pubr: {path: pubr, acl: public-read}
              prw: {path: prw, acl: public-read-write}
            """ + (serve.isEmpty ? "" : "\nserve:\n" + serve)).utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            let out = folder.appendingPathComponent("serve.out")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            process.executableURL = CLI.executable
            process.arguments = ["serve", "--port", "0"]
            process.currentDirectoryURL = folder
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, process.isRunning {
                let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
                if let range = text.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression),
                   let port = UInt16(text[range].split(separator: ":").last ?? "") {
                    self.port = port
                    return
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw Failure(message: "derive serve did not start")
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(at: folder)
        }
    }

    struct Failure: Error { var message: String }

    /// One HTTP/1.1 connection, raw: what a keep-alive client does.
    final class Connection {
        let fd: Int32
        private var buffer: [UInt8] = []

        init(port: UInt16) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw Failure(message: "connect failed: \(errno)") }
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        func send(_ text: String) { send(Array(text.utf8)) }

        func send(_ bytes: [UInt8]) {
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                if count <= 0 { return }
                sent += count
            }
        }

        private func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            guard count > 0 else { return false }
            buffer += chunk[..<count]
            return true
        }

        /// Reads one response (status, lowercased headers, body); nil when the connection closed first.
        func response(head: Bool = false) -> (status: Int, headers: [String: String], body: [UInt8])? {
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            var end: Int?
            while end == nil {
                if let found = (0..<max(0, buffer.count - 3)).first(where: { Array(buffer[$0..<$0 + 4]) == separator }) { end = found; break }
                guard fill() else { return nil }
            }
            let headText = String(decoding: buffer[..<end!], as: UTF8.self)
            buffer.removeFirst(end! + 4)
            var lines = headText.components(separatedBy: "\r\n")
            let status = Int(lines.removeFirst().split(separator: " ")[1]) ?? 0
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = head || status == 304 ? 0 : Int(headers["content-length"] ?? "0") ?? 0
            while buffer.count < length { guard fill() else { return nil } }
            let body = Array(buffer[..<length])
            buffer.removeFirst(length)
            return (status, headers, body)
        }
    }

    static func get(_ target: String, extra: String = "") -> String {
        "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)\r\n"
    }

    /// Regression: a rendered answer closed the connection (Hummingbird's inbound-close handler
    /// consumed the next request's head). Two requests on one connection, the first a render.
    @Test func keepAliveSurvivesARenderedAnswer() throws {
        let server = try RunningServer()
        let connection = try Connection(port: server.port)
        connection.send(Self.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_40"))
        let rendered = try #require(connection.response())
        #expect(rendered.status == 200 && rendered.headers["content-type"] == "image/jpeg")
        #expect(rendered.headers["connection"]?.lowercased() != "close")
        connection.send(Self.get("/pubr/photo.jpg"))
        let plain = try #require(connection.response(), "the connection was closed after a rendered answer")
        #expect(plain.status == 200 && plain.body.count > 10_000)
        connection.send(Self.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_40"))
        let cached = try #require(connection.response(), "the connection was closed after a cached rendered answer")
        #expect(cached.body == rendered.body)
    }

    /// Rendered answers carry a stable OSS-like ETag and answer If-None-Match with 304, as plain
    /// objects do.
    @Test func renderedAnswersHaveAStableETagAndConditionalGETs() throws {
        let server = try RunningServer()
        let connection = try Connection(port: server.port)
        let target = "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_48%2Fformat%2Cpng"
        connection.send(Self.get(target))
        let first = try #require(connection.response())
        let etag = try #require(first.headers["etag"])
        #expect(etag.range(of: #"^"[0-9A-F]{32}"$"#, options: .regularExpression) != nil, "\(etag)")
        connection.send(Self.get(target))
        let again = try #require(connection.response())
        #expect(again.headers["etag"] == etag && again.body == first.body)
        connection.send(Self.get(target, extra: "If-None-Match: \(etag)\r\n"))
        #expect(try #require(connection.response()).status == 304)
        connection.send(Self.get("/pubr/photo.jpg"))
        let plain = try #require(connection.response())
        let plainTag = try #require(plain.headers["etag"])
        connection.send(Self.get("/pubr/photo.jpg", extra: "If-None-Match: \(plainTag)\r\n"))
        #expect(try #require(connection.response()).status == 304)
        connection.send(Self.get("/pubr/photo.jpg", extra: "If-None-Match: \"00000000000000000000000000000000\"\r\n"))
        #expect(try #require(connection.response()).status == 200)
    }

    /// Attack (#11 follow-up): a PUT cut off mid-body left `.x.bin.<pid>.<n>.derive-tmp`,
    /// readable by anyone. While the body streams and after the client vanishes, nothing in the
    /// bucket folder shows the upload, and no object appears.
    @Test func anUploadCutOffMidBodyIsNeverVisible() throws {
        let server = try RunningServer()
        let bucket = server.folder.appendingPathComponent("prw")
        do {
            let connection = try Connection(port: server.port)
            connection.send("PUT /prw/x.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
            connection.send([UInt8](repeating: 0x41, count: 5000))
            Thread.sleep(forTimeInterval: 1)
            let during = try FileManager.default.contentsOfDirectory(atPath: bucket.path)
            #expect(during.isEmpty, "visible while the body streams: \(during)")
            for name in during {
                let reader = try Connection(port: server.port)
                reader.send(Self.get("/prw/" + name))
                #expect(reader.response()?.status == 404, "\(name) is readable")
            }
        }
        do {
            // A chunked body has no declared length: cut off, it must not be stored truncated.
            let connection = try Connection(port: server.port)
            connection.send("PUT /prw/y.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            Thread.sleep(forTimeInterval: 0.5)
        }
        Thread.sleep(forTimeInterval: 1)
        let after = try FileManager.default.contentsOfDirectory(atPath: bucket.path)
        #expect(after.isEmpty, "left behind: \(after)")
    }
}
