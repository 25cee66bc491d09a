import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// Third attack on `derive serve` (issue #11): error bodies stay well-formed XML whatever text
/// a request put in them.
@Suite(.ownThreads) struct ServeRound3ErrorBodyTests {
    /// The parsed text of every element, or nil when the body is not well-formed XML.
    final class Elements: NSObject, XMLParserDelegate {
        var values: [String: String] = [:]
        var current = ""
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            current = name; text = ""
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { values[name] = text }

        static func parse(_ data: Data) -> [String: String]? {
            let parser = XMLParser(data: data)
            let elements = Elements()
            parser.delegate = elements
            return parser.parse() ? elements.values : nil
        }
    }

    @Test func controlBytesInAWatermarkKeyLeaveTheErrorBodyWellFormed() throws {
        let f = try Hostile.fixture()
        let key = "a\u{0}b\u{1B}[31mc<&>\u{7F}d"
        let process = "image/watermark,image_\(Base64URL.encode(key)),g_nw"
        let response = f.get("/pubr/photo.jpg?x-oss-process=" + Hostile.query(process))
        #expect(response.status == 400)
        let elements = try #require(Elements.parse(response.body), "\(String(decoding: response.body, as: UTF8.self).debugDescription)")
        #expect(elements["Code"] == "WatermarkError")
        let message = try #require(elements["Message"])
        #expect(message.contains("a\u{FFFD}b\u{FFFD}[31mc<&>\u{7F}d"), "\(message.debugDescription)")
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test func everyFieldIsEscapedAndCleaned() throws {
        let body = OSSErrorBody(status: 400, code: "InvalidArgument", message: "m\u{0}<x>", ec: "0\u{1B}1",
                                details: [("Key", "k\u{8}&\u{FFFE}"), ("StringToSign", "GET\n\n/x")])
        let xml = body.xml(requestId: "id\u{0}", hostId: "h\u{1}<")
        let elements = try #require(Elements.parse(Data(xml.utf8)), "\(xml.debugDescription)")
        #expect(elements["Message"] == "m\u{FFFD}<x>")
        #expect(elements["Key"] == "k\u{FFFD}&\u{FFFD}" && elements["StringToSign"] == "GET\n\n/x")
        #expect(elements["RequestId"] == "id\u{FFFD}" && elements["HostId"] == "h\u{FFFD}<" && elements["EC"] == "0\u{FFFD}1")
    }
}

/// A PUT through a symbolic link inside a bucket is refused without revealing the link.
@Suite(.ownThreads) struct ServeRound3LayoutTests {
    @Test func aPutThroughALinkedFolderDoesNotNameTheLink() throws {
        let f = try Hostile.fixture()
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("prw/out").path,
                                                   withDestinationPath: f.buckets.appendingPathComponent("priv").path)
        let put = f.get("/prw/out/new.txt", method: "PUT", body: Data("x".utf8))
        #expect(put.status == 403 && put.code == "AccessDenied")
        let text = String(decoding: put.body, as: UTF8.self)
        #expect(!text.lowercased().contains("link") && !text.contains("out/new.txt"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: f.buckets.appendingPathComponent("priv/new.txt").path))
    }
}
