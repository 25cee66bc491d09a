import Foundation
import Testing
import TestSupport

/// Attack 53b's 2 and 3. 2 (Medium): a copy of a state-home secret in a public bucket was hidden
/// only when its first bytes were the record's exactly: the same file with CRLF line ends (git's
/// `core.autocrlf`, a Windows sync), a UTF-8 BOM or a leading blank line was answered whole to
/// anyone, listed, and validate named only the plain copy. 3 (Low/Medium): such a secret named
/// as a watermark image answered 404 NoSuchKey where a missing object answers 400, so anyone could
/// tell where one lies. A `# comment` line before it or a gzip of it is not detected (README says so).
@Suite(.ownThreads) struct ServeSecretCopiesRound54Tests {
    static let hex = String(repeating: "c4", count: 32)
    static let record = "secret \(hex)\nstate \"/home/u/p/.derive/p/state.sqlite\"\n"

    static func watermark(_ key: String) -> String {
        let encoded = Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "/pub/pic.jpg?x-oss-process=image/watermark,image_" + encoded
    }

    /// The text of each element `name` of an error body.
    static func field(_ name: String, _ body: [UInt8]) -> String {
        let text = String(decoding: body, as: UTF8.self)
        guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex) else { return "" }
        return String(text[start.upperBound..<end.lowerBound])
    }

    @Test func secretCopiesWithCRLFOrABOMAreHiddenAndAsWatermarksAnswerAsMissingObjects() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("pub/pic.jpg"))
        let copies: [(key: String, bytes: [UInt8])] = [
            ("plain.txt", Array(Self.record.utf8)),
            ("crlf.txt", Array(Self.record.replacingOccurrences(of: "\n", with: "\r\n").utf8)),
            ("bom.txt", [0xEF, 0xBB, 0xBF] + Array(Self.record.utf8)),
            ("blank.txt", Array("\n \r\n\t".utf8) + Array(Self.record.utf8)),
            ("bom-crlf.txt", [0xEF, 0xBB, 0xBF] + Array(Self.record.replacingOccurrences(of: "\n", with: "\r\n").utf8)),
        ]
        for copy in copies { try Data(copy.bytes).write(to: root.appendingPathComponent("pub/" + copy.key)) }
        // Changed further by hand: not detected (README), answered as any file.
        try Data(("# my backup\n" + Self.record).utf8).write(to: root.appendingPathComponent("pub/commented.txt"))
        try Data("version: 1\nbuckets:\n  pub: {path: pub, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("p.yaml"))
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("home").path]

        let validate = try CLI.run(["validate", "p.yaml"], in: root, environment: environment)
        let warning = validate.stderr.split(separator: "\n").first { $0.contains("per-user records") } ?? ""
        for copy in copies { #expect(warning.contains("pub/" + copy.key), "validate, \(copy.key): \(validate.stderr)") }

        let serve = try ServeSession(in: root, manifest: "p.yaml", environment: environment)
        defer { serve.stop() }
        #expect(try serve.get("/pub/pic.jpg").status == 200)
        #expect(try serve.get("/pub/commented.txt").status == 200)
        for copy in copies {
            let answer = try serve.get("/pub/" + copy.key)
            #expect(answer.status == 404 && !String(decoding: answer.body, as: UTF8.self).contains(Self.hex), "\(copy.key): \(answer.status)")
        }
        let list = String(decoding: try serve.get("/pub/?list-type=2").body, as: UTF8.self)
        #expect(list.contains("<Key>pic.jpg</Key>"), "\(list)")
        for copy in copies { #expect(!list.contains("<Key>\(copy.key)</Key>"), "listed: \(copy.key)") }

        // As a watermark image: exactly a missing object's answer (its name aside).
        let missing = try serve.get(Self.watermark("nosuch.txt"))
        #expect(missing.status == 400, "\(missing.status) \(String(decoding: missing.body, as: UTF8.self))")
        for key in ["plain.txt", "crlf.txt", "bom.txt"] {
            let answer = try serve.get(Self.watermark(key))
            #expect(answer.status == missing.status, "\(key): \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
            for name in ["Code", "EC"] { #expect(Self.field(name, answer.body) == Self.field(name, missing.body), "\(key): \(name)") }
            #expect(Self.field("Message", answer.body).replacingOccurrences(of: key, with: "nosuch.txt") == Self.field("Message", missing.body),
                    "\(key): \(Self.field("Message", answer.body))")
        }
    }
}
