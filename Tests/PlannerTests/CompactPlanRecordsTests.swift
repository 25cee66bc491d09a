import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Builder
import Manifest
import Planner

/// Issue 15 (memory): a plan of 100 000 sources (200 000 outputs) must fit in 300 MB, so what a
/// plan holds per output is kept small. These pin the sizes and that the compact forms say
/// exactly what the strings they replace said (`PlanOutputPinnedTests` pins whole plans).
/// `malloc_usable_size(3)`: what the allocator gave an object.
private let usableSize: @convention(c) (UnsafeMutableRawPointer?) -> Int = {
    unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_usable_size"), to: (@convention(c) (UnsafeMutableRawPointer?) -> Int).self)
}()

@Suite struct CompactPlanRecordsTests {
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
            #expect(usableSize(Unmanaged.passUnretained(derivative).toOpaque()) <= 120, "\(item.output)")
            #expect(usableSize(Unmanaged.passUnretained(item).toOpaque()) <= 72, "\(item.output)")
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
