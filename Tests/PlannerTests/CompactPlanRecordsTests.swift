import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// Issue 15 (memory): a plan of 100 000 sources (200 000 outputs) must fit in 300 MB, so what a
/// plan holds per output is kept small. These pin the sizes and that the compact forms say
/// exactly what the strings they replace said (`PlanOutputPinnedTests` pins whole plans).
/// What an instance of a Swift class asks the allocator for: the `InstanceSize` field of its class
/// metadata (offset 24 without Objective-C interop). `malloc_usable_size(3)` said this before, but
/// glibc hands out a chunk up to 16 bytes bigger when the rest of a free chunk is too small to
/// split, so it depended on what the process had allocated before (CI saw 136 for a 112-byte
/// object). `instanceSizesAreReadFromTheMetadata` checks the reading on classes of known size.
private func instanceSize(_ type: AnyClass) -> Int {
    Int(unsafeBitCast(type, to: UnsafeRawPointer.self).load(fromByteOffset: 24, as: UInt32.self))
}

private final class OneWord { var a = 0 }
private final class ThreeWords { var a = 0, b = 0, c: String? = nil }

@Suite(.ownThreads) struct CompactPlanRecordsTests {
    /// Texts a digest field may hold: SHA-256 hex and everything that only looks like it.
    static let texts: [String] = {
        let hex = ContentDigests.digest(Data("lake".utf8))
        let cut = String(hex.dropLast()), shortTwo = String(hex.dropLast(2))
        var texts: [String] = [hex, String(repeating: "0", count: 64), String(repeating: "f", count: 64), hex.uppercased()]
        texts += [cut, hex + "0", cut + "g", cut + "F", cut + "\u{E9}", "", "s", "k-" + hex, hex + " "]
        texts += [" " + String(hex.dropFirst()), shortTwo + "\u{E9}", "derive-render/1 libvips/8.14.1"]   // 64 bytes of UTF-8, 63 characters
        var random = SeededGenerator(seed: 15)
        for _ in 0..<200 { texts.append(ContentDigests.digest(Data(String(random.next()).utf8))) }
        return texts
    }()

    /// Every text comes back as it was, and two digests are equal exactly when their texts are.
    @Test func aHexDigestSaysExactlyItsTextAndComparesAsItsText() {
        for text in Self.texts {
            #expect(HexDigest(text).text == text)
            #expect(HexDigest(text).description == text)
        }
        for a in Self.texts.prefix(24) {
            for b in Self.texts.prefix(24) {
                #expect((HexDigest(a) == HexDigest(b)) == (a == b), "\(a) vs \(b)")
                if a == b { #expect(HexDigest(a).hashValue == HexDigest(b).hashValue) }
            }
        }
    }

    /// Hashing straight into a digest gives what hashing to hex text gave.
    @Test func aDigestMadeWithoutItsTextIsTheSameDigest() {
        var random = SeededGenerator(seed: 2_026)
        for length in [0, 1, 55, 56, 63, 64, 65, 1_000] {
            let bytes = Data((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            #expect(HexDigest.sha256(bytes).text == ContentDigests.digest(bytes))
            #expect(HexDigest.sha256(bytes) == HexDigest(ContentDigests.digest(bytes)))
        }
        #expect(HexDigest.sha256("derive-action-key/1\n").text == ContentDigests.digest("derive-action-key/1\n"))
    }

    /// The metadata reading gives the header (16 bytes) plus the stored properties.
    @Test func instanceSizesAreReadFromTheMetadata() {
        #expect(instanceSize(OneWord.self) == 24)
        #expect(instanceSize(ThreeWords.self) == 48)
    }

    /// What one output costs a plan from scratch: its derivative (action key inline, no
    /// dependencies or `{hash}` name held) and its item (no record, lock entry or replaced digest).
    /// They took 160 + 96 (the action key's text) and 80 bytes before.
    @Test func aPlannedOutputHoldsLittle() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/trip/b.jpg": "B"])
        let plan = try project.plan()
        #expect(plan.items.count == 2)
        #expect(MemoryLayout<HexDigest>.size <= 33)
        for item in plan.items {
            let derivative = try #require(item.derivative)
            #expect(instanceSize(type(of: derivative)) <= 112, "\(item.output)")
            #expect(instanceSize(type(of: item)) <= 64, "\(item.output)")
            // The compact fields still say what they said.
            #expect(derivative.actionKey == derivative.components.actionKey)
            #expect(derivative.actionKey.utf8.count == 64)
            #expect(derivative.hashed == nil && derivative.components.dependencies.isEmpty)
            #expect(item.replaces == nil && item.recorded == nil && item.adopted == nil)
        }
    }

    /// `wantedFiles`, made when asked, names the planned outputs' files; set, it is what was set.
    @Test func wantedFilesAreThePlannedOutputsFiles() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/trip/b.jpg": "B"])
        var plan = try project.plan()
        #expect(plan.wantedFiles.sorted() == [project.path("site/a.thumb.jpg"), project.path("site/trip/b.thumb.jpg")])
        plan.wantedFiles = ["/x"]
        #expect(plan.wantedFiles.sorted() == ["/x"])
    }
}
