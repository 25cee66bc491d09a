import Foundation
import Manifest
import Testing
import TestSupport
@testable import derive

/// D8 (review of round 18): `derive init` writes the images' folder as a YAML double-quoted
/// scalar with an escaper of its own (`StarterManifest.yamlEscaped`: `\N`, `\L`, `\P` are YAML's,
/// not JSON's), and the same text in a comment. Checked against libyaml, through the loader
/// every manifest goes through: an escaped text reads back as itself, scalar by scalar, and a
/// comment holding it stays one comment.
@Suite(.ownThreads) struct InitYAMLEscapeTests {
    /// The scalars `text` reads back as when written as `init` writes it (a comment line, then
    /// `path: "…"`), or why it does not: the loader's error, or a document that is no longer
    /// the two keys written.
    static func readBack(_ text: String) -> (scalars: [Unicode.Scalar]?, problem: String) {
        let escaped = StarterManifest.yamlEscaped(text)
        let yaml = "# Derive manifest written by `derive init` for the images in \(escaped) (1 jpg).\npath: \"\(escaped)\"\nnext: 1\n"
        do {
            let node = try YAMLLoader.load(Data(yaml.utf8), file: "derive.yaml")
            guard case .mapping(let pairs)? = node?.kind, pairs.count == 2, pairs[0].key.scalar == "path", pairs[1].key.scalar == "next",
                  let path = pairs[0].value.scalar else { return (nil, "not the two keys written: \(yaml)") }
            return (Array(path.unicodeScalars), "")
        } catch {
            return (nil, "\(error)")
        }
    }

    /// Text of scalars Swift's literals do not take (the noncharacters U+FDD0-U+FDEF and others).
    static func scalars(_ values: UInt32...) -> String {
        var text = ""
        text.unicodeScalars.append(contentsOf: values.compactMap(Unicode.Scalar.init))
        return text
    }

    static func readsBack(_ text: String) -> Bool { readBack(text).scalars == Array(text.unicodeScalars) }

    /// The texts the escaper is there for, and what libyaml refuses raw: NUL and the other C0
    /// controls, DEL and C1, the line breaks (LF, CR, NEL U+0085, U+2028, U+2029), `\` and `"`,
    /// the byte order mark, the noncharacters U+FFFE and U+FFFF, and text around them.
    @Test(arguments: ["p\u{0}q", "p\u{1}q", "\u{7}", "p\tq", "p\nregion: x\n#", "p\rq", "p\r\nq", "p\u{B}q", "p\u{C}q", "p\u{1B}q", "p\u{7F}q",
                      "p\u{80}q", "p\u{85}q", "p\u{9F}q", "p\u{A0}q", "p\u{2028}q", "p\u{2029}q", "p\\q", "p\\\"q", "p\"q", "\"", "\\", "p'q",
                      "p\u{FEFF}q", "\u{FEFF}", "p\u{FFFE}q", "p\u{FFFF}q", "\u{FFFD}", "p\u{D7FF}\u{E000}" + Self.scalars(0xFDD0, 0x10FFFF) + "q", " p ", "p #q", "p: q",
                      "# p", "e\u{301}", "\u{E9}", "photos", "", "\\u0041", "\\N", "\\x41"])
    func anEscapedTextReadsBackAsItself(text: String) {
        let read = Self.readBack(text)
        #expect(read.scalars == Array(text.unicodeScalars), "\(text.unicodeScalars.map { String($0.value, radix: 16) }): \(read.scalars ?? []) \(read.problem)")
    }

    /// Every Unicode scalar, in runs of 2 048 between two letters; a run that does not read back
    /// is tried scalar by scalar, and those are named.
    @Test func everyUnicodeScalarReadsBackAsItself() {
        var failing: [String] = []
        var run: [Unicode.Scalar] = []
        func check() {
            var text = "a"
            text.unicodeScalars.append(contentsOf: run)
            text += "b"
            if !Self.readsBack(text) {
                for scalar in run where !Self.readsBack("a" + String(Character(scalar)) + "b") {
                    failing.append("U+" + String(scalar.value, radix: 16, uppercase: true))
                }
            }
            run.removeAll(keepingCapacity: true)
        }
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            run.append(scalar)
            if run.count == 2_048 { check() }
        }
        check()
        #expect(failing.isEmpty, "\(failing.count) scalars do not read back: \(failing.prefix(20))")
    }

    /// End to end: `derive init` in folders named with such characters writes a manifest whose
    /// images bucket is that folder, which `derive validate` takes (U+FFFE and U+FFFF made it
    /// `YAML syntax error: control characters are not allowed`).
    @Test func initNamesAFolderOfAnyNameItsManifestReadsBack() throws {
        for name in ["p\u{1}q", "p\nregion: x\n#", "p\u{85}q", "p\u{2028}q", "p\\\"q", "p\u{FEFF}q", "p\u{FFFE}q", "p\u{FFFF}q", "p\u{7F}\u{9F}q"] {
            let root = try CLI.temporaryFolder()
            defer { try? FileManager.default.removeItem(at: root) }
            try copySample("landscape.jpg", to: root.appendingPathComponent(name).appendingPathComponent("a.jpg"))
            let shown = "\(name.unicodeScalars.map { String($0.value, radix: 16) })"
            let initialised = try CLI.run(["init", name], in: root)
            #expect(initialised.status == 0, "\(shown): \(initialised.stderr)")
            let node = try YAMLLoader.load(try Data(contentsOf: root.appendingPathComponent("derive.yaml")), file: "derive.yaml")
            let buckets = node?.value("buckets")
            #expect(buckets?.value("images")?.value("path")?.scalar.map { Array($0.unicodeScalars) } == Array(name.unicodeScalars), "\(shown)")
            let validated = try CLI.run(["validate"], in: root)
            #expect(validated.status == 0, "\(shown): \(text(validated.stdout)) \(validated.stderr)")
        }
    }

    /// A folder whose name is not UTF-8 (`ph\xFFoto`, from an old Latin-1 disk) cannot be named in
    /// a manifest, which is UTF-8 text; init said `ph\u{FFFD}oto is not a folder`, though it is.
    /// It says why, and how to fix it, and writes nothing.
    @Test func initSaysAFolderNameThatIsNotUTF8CannotBeNamed() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let script = #"mkdir "$(printf 'ph\377oto')" && cp "$1" "$(printf 'ph\377oto')/a.jpg" && exec "$2" init "$(printf 'ph\377oto')""#
        let result = try CLI.run(["sh", "-c", script, "sh", CLI.samples.appendingPathComponent("landscape.jpg").path, CLI.executable.path],
                                 in: root, executable: "/usr/bin/env")
        // A usage error now, as for every argument that is not UTF-8 (attack 44a's M1), naming its bytes.
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("ph\\xFFoto") && result.stderr.contains("not valid UTF-8") && result.stderr.contains("rename the file or folder"), "\(result.stderr)")
        #expect(!result.stderr.contains("is not a folder"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("derive.yaml").path))
    }
}

extension YAMLNode {
    /// The value of `key` in a mapping.
    fileprivate func value(_ key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = kind else { return nil }
        return pairs.first { $0.key.scalar == key }?.value
    }
}
