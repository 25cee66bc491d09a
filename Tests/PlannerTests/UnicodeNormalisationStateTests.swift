import Confinement
import Foundation
import Planner
import Testing
import TestSupport

/// The state and the lock keep names that differ only by Unicode normalisation apart (issue 9,
/// U1): two files on Linux, two records, two lock lines.
@Suite(.ownThreads) struct UnicodeNormalisationStateTests {
    static let nfc = "caf\u{E9}", nfd = "cafe\u{301}"

    static func record(_ path: String, folder: String, digest: String) -> OutputRecord {
        OutputRecord(path: path, rule: "thumbs", source: "src/" + (path as NSString).lastPathComponent, style: nil, matrix: "",
                     engine: "e", pipeline: "p", sourceDigest: "s", dependencies: "", encoder: "enc", actionKey: "k-" + digest,
                     acl: "default", outputDigest: digest, size: 1, width: 1, height: 1, format: "jpg", builtAt: 0, folder: folder)
    }

    /// Both records come back, each with its own path, source and folder bytes (the folder names
    /// are long enough for the state's string interning, which must not merge them either).
    @Test func theStateKeepsBothSpellings() throws {
        let store = try StateStore(inMemory: ())
        let folderNFC = "/tmp/derive-test-" + Self.nfc + "-a-long-bucket-folder"
        let folderNFD = "/tmp/derive-test-" + Self.nfd + "-a-long-bucket-folder"
        try store.recordOutput(Self.record("out/\(Self.nfc).jpg", folder: folderNFC, digest: "d1"), file: nil)
        try store.recordOutput(Self.record("out/\(Self.nfd).jpg", folder: folderNFD, digest: "d2"), file: nil)
        try store.recordOutput(Self.record("more/x.jpg", folder: folderNFD, digest: "d3"), file: nil)
        let outputs = try store.allOutputs()
        #expect(outputs.count == 3)
        let nfc = try #require(outputs["out/\(Self.nfc).jpg"]), nfd = try #require(outputs["out/\(Self.nfd).jpg"])
        #expect(nfc.outputDigest == "d1" && nfd.outputDigest == "d2")
        #expect(Array(nfc.path.utf8) == Array("out/\(Self.nfc).jpg".utf8) && Array(nfd.path.utf8) == Array("out/\(Self.nfd).jpg".utf8))
        #expect(Array(nfc.folder.utf8) == Array(folderNFC.utf8), "the NFC record's folder was replaced by its NFD twin")
        #expect(Array(nfd.folder.utf8) == Array(folderNFD.utf8))
        #expect(Array(try #require(outputs["more/x.jpg"]).folder.utf8) == Array(folderNFD.utf8))
    }

    /// Two lines, in byte order, each parsed back to its own entry.
    @Test func theLockKeepsBothSpellingsInByteOrder() throws {
        let entries = [LockFile.Entry(path: "out/\(Self.nfc).jpg", actionKey: "k1", digest: "d1", width: 1, height: 1, bytes: 1, format: "jpg"),
                       LockFile.Entry(path: "out/\(Self.nfd).jpg", actionKey: "k2", digest: "d2", width: 1, height: 1, bytes: 2, format: "jpg")]
        let text = LockFile(entries: entries).text
        let lines = text.split(separator: "\n").dropFirst().map(String.init)
        #expect(lines.count == 2)
        #expect(lines.first?.utf8.contains(0xCC) == true, "NFD (0x65 0xCC 0x81) sorts before NFC (0xC3 0xA9): \(lines)")
        let parsed = try #require(LockFile.parse(text))
        #expect(parsed.entries.count == 2)
        #expect(parsed.entries["out/\(Self.nfc).jpg"]?.digest == "d1" && parsed.entries["out/\(Self.nfd).jpg"]?.digest == "d2")
        #expect(LockFile(entries: entries.reversed()).text == text)
    }
}
