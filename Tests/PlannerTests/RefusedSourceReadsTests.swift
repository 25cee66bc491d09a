import Foundation
import Testing
import TestSupport
import Manifest
import Planner

/// Attack 20's M4: a file a rule's glob matches but the build refuses (not an image, or over the
/// byte limit) was read and hashed whole by every plan, build and check, and again after every
/// touch (a 4 GB file: 26–43 s a plan). The plan refuses it from its size or its first bytes.
@Suite(.ownThreads) struct RefusedSourceReadsTests {
    static let manifest = photosAndSite + "\nlimits:\n  bytes: 1000000\n"
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples")

    @Test func refusedSourcesAreNeverReadWhole() throws {
        let fixture = try Fixture(Self.manifest, sources: [:])
        fixture.identity = EngineIdentity(renderVersion: "1", libvips: "8.14.1", encoder: "q85", refusesNonImages: true)
        fixture.disk.put(fixture.path("photos/a.jpg"), try Data(contentsOf: Self.samples.appendingPathComponent("landscape.jpg")))
        fixture.disk.put(fixture.path("photos/notes.jpg"), Data(String(repeating: "not an image ", count: 50).utf8))
        fixture.disk.put(fixture.path("photos/big.jpg"), Data([0xFF, 0xD8, 0xFF] + [UInt8](repeating: 7, count: 1_000_000)))
        fixture.disk.advance(seconds: 5)
        for round in 0..<2 {
            fixture.disk.resetReads()
            let plan = try fixture.plan()
            let failures = Dictionary(plan.failures.map { ($0.subject, $0.message) }, uniquingKeysWith: { a, _ in a })
            #expect(failures["photos/big.jpg"]?.contains("the source is 1000003 bytes; the limit is 1000000 bytes") == true, "round \(round): \(failures)")
            #expect(failures["photos/notes.jpg"]?.contains("the source is not an image in a supported format") == true, "round \(round): \(failures)")
            #expect(failures["photos/a.jpg"] == nil)
            // The image under the limit is hashed; the refused files are never read whole.
            let reads = fixture.disk.reads.map { ($0 as NSString).lastPathComponent }
            #expect(!reads.contains("big.jpg") && !reads.contains("notes.jpg"), "round \(round): \(reads)")
            #expect(round > 0 || reads.contains("a.jpg"), "\(reads)")
            // Touched: still refused from size and first bytes alone.
            fixture.disk.touch(fixture.path("photos/big.jpg"))
            fixture.disk.touch(fixture.path("photos/notes.jpg"))
            fixture.disk.advance(seconds: 5)
        }
    }
}
