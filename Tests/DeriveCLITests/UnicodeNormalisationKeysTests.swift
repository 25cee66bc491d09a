import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9, U1: names that differ only by Unicode normalisation are two files on Linux
/// (`café.jpg` as NFC `caf\xC3\xA9.jpg` and as NFD `cafe\xCC\x81.jpg`), but Swift's `String`
/// compares them as one. Derive keys every file by its bytes: both spellings are sources with
/// their own outputs, lock lines and index entries, and one never vouches for, overwrites or
/// deletes the other. Files are made and listed with POSIX calls on bytes, never through
/// Foundation's path handling, so the test sees exactly the names the file system holds.
@Suite(.ownThreads, .serialized) struct UnicodeNormalisationKeysTests {
    static let nfc = "caf\u{E9}"         // caf C3 A9
    static let nfd = "cafe\u{301}"       // cafe CC 81

    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: out/index.json
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}

        """

    struct Project {
        let root: URL
        /// `sources`: file name in `src/` → sample image whose bytes it holds.
        init(sources: [(name: String, sample: String)]) throws {
            root = try CLI.temporaryFolder()
            try make("src")
            for (name, sample) in sources {
                try write("src/" + name, try Data(contentsOf: CLI.samples.appendingPathComponent(sample)))
            }
            try write("derive.yaml", Data(UnicodeNormalisationKeysTests.manifest.utf8))
        }
        /// The path's bytes as given (a `String` concatenation never normalises).
        func path(_ relative: String) -> String { root.path + "/" + relative }
        func make(_ folder: String) throws {
            guard mkdir(path(folder), 0o755) == 0 || errno == EEXIST else { throw POSIXError(.init(rawValue: errno)!) }
        }
        func write(_ relative: String, _ data: Data) throws {
            let fd = open(path(relative), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
            defer { close(fd) }
            let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == data.count else { throw POSIXError(.EIO) }
        }
        func read(_ relative: String) -> Data? {
            let fd = open(path(relative), O_RDONLY)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = Glibc.read(fd, &buffer, buffer.count)
                guard count > 0 else { break }
                data.append(contentsOf: buffer[0..<count])
            }
            return data
        }
        func exists(_ relative: String) -> Bool {
            var info = stat()
            return lstat(path(relative), &info) == 0
        }
        func remove(_ relative: String) { unlink(path(relative)) }
        /// The names in a folder, as bytes, in byte order.
        func names(in folder: String) -> [[UInt8]] {
            guard let dir = opendir(path(folder)) else { return [] }
            defer { closedir(dir) }
            var names: [[UInt8]] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
                if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
            }
            return names.sorted { $0.lexicographicallyPrecedes($1) }
        }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }
        func cleanUp() { try? FileManager.default.removeItem(at: root) }
    }

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    /// How often `needle` occurs in `data`, by bytes.
    func occurrences(_ needle: String, in data: Data) -> Int {
        let needle = Array(needle.utf8), haystack = Array(data)
        guard needle.count <= haystack.count else { return 0 }
        return (0...(haystack.count - needle.count)).filter { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }.count
    }

    /// The outputs two plain names render to from the same samples: what each spelling must hold.
    func reference() throws -> (landscape: Data, orientation: Data) {
        let project = try Project(sources: [("a.jpg", "landscape.jpg"), ("b.jpg", "orientation-1.jpg")])
        defer { project.cleanUp() }
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let a = try #require(project.read("out/a.jpg")), b = try #require(project.read("out/b.jpg"))
        #expect(a != b)
        return (a, b)
    }

    /// Both spellings of `café.jpg` in `src/`, holding different pictures, built once.
    func builtProject() throws -> Project {
        let project = try Project(sources: [(Self.nfc + ".jpg", "landscape.jpg"), (Self.nfd + ".jpg", "orientation-1.jpg")])
        #expect(project.names(in: "src").count == 2, "the file system keeps both names")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("built 2,"), "\(text(build.stdout)) \(build.stderr)")
        return project
    }

    @Test func bothSpellingsAreTwoSourcesEachWithItsOwnOutput() throws {
        let expected = try reference()
        let project = try builtProject()
        defer { project.cleanUp() }
        #expect(project.names(in: "out") == [bytes("cafe\u{301}.jpg"), bytes("caf\u{E9}.jpg"), bytes("index.json")].sorted { $0.lexicographicallyPrecedes($1) })
        #expect(project.read("out/" + Self.nfc + ".jpg") == expected.landscape, "the NFC output holds the NFC source's picture")
        #expect(project.read("out/" + Self.nfd + ".jpg") == expected.orientation, "the NFD output holds the NFD source's picture")
        // The lock and the index name both, each once.
        let lock = try #require(project.read("derive.lock"))
        #expect(occurrences("\"path\":\"out/\(Self.nfc).jpg\"", in: lock) == 1, "\(text(lock))")
        #expect(occurrences("\"path\":\"out/\(Self.nfd).jpg\"", in: lock) == 1, "\(text(lock))")
        #expect(text(lock).split(separator: "\n").count == 3)
        let index = try #require(project.read("out/index.json"))
        #expect(occurrences("\"src/\(Self.nfc).jpg\": {", in: index) == 1, "\(text(index))")
        #expect(occurrences("\"src/\(Self.nfd).jpg\": {", in: index) == 1, "\(text(index))")
        #expect(occurrences("\"path\": \"out/\(Self.nfc).jpg\"", in: index) == 1)
        #expect(occurrences("\"path\": \"out/\(Self.nfd).jpg\"", in: index) == 1)
        // The lock's order is byte order: NFD (`e` 0x65) before NFC (0xC3).
        let nfdLine = try #require(text(lock).range(of: "out/\(Self.nfd).jpg", options: .literal))
        let nfcLine = try #require(text(lock).range(of: "out/\(Self.nfc).jpg", options: .literal))
        #expect(nfdLine.lowerBound < nfcLine.lowerBound)
        // Built: a second build is a no-op, check is clean, plan --json agrees.
        let again = try project.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(text(again.stdout)) \(again.stderr)")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        #expect(project.read("derive.lock") == lock && project.read("out/index.json") == index)
    }

    @Test func deletingOneSpellingDeletesOnlyItsOutputs() throws {
        let project = try builtProject()
        defer { project.cleanUp() }
        let kept = try #require(project.read("out/" + Self.nfc + ".jpg"))
        project.remove("src/" + Self.nfd + ".jpg")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("built 0, deleted 1,"), "\(text(build.stdout))")
        #expect(!project.exists("out/" + Self.nfd + ".jpg"))
        #expect(project.read("out/" + Self.nfc + ".jpg") == kept, "the other spelling's output is left, bytes unchanged")
        let lock = try #require(project.read("derive.lock"))
        #expect(occurrences("out/\(Self.nfd).jpg", in: lock) == 0 && occurrences("out/\(Self.nfc).jpg", in: lock) == 1, "\(text(lock))")
        let index = try #require(project.read("out/index.json"))
        #expect(occurrences("src/\(Self.nfd).jpg", in: index) == 0 && occurrences("src/\(Self.nfc).jpg", in: index) == 1, "\(text(index))")
        #expect(try project.run(["check"]).status == 0)
        // And the other way round.
        let other = try builtProject()
        defer { other.cleanUp() }
        let keptNFD = try #require(other.read("out/" + Self.nfd + ".jpg"))
        other.remove("src/" + Self.nfc + ".jpg")
        #expect(try other.run(["build", "-q"]).status == 0)
        #expect(!other.exists("out/" + Self.nfc + ".jpg"))
        #expect(other.read("out/" + Self.nfd + ".jpg") == keptNFD)
        #expect(try other.run(["check"]).status == 0)
    }

    @Test func aFreshCloneAdoptsBothSpellingsWithoutRendering() throws {
        let project = try builtProject()
        defer { project.cleanUp() }
        let lock = try #require(project.read("derive.lock"))
        let index = try #require(project.read("out/index.json"))
        let nfc = try #require(project.read("out/" + Self.nfc + ".jpg")), nfd = try #require(project.read("out/" + Self.nfd + ".jpg"))
        try FileManager.default.removeItem(at: project.root.appendingPathComponent(".derive"))
        let check = try project.run(["check"])
        #expect(check.status == 0, "the lock vouches for both: \(text(check.stdout)) \(check.stderr)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("built 0, adopted 2 from derive.lock"), "\(text(build.stdout))")
        #expect(project.read("out/" + Self.nfc + ".jpg") == nfc && project.read("out/" + Self.nfd + ".jpg") == nfd)
        #expect(project.read("derive.lock") == lock)
        #expect(project.read("out/index.json") == index)
        #expect(try project.run(["check"]).status == 0)
        let again = try project.run(["build"])
        #expect(text(again.stdout).contains("Nothing to do"), "\(text(again.stdout))")
    }

    @Test func cleanRemovesBothSpellings() throws {
        let project = try builtProject()
        defer { project.cleanUp() }
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(text(clean.stdout).contains("Removed 2 outputs"), "\(text(clean.stdout))")
        #expect(project.names(in: "out").isEmpty, "\(project.names(in: "out"))")
        #expect(project.names(in: "src").count == 2)
    }

    /// A file of the user's named with the other spelling of an output: never overwritten, never
    /// deleted, and never taken for the output (nor the output for it).
    @Test func aUsersFileWithTheOtherSpellingIsNeverTouched() throws {
        for (source, user) in [(Self.nfc, Self.nfd), (Self.nfd, Self.nfc)] {
            let project = try Project(sources: [(source + ".jpg", "landscape.jpg")])
            defer { project.cleanUp() }
            try project.make("out")
            let mine = Data("the user's own file\n".utf8)
            try project.write("out/" + user + ".jpg", mine)
            let build = try project.run(["build"])
            #expect(build.status == 0, "\(build.stderr)")
            #expect(text(build.stdout).contains("built 1,"), "\(text(build.stdout)) \(build.stderr)")
            #expect(project.read("out/" + user + ".jpg") == mine)
            #expect(project.exists("out/" + source + ".jpg"))
            #expect(try project.run(["check"]).status == 0)
            // The source goes: its output is deleted, the user's file stays.
            project.remove("src/" + source + ".jpg")
            let after = try project.run(["build"])
            #expect(after.status == 0, "\(after.stderr)")
            #expect(!project.exists("out/" + source + ".jpg"))
            #expect(project.read("out/" + user + ".jpg") == mine, "the user's file was deleted or changed")
            // clean too.
            try project.write("src/" + source + ".jpg", try Data(contentsOf: CLI.samples.appendingPathComponent("landscape.jpg")))
            #expect(try project.run(["build", "-q"]).status == 0)
            #expect(try project.run(["clean"]).status == 0)
            #expect(project.read("out/" + user + ".jpg") == mine, "clean removed the user's file")
            #expect(!project.exists("out/" + source + ".jpg"))
        }
    }

    /// A source renamed to the other spelling while the user keeps a copy of its old output
    /// under the new output's name (the same bytes): the record of `out/café.jpg` (NFC) is not the
    /// record of the NFD file, so that file is the user's, and the build refuses to replace or
    /// adopt it; the NFC output is an orphan, never the NFD file's owner.
    @Test func aRecordForOneSpellingDoesNotOwnTheOther() throws {
        for (old, new) in [(Self.nfc, Self.nfd), (Self.nfd, Self.nfc)] {
            let project = try Project(sources: [(old + ".jpg", "landscape.jpg")])
            defer { project.cleanUp() }
            #expect(try project.run(["build", "-q"]).status == 0)
            let output = try #require(project.read("out/" + old + ".jpg"))
            project.remove("src/" + old + ".jpg")
            try project.write("src/" + new + ".jpg", try Data(contentsOf: CLI.samples.appendingPathComponent("landscape.jpg")))
            try project.write("out/" + new + ".jpg", output)
            let check = try project.run(["check"])
            #expect(check.status != 0, "check called the user's copy Derive's output: \(text(check.stdout))")
            let build = try project.run(["build"])
            #expect(build.status != 0, "the user's copy was taken for Derive's output: \(text(build.stdout))")
            #expect(build.stderr.contains("out/\(new).jpg exists and was not written by Derive"), "\(build.stderr)")
            #expect(project.read("out/" + new + ".jpg") == output)
            // Moved away, the build goes through: the old output is deleted, the new one written.
            project.remove("out/" + new + ".jpg")
            let again = try project.run(["build"])
            #expect(again.status == 0 && text(again.stdout).contains("built 1, deleted 1,"), "\(text(again.stdout)) \(again.stderr)")
            #expect(!project.exists("out/" + old + ".jpg") && project.read("out/" + new + ".jpg") == output)
            #expect(try project.run(["check"]).status == 0)
        }
    }

    /// A key that starts with a combining mark (`src/\u{301}mark.jpg`): `/` and the mark are one
    /// `Character`, so splitting `bucket/key` on characters found no `/` at all. Split on bytes,
    /// the output round-trips through the state, the lock, the index, adoption, check and clean.
    @Test func aKeyStartingWithACombiningMarkRoundTrips() throws {
        let mark = "\u{301}mark"
        let project = try Project(sources: [(mark + ".jpg", "landscape.jpg"), ("plain.jpg", "cmyk.jpg")])
        defer { project.cleanUp() }
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains("built 2,"), "\(text(build.stdout)) \(build.stderr)")
        let output = try #require(project.read("out/" + mark + ".jpg"))
        let lock = try #require(project.read("derive.lock"))
        #expect(occurrences("\"path\":\"out/\(mark).jpg\"", in: lock) == 1, "\(text(lock))")
        let index = try #require(project.read("out/index.json"))
        #expect(occurrences("\"src/\(mark).jpg\": {", in: index) == 1, "\(text(index))")
        #expect(occurrences("\"key\": \"\(mark).jpg\"", in: index) == 1 && occurrences("\"bucket\": \"out\"", in: index) == 2, "\(text(index))")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        let again = try project.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(text(again.stdout)) \(again.stderr)")
        // A fresh clone adopts it.
        try FileManager.default.removeItem(at: project.root.appendingPathComponent(".derive"))
        let adopted = try project.run(["build"])
        #expect(adopted.status == 0 && text(adopted.stdout).contains("built 0, adopted 2 from derive.lock"), "\(text(adopted.stdout)) \(adopted.stderr)")
        #expect(project.read("derive.lock") == lock && project.read("out/index.json") == index && project.read("out/" + mark + ".jpg") == output)
        #expect(try project.run(["check"]).status == 0)
        // Proven Derive's (adopted unverified, an orphan would be kept as the user's: issue 13's finding 1).
        let verified = try project.run(["build", "--verify"])
        #expect(verified.status == 0, "\(text(verified.stdout)) \(verified.stderr)")
        // Its source gone: its output goes, the other stays.
        project.remove("src/" + mark + ".jpg")
        let deleted = try project.run(["build"])
        #expect(deleted.status == 0 && text(deleted.stdout).contains("deleted 1,"), "\(text(deleted.stdout)) \(deleted.stderr)")
        #expect(!project.exists("out/" + mark + ".jpg") && project.exists("out/plain.jpg"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0 && text(clean.stdout).contains("Removed 1 output"), "\(text(clean.stdout)) \(clean.stderr)")
        #expect(project.names(in: "out").isEmpty)
    }

    /// Two corrupt sources, one name in two spellings: each fails its own derivatives, each is
    /// named on its own line (grouped by bytes, not merged into one source with two failures).
    @Test func twoFailingSpellingsAreReportedApart() throws {
        let project = try Project(sources: [("plain.jpg", "landscape.jpg")])
        defer { project.cleanUp() }
        let truncated = try Data(contentsOf: CLI.samples.appendingPathComponent("landscape.jpg")).prefix(300)
        try project.write("src/" + Self.nfc + ".jpg", truncated)
        try project.write("src/" + Self.nfd + ".jpg", truncated + Data([0xFF]))
        let build = try project.run(["build"])
        #expect(build.status == 1 && text(build.stdout).contains("built 1,"), "\(text(build.stdout)) \(build.stderr)")
        let stderr = Data(build.stderr.utf8)
        #expect(occurrences("src/\(Self.nfc).jpg: ", in: stderr) == 1, "\(build.stderr)")
        #expect(occurrences("src/\(Self.nfd).jpg: ", in: stderr) == 1, "\(build.stderr)")
        #expect(!build.stderr.contains("2 derivatives"), "\(build.stderr)")
    }

    /// `derive diff` reviews both spellings: two outputs rebuilt, each named once (the review's
    /// maps keyed by output merged them into one).
    @Test func aReviewListsBothSpellings() throws {
        guard DiffRepository.gitFound else { return }
        let project = try Project(sources: [(Self.nfc + ".jpg", "landscape.jpg"), (Self.nfd + ".jpg", "orientation-1.jpg")])
        defer { project.cleanUp() }
        let repository = DiffRepository(existing: project.root)
        try repository.git("init", "-q", ".")
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "one")
        try project.write("derive.yaml", Data(Self.manifest.replacingOccurrences(of: "w_32", with: "w_40").utf8))
        let diff = try project.run(["diff"])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(text(diff.stdout).contains("2 rebuilt"), "\(text(diff.stdout))")
        #expect(occurrences("~ out/\(Self.nfc).jpg ", in: diff.stdout) == 1, "\(text(diff.stdout))")
        #expect(occurrences("~ out/\(Self.nfd).jpg ", in: diff.stdout) == 1, "\(text(diff.stdout))")
    }

    /// A lock line vouches for its own name only: in a fresh clone whose source and output were
    /// renamed to the other spelling (the NFD file holds the bytes the NFC line records), the NFD
    /// file is not Derive's output and is not adopted as one.
    @Test func aLockLineForOneSpellingDoesNotVouchForTheOther() throws {
        let project = try Project(sources: [(Self.nfc + ".jpg", "landscape.jpg")])
        defer { project.cleanUp() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let output = try #require(project.read("out/" + Self.nfc + ".jpg"))
        try FileManager.default.removeItem(at: project.root.appendingPathComponent(".derive"))
        project.remove("src/" + Self.nfc + ".jpg")
        try project.write("src/" + Self.nfd + ".jpg", try Data(contentsOf: CLI.samples.appendingPathComponent("landscape.jpg")))
        project.remove("out/" + Self.nfc + ".jpg")
        try project.write("out/" + Self.nfd + ".jpg", output)
        let check = try project.run(["check"])
        #expect(check.status != 0, "check took the NFD file for the NFC line's output: \(text(check.stdout))")
        let build = try project.run(["build"])
        #expect(build.status != 0, "the NFD file was adopted through the NFC line: \(text(build.stdout))")
        #expect(build.stderr.contains("exists and was not written by Derive"), "\(build.stderr)")
        #expect(project.read("out/" + Self.nfd + ".jpg") == output)
    }
}
