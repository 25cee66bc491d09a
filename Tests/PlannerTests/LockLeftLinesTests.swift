import Confinement
import Foundation
import Testing
import TestSupport
import Manifest
import Planner

/// The lock's `left` lines (round 19's V1, V2): files a build left in place, with the ACL they
/// were left under. The format, its determinism, and what an older Derive makes of it.
@Suite(.ownThreads) struct LockLeftLinesTests {
    static let entry = LockFile.Entry(path: "site/g/a.webp", actionKey: "k", digest: "d", width: 1, height: 2, bytes: 3, format: "webp")
    static let left = [LockFile.Left(path: "site/st/b.small.webp", acl: "private", why: LockFile.Left.lockOnly),
                       LockFile.Left(path: "site/index.json", acl: "private", why: LockFile.Left.oldIndex),
                       LockFile.Left(path: "site/g/\u{1}\"é.webp", acl: "public-read", why: LockFile.Left.notDerives)]

    /// A lock with `left` lines is `derive.lock/3`; its lines follow the outputs, sorted by path
    /// whatever order they were given in, and parse back (escapes included).
    @Test func leftLinesAreSortedAfterTheOutputsAndParseBack() throws {
        let text = LockFile(entries: [Self.entry], manifest: "derive.yaml", left: Self.left).text
        let again = LockFile(entries: [Self.entry], manifest: "derive.yaml", left: Self.left.reversed()).text
        #expect(text == again, "the same bytes whatever the order")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines[0].hasPrefix(#"{"format":"derive.lock/3","manifest":"derive.yaml""#), "\(lines[0])")
        #expect(lines[1].hasPrefix(#"{"path":"site/g/a.webp""#))
        #expect(lines[2] == #"{"left":"site/g/\u0001\"é.webp","acl":"public-read","why":"not the file Derive wrote there"}"#, "\(lines[2])")
        #expect(lines[3] == #"{"left":"site/index.json","acl":"private","why":"old index"}"#)
        #expect(lines[4] == #"{"left":"site/st/b.small.webp","acl":"private","why":"known only from the lock"}"#)
        let parsed = try #require(LockFile.parse(text))
        #expect(parsed.entries.count == 1 && parsed.entries[Self.entry.path] == Self.entry)
        #expect(parsed.left.count == 3)
        for line in Self.left { #expect(parsed.left[line.path] == line) }
        #expect(parsed.text == text)
    }

    /// A lock without them is written as before, byte for byte: `derive.lock/2`.
    @Test func aLockWithoutLeftLinesIsTheSecondFormatAsBefore() throws {
        let text = LockFile(entries: [Self.entry], manifest: "derive.yaml").text
        #expect(text.hasPrefix(#"{"format":"derive.lock/2","manifest":"derive.yaml","note":"#))
        #expect(LockFile(entries: [Self.entry]).text.hasPrefix(LockFile.header + "\n"))
        #expect(try #require(LockFile.parse(text)).left.isEmpty)
    }

    /// Fail safe both ways: a `left` line under a `/2` header (what an older Derive's parser would
    /// meet if it took `/3` for `/2`) makes the lock invalid, so nothing is adopted or deleted on
    /// its word; an older Derive refuses `/3` by its format name (it accepts only `derive.lock/2`).
    /// A `left` line with an ACL that is not one is invalid too, never read as public.
    @Test func leftLinesAreNeverReadAsOutputsNorUnderTheOldFormat() throws {
        let text = LockFile(entries: [Self.entry], left: Self.left).text
        #expect(LockFile.parse(text.replacingOccurrences(of: "derive.lock/3", with: "derive.lock/2")) == nil)
        #expect(LockFile.isDeriveLock(Data(text.utf8)), "still Derive's lock: a build may rewrite it")
        #expect(!text.hasPrefix(#"{"format":"derive.lock/2""#))
        #expect(LockFile.parse(text.replacingOccurrences(of: #""acl":"private""#, with: #""acl":"secret""#)) == nil)
        // A left line never counts as an output line (its decoder needs every output field).
        #expect(try #require(LockFile.parse(text)).entries.keys.count == 1)
    }

    /// `dropping` (check's comparison) takes `left` lines out too, and a lock left with none is
    /// compared as the `/2` lock a build writes then.
    @Test func droppingTheLastLeftLineIsTheSecondFormat() throws {
        let with = LockFile(entries: [Self.entry], manifest: "derive.yaml", left: [Self.left[0]]).text
        let without = LockFile(entries: [Self.entry], manifest: "derive.yaml").text
        #expect(LockFile.dropping(PathSet([Self.left[0].path]), from: Data(with.utf8)) == Data(without.utf8))
        let two = LockFile(entries: [Self.entry], manifest: "derive.yaml", left: Array(Self.left.prefix(2))).text
        #expect(LockFile.dropping(PathSet([Self.left[1].path]), from: Data(two.utf8)) == Data(with.utf8))
    }

    /// Round 21's N5 and N4: a line names its file's place when it is not its key's text (`file`)
    /// and says when the file was gone (`"gone":true`); both come last, only when they apply, and
    /// parse back. A line whose place is its key writes neither: round 19's bytes.
    @Test func placesAndGoneLinesAreWrittenOnlyWhenTheyApplyAndParseBack() throws {
        let moved = LockFile.Left(path: "www/internal/a-100.webp", acl: "private", why: LockFile.Left.notDerives,
                                  file: "site/internal/a-100.webp", gone: true)
        let plain = LockFile.Left(path: "site/st/b.webp", acl: "private", why: LockFile.Left.lockOnly, file: "site/st/b.webp")
        #expect(plain.file == nil && plain.place == "site/st/b.webp" && !plain.isGone)
        let text = LockFile(entries: [Self.entry], left: [moved, plain]).text
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"{"left":"site/st/b.webp","acl":"private","why":"known only from the lock"}"#), "\(text)")
        #expect(lines.contains(#"{"left":"www/internal/a-100.webp","acl":"private","why":"not the file Derive wrote there","file":"site/internal/a-100.webp","gone":true}"#), "\(text)")
        let parsed = try #require(LockFile.parse(text))
        let back = try #require(parsed.left["www/internal/a-100.webp"])
        #expect(back.place == "site/internal/a-100.webp" && back.isGone && back.aclValue == .private)
        #expect(parsed.text == text)
    }

    /// Round 22's V5: a gone line carries since when (`"goneSince"`, written only on gone lines,
    /// last); it parses back; a lock from before it reads as 0, and a date on a line that is not
    /// gone is not read.
    @Test func aGoneLineCarriesItsDateAndOlderLinesReadAsBefore() throws {
        let gone = LockFile.Left(path: "site/internal/a-100.webp", acl: "private", why: LockFile.Left.lockOnly, gone: true, goneSince: 1_796_310_103)
        let present = LockFile.Left(path: "site/st/b.webp", acl: "private", why: LockFile.Left.lockOnly, goneSince: 1_796_310_103)
        let text = LockFile(entries: [Self.entry], left: [gone, present]).text
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"{"left":"site/internal/a-100.webp","acl":"private","why":"known only from the lock","gone":true,"goneSince":1796310103}"#), "\(text)")
        #expect(lines.contains(#"{"left":"site/st/b.webp","acl":"private","why":"known only from the lock"}"#), "\(text)")
        let parsed = try #require(LockFile.parse(text))
        #expect(parsed.left["site/internal/a-100.webp"]?.goneSince == 1_796_310_103 && parsed.left["site/st/b.webp"]?.goneSince == 0)
        #expect(parsed.text == text)
        let older = text.replacingOccurrences(of: #","goneSince":1796310103"#, with: "")
        #expect(try #require(LockFile.parse(older)).left["site/internal/a-100.webp"]?.goneSince == 0)
        let notGone = text.replacingOccurrences(of: #""gone":true,"#, with: "")
        #expect(try #require(LockFile.parse(notGone)).left["site/internal/a-100.webp"].map { !$0.isGone && $0.goneSince == 0 } == true)
    }
}
