import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder

/// The lock keyed by the manifest's real path (issue 9, round 8 #2): its file is deleted on
/// release, and that deletion never lets two holders in. Each test uses a private lock folder.
@Suite(.ownThreads, .serialized) struct ManifestPathLockTests {
    func privateFolder() throws -> String {
        let folder = (try ScratchFolder.make("derive-locks-test")).path
        #expect(chmod(folder, 0o700) == 0)
        return folder
    }

    func contents(_ folder: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] }

    /// Threads racing to take and release one manifest's lock (flock is per open file, so threads
    /// of one process conflict like processes): never two holders at once, and the folder ends empty.
    @Test func racingHoldersNeverBothHoldAndNoFileIsLeft() throws {
        let folder = try privateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let counts = HolderCounts()
        // Real threads (not the shared pool, which a busy test run may serialise), each holding
        // for up to a millisecond, so the attempts overlap whatever else the machine runs.
        let done = DispatchGroup()
        for _ in 0..<6 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                for _ in 0..<150 {
                    do {
                        let lock = try ManifestPathLock(manifest: "/nonexistent/project/derive.yaml", folder: folder)
                        counts.update { $0.holding += 1; $0.most = max($0.most, $0.holding); $0.taken += 1 }
                        usleep(UInt32.random(in: 100...1000))
                        counts.update { $0.holding -= 1 }
                        withExtendedLifetime(lock) {}
                    } catch {
                        counts.update { $0.refused += 1 }
                        usleep(UInt32.random(in: 0...300))
                    }
                }
            }
        }
        done.wait()
        let (most, taken, refused) = counts.update { ($0.most, $0.taken, $0.refused) }
        #expect(most == 1, "two holders at once")
        #expect(taken > 0 && refused > 0, "taken \(taken), refused \(refused): the race did not happen")
        #expect(contents(folder).isEmpty, "left: \(contents(folder))")
    }

    /// A second acquirer while the first holds is refused, naming the holder; after release the
    /// next one gets it, and the file is gone once that one is released too.
    @Test func aHeldLockIsRefusedAndItsFileGoesOnRelease() throws {
        let folder = try privateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var first: ManifestPathLock? = try ManifestPathLock(manifest: "/nowhere/a.yaml", folder: folder)
        #expect(contents(folder).count == 1)
        #expect(throws: BuildLock.Held.self) { try ManifestPathLock(manifest: "/nowhere/a.yaml", folder: folder) }
        let other = try ManifestPathLock(manifest: "/nowhere/b.yaml", folder: folder)   // another manifest: its own file
        #expect(contents(folder).count == 2)
        withExtendedLifetime(first) {}
        first = nil
        #expect(contents(folder).count == 1)
        let second = try ManifestPathLock(manifest: "/nowhere/a.yaml", folder: folder)
        withExtendedLifetime(second) {}
        withExtendedLifetime(other) {}
    }

    /// A holder whose file was unlinked (and replaced by a new one another command locks) no
    /// longer deletes what the path names on release: only its own file, only while it is there.
    @Test func releaseNeverDeletesAnotherHoldersFile() throws {
        let folder = try privateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var first: ManifestPathLock? = try ManifestPathLock(manifest: "/nowhere/a.yaml", folder: folder)
        let name = try #require(contents(folder).first)
        #expect(unlink(folder + "/" + name) == 0)   // by hand
        let second = try ManifestPathLock(manifest: "/nowhere/a.yaml", folder: folder)
        withExtendedLifetime(first) {}
        first = nil
        #expect(contents(folder) == [name], "the first holder's release deleted the second's file")
        #expect(throws: BuildLock.Held.self) { try ManifestPathLock(manifest: "/nowhere/a.yaml", folder: folder) }
        withExtendedLifetime(second) {}
    }
}

/// Holders counted across threads.
final class HolderCounts: @unchecked Sendable {
    struct Counts { var holding = 0, most = 0, taken = 0, refused = 0 }
    private let lock = NSLock()
    private var counts = Counts()
    @discardableResult
    func update<T>(_ change: (inout Counts) -> T) -> T { lock.withLock { change(&counts) } }
}
