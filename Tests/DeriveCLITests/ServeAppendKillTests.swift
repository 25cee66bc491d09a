import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 10, C: `derive serve` killed (SIGKILL) while appends stream in, then started again on
/// the same state, several rounds. Every time, each object's bytes are a whole number of the
/// appends sent, in order; every append answered 200 is kept; the object is Appendable at exactly
/// its length and takes the next append. Also: an empty `x-oss-object-acl` through HTTP is 400.
@Suite(.ownThreads, .serialized) struct ServeAppendKillTests {
    typealias Connection = ServeConnectionTests.Connection

    final class Server {
        let folder: URL
        let process = Process()
        var port: UInt16 = 0

        init(folder: URL, round: Int) throws {
            self.folder = folder
            let out = folder.appendingPathComponent("serve-\(round).out"), err = folder.appendingPathComponent("serve-\(round).err")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            _ = FileManager.default.createFile(atPath: err.path, contents: nil)
            process.executableURL = CLI.executable
            process.arguments = ["serve", "--port", "0"]
            process.currentDirectoryURL = folder
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
            // Waited for, so the bound costs nothing when the start is quick: a loaded machine's debug start can be slow.
            let deadline = Date().addingTimeInterval(120)
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

        func kill() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        deinit { kill() }
    }

    static let keys = ["k0", "k1", "k2"]
    static let chunk = 16

    /// The bytes of append number `n` to `key` (fixed width, so the object's length names them).
    static func chunk(_ key: String, _ n: Int) -> [UInt8] { Array((key + "-" + String(format: "%012d", n) + ";").utf8) }

    static func append(_ connection: Connection, _ key: String, _ position: Int) -> (status: Int, next: Int?)? {
        let body = chunk(key, position / chunk)
        connection.send("POST /prw/\(key)?append&position=\(position) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\n\r\n")
        connection.send(body)
        guard let answer = connection.response() else { return nil }
        return (answer.status, answer.headers["x-oss-next-append-position"].flatMap { Int($0) })
    }

    @Test func appendsSurviveKillsWithRecordAndBytesInAgreement() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("prw"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  prw: {path: prw, acl: public-read-write}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        var acknowledged: [String: Int] = [:]
        var settled = 0
        for round in 0..<5 {
            let server = try Server(folder: folder, round: round)
            // After the previous kill: every object is whole appends, at least what was
            // acknowledged, Appendable at its length.
            let check = try Connection(port: server.port)
            for key in Self.keys {
                check.send("GET /prw/\(key) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                let answer = try #require(check.response())
                guard answer.status == 200 else {
                    #expect(answer.status == 404 && acknowledged[key] == nil, "round \(round) \(key): \(answer.status)")
                    continue
                }
                let size = answer.body.count
                #expect(size % Self.chunk == 0, "round \(round) \(key): \(size) bytes")
                let expected = (0..<(size / Self.chunk)).flatMap { Self.chunk(key, $0) }
                #expect(answer.body == expected, "round \(round) \(key): the bytes are not the appends in order")
                #expect(size >= acknowledged[key] ?? 0, "round \(round) \(key): an acknowledged append was lost")
                #expect(answer.headers["x-oss-object-type"] == "Appendable" && answer.headers["x-oss-next-append-position"] == String(size),
                        "round \(round) \(key): \(answer.headers)")
                acknowledged[key] = size
            }
            // Appends stream in on one connection until the kill.
            final class Progress: @unchecked Sendable { var positions: [String: Int] = [:]; var answered = 0; let lock = NSLock() }
            let progress = Progress()
            progress.positions = acknowledged
            let port = server.port
            let client = Thread {
                guard let connection = try? Connection(port: port) else { return }
                var turn = 0
                while true {
                    let key = Self.keys[turn % Self.keys.count]
                    turn += 1
                    let position = progress.lock.withLock { progress.positions[key] ?? 0 }
                    guard let answer = Self.append(connection, key, position) else { return }
                    guard answer.status == 200, let next = answer.next else { return }
                    progress.lock.withLock { progress.positions[key] = next; progress.answered += 1 }
                }
            }
            client.start()
            // Killed while appends stream in: once the first of this round is answered (waited for:
            // a fixed 0.4–1.6 s ended every round before a loaded machine's first answer, and no
            // append went through), then after a spell that differs by round.
            let deadline = Date().addingTimeInterval(60)
            while !client.isFinished, Date() < deadline, progress.lock.withLock({ progress.answered }) == 0 { Thread.sleep(forTimeInterval: 0.01) }
            Thread.sleep(forTimeInterval: 0.1 + 0.3 * Double(round))
            server.kill()
            while !client.isFinished { Thread.sleep(forTimeInterval: 0.01) }
            acknowledged = progress.lock.withLock { progress.positions }
            let log = (try? String(contentsOf: folder.appendingPathComponent("serve-\(round).err"), encoding: .utf8)) ?? ""
            settled += log.components(separatedBy: "appendable '").count - 1
        }
        #expect(acknowledged.values.reduce(0, +) > 0, "no append went through")
        // A last start: each object takes the next append.
        let server = try Server(folder: folder, round: 5)
        let connection = try Connection(port: server.port)
        for key in Self.keys {
            let size = acknowledged[key] ?? 0
            let head = FileManager.default.contents(atPath: folder.appendingPathComponent("prw/\(key)").path)?.count ?? 0
            let answer = try #require(Self.append(connection, key, head))
            #expect(answer.status == 200 && answer.next == head + Self.chunk && head >= size, "\(key): \(answer)")
        }
        print("ServeAppendKillTests: 5 kills; \(settled) interrupted appends settled at start-up")
    }

    /// Attack 10, D, through HTTP: a header with an empty value reaches the service and is 400.
    @Test func anEmptyObjectACLHeaderIsRefusedOverHTTP() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("prw"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  prw: {path: prw, acl: public-read-write}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let server = try Server(folder: folder, round: 0)
        for header in ["x-oss-object-acl:", "x-oss-object-acl: ", "x-oss-object-acl:  \t"] {
            let connection = try Connection(port: server.port)
            connection.send("PUT /prw/g.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\(header)\r\nContent-Length: 1\r\n\r\nx")
            let answer = try #require(connection.response())
            let text = String(decoding: answer.body, as: UTF8.self)
            #expect(answer.status == 400 && text.contains("<Code>InvalidArgument</Code>"), "'\(header)': \(answer.status) \(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("prw/g.csv").path))
    }
}
