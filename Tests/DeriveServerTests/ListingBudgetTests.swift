import Confinement
import Foundation
import NIOConcurrencyHelpers
import Testing
import TestSupport
@testable import DeriveServer

/// Issue 12 leftover: a listing read each folder on its way in full. A page now reads at most
/// its entry budget: past it the page ends truncated at the last item found (a correct marker),
/// or answers an OSS error when it found nothing. Asserted on entries read, never on seconds.
@Suite(.ownThreads) struct ListingBudgetTests {
    static func tree(small: Int, big: Int) throws -> URL {
        let root = (try ScratchFolder.make("derive-budget"))
        for folder in ["a", "b"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for index in 0..<small { _ = FileManager.default.createFile(atPath: root.appendingPathComponent("a/\(index).txt").path, contents: Data()) }
        for index in 0..<big { _ = FileManager.default.createFile(atPath: root.appendingPathComponent(String(format: "b/%06d.txt", index)).path, contents: Data()) }
        return root
    }

    static func listing(_ root: URL, marker: String = "", delimiter: String = "", maxKeys: Int = 100, budget: Int) throws -> BucketListing {
        var listing = BucketListing(folder: try ConfinedFolder(path: root.path), prefix: [], delimiter: Array(delimiter.utf8),
                                    marker: Array(marker.utf8), maxKeys: maxKeys) { _ in true }
        listing.budget = budget
        return listing
    }

    @Test func aBigFolderStopsThePageAtTheBudgetWithACorrectMarker() throws {
        let root = try Self.tree(small: 10, big: 20_000)
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try Self.listing(root, budget: 1_000).list()
        #expect(first.entriesRead <= 1_000)
        #expect(first.truncated && !first.budgetExhausted)
        #expect(first.items.map { String(decoding: $0.bytes, as: UTF8.self) } == (0..<10).map { "a/\($0).txt" }.sorted())
        // The next page starts after the last item: it finishes a/ and resumes after its end
        // (a position no key holds, so only a sealed token carries it); from there b/ alone is
        // over the budget: no progress.
        let marker = String(decoding: try #require(first.items.last).bytes, as: UTF8.self)
        let second = try Self.listing(root, marker: marker, budget: 1_000).list()
        #expect(second.entriesRead <= 1_000 && second.truncated && second.items.isEmpty && second.resume == Array("a/".utf8) + [0xFF])
        var third = try Self.listing(root, budget: 1_000)
        third = BucketListing(folder: third.folder, prefix: [], delimiter: [], marker: try #require(second.resume), maxKeys: 100) { _ in true }
        third.budget = 1_000
        let stuck = third.list()
        #expect(stuck.entriesRead <= 1_000 && stuck.budgetExhausted && stuck.items.isEmpty)
        // With the default budget the same folder lists in order, reading it once.
        let whole = try Self.listing(root, marker: marker, budget: BucketListing.defaultBudget).list()
        #expect(whole.items.count == 100 && String(decoding: whole.items[0].bytes, as: UTF8.self) == "b/000000.txt")
        #expect(whole.entriesRead <= 2 + 10 + 20_000)   // the root, a/ (the marker is inside it), b/
        // A delimiter listing of the root reads only until each folder proves non-empty.
        let rolled = try Self.listing(root, delimiter: "/", budget: 1_000).list()
        #expect(rolled.items.map { String(decoding: $0.bytes, as: UTF8.self) } == ["a/", "b/"] && rolled.entriesRead <= 1_000)
    }

    @Test func aDeepTreeStopsAtTheBudget() throws {
        let root = (try ScratchFolder.make("derive-deep"))
        defer { try? FileManager.default.removeItem(at: root) }
        var path = root
        for level in 0..<200 { path = path.appendingPathComponent("d\(level % 10)") }
        try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path.appendingPathComponent("leaf.txt").path, contents: Data())
        let page = try Self.listing(root, budget: 50).list()
        #expect(page.entriesRead <= 50 && page.budgetExhausted)
        #expect(try Self.listing(root, budget: 1_000).list().items.count == 1)
    }

    @Test func theServiceAnswersAnOSSErrorWhenNoProgressIsPossible() throws {
        var settings = ServerSettings()
        settings.listEntryBudget = 3
        let f = try ServiceFixture(settings: settings)
        let answer = f.send("GET", "photos", query: [("prefix", "cats/")])
        #expect(answer.status == 400 && answer.code == "InvalidArgument" && answer.text.contains("entries"), "\(answer.text)")
    }

    /// Attack 7, finding 4: four anonymous listings held every I/O thread and a plain GET waited
    /// 47 s. At most `listConcurrency` listings walk at once; one more is 503 SlowDown at once,
    /// and a GET is answered while the admitted ones are still inside their walk (ordering
    /// from the service's own counter, not from seconds).
    @Test func listingsBeyondTheirConcurrencyAreRefusedAndGetsStillAnswer() throws {
        var settings = ServerSettings()
        settings.listConcurrency = 2
        nonisolated(unsafe) let f = try ServiceFixture(settings: settings)
        let release = DispatchSemaphore(value: 0)
        f.service.hooks.listingAdmitted.withLockedValue { $0 = { release.wait() } }
        let answers = NIOLockedValueBox<[Int]>([])
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                let status = f.send("GET", "photos", query: [("max-keys", "1")]).status
                answers.withLockedValue { $0.append(status) }
            }
        }
        while f.service.listingsInFlight < 2 { usleep(1_000) }
        let third = f.send("GET", "photos", query: [("max-keys", "1")])
        #expect(third.status == 503 && third.code == "SlowDown", "\(third.text)")
        let get = f.send("GET", "photos", "press/p.jpg")
        #expect(get.status == 200)
        #expect(f.service.listingsInFlight == 2 && answers.withLockedValue { $0.isEmpty })
        release.signal(); release.signal()
        group.wait()
        f.service.hooks.listingAdmitted.withLockedValue { $0 = nil }
        #expect(answers.withLockedValue { $0 } == [200, 200])
        #expect(f.service.listingsInFlight == 0)
        #expect(f.send("GET", "photos", query: [("max-keys", "1")]).status == 200)
    }
}
