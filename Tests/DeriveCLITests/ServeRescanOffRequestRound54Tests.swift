import Foundation
import Manifest
import Testing
import TestSupport
@testable import derive

/// Issue #15, attack 53b's 4: serve looks for the projects around its buckets again every second,
/// and every request arriving while it looked waited for the look (with two 2 000-file buckets,
/// about 1.2 s of each second). A request arriving while another request looks answers from the
/// last look; the request that found the look due still makes it and answers from it.
@Suite("Serve: requests arriving during a look for neighbours answer from the last one (round 54)", .ownThreads)
struct ServeRescanOffRequestRound54Tests {
    /// Holds a look where it starts, until released.
    final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var armed = false
        let started = DispatchSemaphore(value: 0)
        let released = DispatchSemaphore(value: 0)

        func arm() { lock.withLock { armed = true } }

        func pass() {
            guard lock.withLock({ defer { armed = false }; return armed }) else { return }
            started.signal()
            released.wait()
        }
    }

    @Test func aRequestArrivingDuringALookDoesNotWaitForIt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  pub: {path: pub, acl: public-read}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let manifest = try #require(ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path).manifest)
        let gate = Gate()
        // `refresh: 0`: every question finds the last look due.
        let files = ForeignServedFiles(manifest: manifest, refresh: 0, lookStarts: { gate.pass() })
        #expect(!files.boundReached(), "the first look, not held")

        gate.arm()
        let lookDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { _ = files.boundReached(); lookDone.signal() }
        #expect(gate.started.wait(timeout: .now() + 120) == .success, "the held look started")

        // Another request while the look is held: answered from the last look. (The old code
        // made it wait on the look; the generous bound only keeps a failure from hanging.)
        let otherDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { _ = files.boundReached(); otherDone.signal() }
        let answered = otherDone.wait(timeout: .now() + 30) == .success
        gate.released.signal()
        #expect(answered, "a request arriving during a look waited for it")
        #expect(lookDone.wait(timeout: .now() + 120) == .success, "the held look finished once released")
        if !answered { _ = otherDone.wait(timeout: .now() + 120) }
    }
}
