import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 36a's L4: serve answered `application/octet-stream` for common web types. The types are
/// those OSS's SDKs give these extensions (their table of the system's MIME types: Python's
/// `mimetypes`, Go's `mime`), `text/` ones with a charset as for every file. A `.svgz` file
/// holding gzip bytes is also sent with `Content-Encoding: gzip`, or no `<img>` can show it.
@Suite(.ownThreads) struct ContentTypesRound37Tests {
    static let expected = [
        "a.jfif": "image/jpeg", "a.m4v": "video/mp4", "a.ogv": "video/ogg", "a.m4a": "audio/mp4", "a.aac": "audio/aac",
        "a.opus": "audio/ogg", "a.flac": "audio/flac", "a.ics": "text/calendar; charset=utf-8", "a.jsonl": "application/jsonl",
        "a.srt": "text/plain; charset=utf-8", "a.svgz": "image/svg+xml",
    ]

    @Test func staticSiteTypesAreServedByExtension() throws {
        var files: [String: String] = [:]
        for name in Self.expected.keys { files["plain/" + name] = "text:x" }
        let f = try ServiceFixture(manifest: WebsiteTests.manifest, files: files)
        for (name, type) in Self.expected {
            #expect(f.get("/plain/" + name).header("Content-Type") == type, "\(name)")
            #expect(f.get("/plain/" + name, method: "HEAD").header("Content-Type") == type, "HEAD \(name)")
        }
        // Bytes that are not gzip are not called gzip.
        #expect(f.get("/plain/a.svgz").header("Content-Encoding") == nil)
    }

    @Test func aGzippedSVGIsSentWithItsEncoding() throws {
        let f = try ServiceFixture(manifest: WebsiteTests.manifest, files: ["plain/.keep": "text:"])
        let svg = Data(#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#.utf8)
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-c", "-n"]
        let input = Pipe(), output = Pipe()
        gzip.standardInput = input
        gzip.standardOutput = output
        try gzip.run()
        input.fileHandleForWriting.write(svg)
        try input.fileHandleForWriting.close()
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        gzip.waitUntilExit()
        try bytes.write(to: f.folder.appendingPathComponent("plain/icon.svgz"))
        let answer = f.get("/plain/icon.svgz")
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type") == "image/svg+xml")
        #expect(answer.header("Content-Encoding") == "gzip")
        #expect(answer.body == bytes, "the bytes are sent as they are, still compressed")
        #expect(f.get("/plain/icon.svgz", method: "HEAD").header("Content-Encoding") == "gzip")
    }
}
