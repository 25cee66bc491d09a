import Access
import Crypto
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack round 23's serve findings over real connections (timeouts shortened through the
/// manifest's `serve:` block; bounds loose for a loaded 2-core machine).
@Suite(.ownThreads, .serialized) struct ServeBoundsRound23CLITests {
    typealias Server = ServeConnectionTests.RunningServer
    typealias Connection = ServeConnectionTests.Connection

    /// Seconds until a fresh client gets a 200 for `target` (each try on a new connection);
    /// nil when none did within `limit`.
    static func secondsUntilServed(_ server: Server, _ target: String, limit: Double) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if let connection = try? Connection(port: server.port) {
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                connection.send(ServeConnectionTests.get(target))
                if connection.response()?.status == 200 { return Date().timeIntervalSince(start) }
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return nil
    }

    /// F1: a client that asks for a large object and never reads held its connection for ever
    /// (no timer ran while an answer was written); at `max_connections` serve answered nobody.
    /// With `send_timeout`, an answer that makes no progress for that long is closed.
    @Test func aClientThatStopsReadingIsClosedAfterTheSendTimeout() throws {
        let server = try Server(serve: "  max_connections: 1\n  send_timeout: 2\n")
        // 64 MB (sparse): far more than the kernel's buffers hold.
        let big = server.folder.appendingPathComponent("pubr/big.bin")
        #expect(FileManager.default.createFile(atPath: big.path, contents: nil))
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 64 << 20)
        try handle.close()
        // A small receive buffer set before connecting (it bounds the window), then never read.
        let stalled = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(stalled) }
        var size: Int32 = 4096
        setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = server.port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(stalled, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        let request = Array(ServeConnectionTests.get("/pubr/big.bin").utf8)
        #expect(request.withUnsafeBytes { send(stalled, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) } == request.count)
        // The one place is taken while the answer is stuck; once it is closed, others are served.
        Thread.sleep(forTimeInterval: 0.5)
        let served = Self.secondsUntilServed(server, "/pubr/photo.jpg", limit: 25)
        #expect(served != nil, "a client that never reads kept the only connection for 25 s")
    }

    /// F2: a body that must be held in memory (here an anonymous DeleteMultipleObjects in a
    /// public-read-write bucket, where its head passes) trickled one byte per second never
    /// completed and was never closed (`body_timeout` is per gap). It has a whole-body deadline.
    @Test func aTrickledDeleteBodyIsClosedAtItsDeadline() throws {
        let server = try Server(serve: "  body_timeout: 2\n")
        let connection = try Connection(port: server.port)
        let body = "<Delete><Object><Key>x</Key></Object></Delete>" + String(repeating: " ", count: 4000)
        let md5 = Data(Insecure.MD5.hash(data: Data(body.utf8))).base64EncodedString()
        connection.send("POST /prw/?delete HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-MD5: \(md5)\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        let start = Date()
        var closedAfter: Double?
        for byte in body.utf8 {
            connection.send([byte])
            if let seconds = ServeTimeoutTests.secondsUntilClosed(connection, limit: 1) {
                closedAfter = Date().timeIntervalSince(start) + seconds - 1
                break
            }
            if Date().timeIntervalSince(start) > 30 { break }
        }
        let seconds = try #require(closedAfter, "a body trickled one byte a second kept its connection for 30 s")
        // The deadline is 4 × body_timeout (8 s here).
        #expect(seconds > 6)
    }

    /// A `derive serve` of a fresh project (never built) with a private bucket and a signing key.
    final class PrivateProject {
        let folder: URL
        let process = Process()
        var port: UInt16 = 0

        init() throws {
            folder = try CLI.temporaryFolder()
            for name in ["priv", "pub"] {
                try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("priv/secret.jpg"))
            try Data("""
            version: 1
            access_keys:
              - id: AKR23
                secret_env: DERIVE_R23_SECRET
            buckets:
              priv: {path: priv, acl: private}
              site: {path: pub, acl: public-read}
            """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            let out = folder.appendingPathComponent("serve.out")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            process.executableURL = CLI.executable
            process.arguments = ["serve", "--port", "0"]
            process.currentDirectoryURL = folder
            process.environment = ProcessInfo.processInfo.environment.merging(["DERIVE_R23_SECRET": "s3cr3tKEY"]) { $1 }
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = FileHandle.nullDevice
            let old = umask(0o022)
            defer { umask(old) }
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
            throw ServeConnectionTests.Failure(message: "derive serve did not start")
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(at: folder)
        }

        /// A V1-signed request (Authorization header) for `bucket/key` with `query`.
        func signed(_ method: String, _ key: String, query: [(String, String?)], body: [UInt8] = []) -> String {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            let date = formatter.string(from: Date())
            let stringToSign = OSSSignature.v1StringToSign(method: method, contentMD5: "", contentType: "", dateOrExpires: date, headers: [:],
                                                           bucket: "priv", key: key, query: query.map { OSSSignature.Parameter($0.0, $0.1) })
            let signature = OSSSignature.v1Signature(secret: "s3cr3tKEY", stringToSign: stringToSign)
            let target = "/priv/" + key + (query.isEmpty ? "" : "?" + query.map { $0.0 + ($0.1.map { "=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? "") }.joined(separator: "&"))
            return "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nDate: \(date)\r\nAuthorization: OSS AKR23:\(signature)\r\nContent-Length: \(body.count)\r\n\r\n"
        }
    }

    /// F3: serve on a project never built made `.derive/` and everything in it with the umask's
    /// modes: a signed render of a private object (serve-cache) and a signed part of an upload
    /// into a private key (serve-uploads) were readable by any local user.
    @Test func serveKeepsItsStateFolderOwnerOnly() throws {
        let project = try PrivateProject()
        let connection = try Connection(port: project.port)
        connection.send(project.signed("GET", "secret.jpg", query: [("x-oss-process", "image/resize,w_321/format,png")]))
        let render = try #require(connection.response())
        #expect(render.status == 200, "\(String(decoding: render.body, as: UTF8.self))")
        connection.send(project.signed("POST", "drafts/q3.pdf", query: [("uploads", nil)]))
        let initiated = try #require(connection.response())
        let text = String(decoding: initiated.body, as: UTF8.self)
        let id = try #require(text.range(of: "<UploadId>").flatMap { start in
            text.range(of: "</UploadId>").map { String(text[start.upperBound..<$0.lowerBound]) }
        }, "\(initiated.status) \(text)")
        let part = [UInt8](repeating: 7, count: 200_000)
        connection.send(project.signed("PUT", "drafts/q3.pdf", query: [("partNumber", "1"), ("uploadId", id)], body: part))
        connection.send(part)
        #expect(connection.response()?.status == 200)
        let root = project.folder.appendingPathComponent(".derive").path
        let state = root + "/derive"
        #expect(FileManager.default.fileExists(atPath: state + "/serve-uploads/" + id + "/part-00001"))
        #expect(((try? FileManager.default.subpathsOfDirectory(atPath: state + "/serve-cache")) ?? []).contains { $0.count > 64 })
        var exposed: [String] = []
        var info = stat()
        for name in [""] + ((try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? []) {
            let path = name.isEmpty ? root : root + "/" + name
            if lstat(path, &info) == 0, info.st_mode & 0o077 != 0 { exposed.append((name.isEmpty ? ".derive" : name) + " " + String(info.st_mode & 0o777, radix: 8)) }
        }
        #expect(exposed.isEmpty, "readable by other users: \(exposed)")
    }

    /// F2: an anonymous DeleteMultipleObjects into a bucket where it may delete nothing (private,
    /// public-read) waited for its whole body (8 MiB held in memory) before any check. Answered
    /// 403 from its head now, before a body byte is sent.
    @Test func anAnonymousDeleteOfManyIsRefusedBeforeItsBody() throws {
        let project = try PrivateProject()
        for bucket in ["priv", "site"] {
            let connection = try Connection(port: project.port)
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            connection.send("POST /\(bucket)/?delete HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\nContent-Length: 8388000\r\n\r\n")
            let answer = connection.response()
            #expect(answer?.status == 403, "\(bucket): no 403 before the body (\(answer.map { String($0.status) } ?? "no answer in 5 s"))")
        }
    }
}
