import Testing
import TestSupport
@testable import Confinement

@Suite(.ownThreads) struct ObjectKeyTests {
    @Test func plainKeysAreAccepted() throws {
        for key in ["a.jpg", "photos/2024/IMG 0001.jpg", "日本/写真.png", "e\u{301}/x", "a..b/c.", "%41.txt"] {
            #expect(try ObjectKey(key).string == key)
        }
    }

    /// `..` followed by a combining mark is one grapheme cluster in Swift but two dots and a
    /// mark in bytes: checks on bytes see the segment as it is, not as `..`.
    @Test func dotSegmentsAreFoundOnBytesNotCharacters() throws {
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(bytes: Array("a/../b".utf8)) }
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(bytes: Array("./b".utf8)) }
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(bytes: Array("a/..".utf8)) }
        // "../\u{301}escaped.txt": Swift's split on Character "/" sees "..", "/\u{301}" as one cluster.
        let escape = "../\u{301}escaped.txt"
        #expect(escape.split(separator: "/").first != "..")  // the string-shape check that failed
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(escape) }
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(percentEncoded: "prw/../%CC%81escaped.txt") }
    }

    @Test func segmentsAreSplitOnTheSlashByte() throws {
        let key = try ObjectKey("secret/\u{301}x.jpg")
        #expect(key.segments.count == 2)
        #expect(String(decoding: key.segments[0], as: UTF8.self) == "secret")
        // The combining mark belongs to the second segment, not to the slash.
        #expect(String(decoding: key.segments[1], as: UTF8.self) == "\u{301}x.jpg")
    }

    @Test func malformedKeysAreRefused() {
        #expect(throws: ObjectKey.Problem.empty) { try ObjectKey("") }
        #expect(throws: ObjectKey.Problem.leadingSlash) { try ObjectKey("/etc/passwd") }
        #expect(throws: ObjectKey.Problem.trailingSlash) { try ObjectKey("folder/") }
        #expect(throws: ObjectKey.Problem.emptySegment) { try ObjectKey("a//b") }
        #expect(throws: ObjectKey.Problem.controlCharacter) { try ObjectKey("a\0b") }
        #expect(throws: ObjectKey.Problem.controlCharacter) { try ObjectKey("a\nb") }
        #expect(throws: ObjectKey.Problem.invalidUTF8) { try ObjectKey(bytes: [0x61, 0xC0, 0xAF]) }  // overlong '/'
        #expect(throws: ObjectKey.Problem.invalidUTF8) { try ObjectKey(percentEncoded: "a%C0%AFb") }
        #expect(throws: ObjectKey.Problem.badPercentEscape) { try ObjectKey(percentEncoded: "a%2") }
        #expect(throws: ObjectKey.Problem.tooLong(1024)) { try ObjectKey(String(repeating: "a", count: 1024)) }
    }

    @Test func percentDecodingProducesBytes() throws {
        #expect(try ObjectKey(percentEncoded: "a%2Fb").string == "a/b")
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(percentEncoded: "%2e%2e/x") }
        #expect(try ObjectKey(percentEncoded: "%EF%BC%8F").string == "\u{FF0F}")  // fullwidth solidus is not '/'
        #expect(try ObjectKey(percentEncoded: "%EF%BC%8F").segments.count == 1)
    }

    @Test func fileNamesMayHoldControlCharactersButNotNulOrDotSegments() throws {
        #expect(try ObjectKey(fileName: Array("src/IMG\t0001\n.jpg".utf8)).string == "src/IMG\t0001\n.jpg")
        #expect(throws: ObjectKey.Problem.controlCharacter) { try ObjectKey(fileName: [0x61, 0x00, 0x62]) }
        #expect(throws: ObjectKey.Problem.dotSegment) { try ObjectKey(fileName: Array("a/../b".utf8)) }
        #expect(throws: ObjectKey.Problem.emptySegment) { try ObjectKey(fileName: Array("a//b".utf8)) }
        #expect(throws: ObjectKey.Problem.controlCharacter) { try ObjectKey(bytes: Array("a\tb".utf8)) }
    }

    /// File names are checked in one walk over the bytes (every source and output of a no-op
    /// build is): every segment, the first and the last included, and UTF-8 beyond ASCII.
    @Test func fileNameSegmentsAndEncodingAreCheckedEverywhere() throws {
        for dots in [".", "..", "./a", "../a", "a/.", "a/..", "a/./b", "a/b/../c"] {
            #expect(throws: ObjectKey.Problem.dotSegment, "\(dots)") { try ObjectKey(fileName: Array(dots.utf8)) }
        }
        for name in ["...", ".a", "a.", "..a/b", "a/...", "a/b..", "\u{E9}t\u{E9}/\u{5199}\u{771F}.jpg", "a"] {
            #expect(try ObjectKey(fileName: Array(name.utf8)).string == name)
        }
        #expect(throws: ObjectKey.Problem.emptySegment) { try ObjectKey(fileName: Array("a/b//c".utf8)) }
        #expect(throws: ObjectKey.Problem.leadingSlash) { try ObjectKey(fileName: Array("/a".utf8)) }
        #expect(throws: ObjectKey.Problem.trailingSlash) { try ObjectKey(fileName: Array("a/".utf8)) }
        #expect(throws: ObjectKey.Problem.empty) { try ObjectKey(fileName: []) }
        #expect(throws: ObjectKey.Problem.invalidUTF8) { try ObjectKey(fileName: [0x61, 0xFF, 0x62]) }
        #expect(throws: ObjectKey.Problem.invalidUTF8) { try ObjectKey(fileName: [0x61, 0xC3]) }   // cut short
    }
}
