import Foundation
import ImagingCore
import ProcessLanguage
import RenderWorkers
import Testing
import TestSupport

/// Attack 12's G2 remainder, at the pool: marks whose files are too large to travel with the
/// source are refused from their sizes, before any of them is read and before a worker starts.
@Suite(.ownThreads) struct RenderInputsSizedTests {
    final class CountingObjects: ObjectResolver, @unchecked Sendable {
        let sizes: [String: Int]
        private let lock = NSLock()
        private var reads = 0
        init(sizes: [String: Int]) { self.sizes = sizes }
        var readCount: Int { lock.withLock { reads } }
        func object(_ key: String) throws -> Data {
            lock.withLock { reads += 1 }
            return Data(count: sizes[key] ?? 0)
        }
        func objectSize(_ key: String) -> Int? { sizes[key] }
    }

    @Test func marksTooLargeToTravelWithTheSourceAreNeverRead() throws {
        let pool = try RenderWorkerPool(size: 1)
        defer { pool.shutdown() }
        let marks = CountingObjects(sizes: ["w500.png": 524_288_000, "w400.png": 419_430_400])
        let pipeline = try Pipeline.parse("image/watermark,image_\(Base64URL.encode("w500.png"))/watermark,image_\(Base64URL.encode("w400.png"))")
        let error = try #require(throws: ProcessError.self) {
            _ = try pool.render(Data(count: 200_000_000), pipeline, limits: Limits(maxBytes: 1_000_000_000), resolver: marks)
        }
        #expect(error.ec == "0040-00000012", "\(error)")
        #expect(error.message.contains("the source (200000000 bytes) and its watermark images 'w500.png' (524288000 bytes), 'w400.png' (419430400 bytes) are 1143718400 bytes together"),
                "\(error)")
        #expect(marks.readCount == 0)
        #expect(pool.workerIDs.isEmpty)
    }
}
