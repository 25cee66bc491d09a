import Access
import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 18's P1: before each request serve looked at every bucket's folder and at every link on
/// the way to each, `lstat` and `stat` per link, and each `stat` resolved the rest of the chain
/// again: with 400 buckets behind chains of 30 links, ~92 ms of CPU per request. The work per
/// request is now a look at each folder those paths pass through (where a link could be
/// re-pointed); the chains are walked again, each link read once, only when one of those folders
/// changed. What a change moves is still seen at the next request.
@Suite(.ownThreads) struct BucketPathChecksTests {
    /// A project with `count` buckets, each behind a chain of `links` relative links in `d/`.
    struct Chains {
        let root: URL
        let manifestPath: String
        init(count: Int, links: Int) throws {
            root = (try ScratchFolder.make("derive-chains"))
            let fm = FileManager.default
            try fm.createDirectory(at: root.appendingPathComponent("site"), withIntermediateDirectories: true)
            var yaml = "version: 1\nbuckets:\n  site: {path: site, acl: public-read}\n"
            for bucket in 1...count {
                try fm.createDirectory(at: root.appendingPathComponent("d/f\(bucket)"), withIntermediateDirectories: true)
                var previous = "f\(bucket)"
                for link in 1...max(links, 1) where links > 0 {
                    try fm.createSymbolicLink(atPath: root.appendingPathComponent("d/l\(bucket)_\(link)").path, withDestinationPath: previous)
                    previous = "l\(bucket)_\(link)"
                }
                yaml += "  bkt\(bucket): {path: d/\(previous), acl: private}\n"
            }
            manifestPath = root.appendingPathComponent("derive.yaml").path
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: manifestPath))
        }
        func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    final class LoadCount: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func add() { lock.lock(); value += 1; lock.unlock() }
        var count: Int { lock.lock(); defer { lock.unlock() }; return value }
    }

    static func served(_ chains: Chains, loads: LoadCount) throws -> ServedManifest {
        let path = chains.manifestPath
        @Sendable func configuration() throws -> ServedConfiguration {
            let result = ManifestLoader().load(path)
            guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
                throw ServedManifest.Unavailable("\(result.diagnostics.sorted)")
            }
            return ServedConfiguration(manifest: manifest, verifier: Verifier(keys: [:], region: "local"), recorded: NoRecordedOutputs())
        }
        return ServedManifest(initial: try configuration(), rootPath: path, cacheFolder: chains.path(".derive/cache"), digestInterval: 3600) {
            loads.add()
            return try configuration()
        }
    }

    @Test func theWorkPerRequestDoesNotGrowWithBucketsTimesLinks() throws {
        let chains = try Chains(count: 100, links: 10)
        defer { chains.remove() }
        let served = try Self.served(chains, loads: LoadCount())
        // Folders made just now may still change within their timestamps' tick: settled after a second.
        Thread.sleep(forTimeInterval: 1.2)
        _ = served.current()
        let before = served.lookups
        for _ in 0..<20 {
            guard case .success = served.current() else { Issue.record("the manifest does not load"); return }
        }
        let perRequest = Double(served.lookups - before) / 20
        // 100 buckets × 11 paths × (lstat + stat) = 2 200 looks per request before; now the folders
        // the paths pass through (the temporary folder's few ancestors, the project, `d/`) and the manifest.
        #expect(perRequest <= 40, "\(perRequest) file-system looks per request for 100 buckets behind 10 links each")
    }

    @Test func aLinkRepointedInTheMiddleOfASettledChainIsSeenAtTheNextRequest() throws {
        let chains = try Chains(count: 20, links: 10)
        defer { chains.remove() }
        let loads = LoadCount()
        let served = try Self.served(chains, loads: loads)
        let bucket = URL(fileURLWithPath: chains.path("d/l7_10")).standardizedFileURL.path
        Thread.sleep(forTimeInterval: 1.2)
        _ = served.current()
        let old = try #require(served.validatedFolder(bucket))
        #expect(loads.count == 0)
        // `ln -sfn` then `mv -T`, as a deploy re-points a link: l7_5 now leads to another folder.
        try FileManager.default.createDirectory(atPath: chains.path("other"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: chains.path("d/new"), withDestinationPath: "../other")
        #expect(rename(chains.path("d/new"), chains.path("d/l7_5")) == 0)
        guard case .success = served.current() else { Issue.record("the manifest does not load"); return }
        var seen = loads.count
        #expect(seen >= 1)
        var info = stat()
        #expect(stat(chains.path("other"), &info) == 0)
        let now = try #require(served.validatedFolder(bucket))
        #expect(now.inode == UInt64(info.st_ino) && now.inode != old.inode, "serve still takes \(old.inode) for bkt7's folder")
        // Settled again (no load while nothing changes), then the end folder replaced: seen too.
        Thread.sleep(forTimeInterval: 1.2)
        _ = served.current()
        _ = served.current()
        #expect(loads.count == seen)
        #expect(rename(chains.path("other"), chains.path("other.old")) == 0)
        #expect(mkdir(chains.path("other"), 0o755) == 0)
        _ = served.current()
        #expect(loads.count > seen)
        seen = loads.count
        #expect(stat(chains.path("other"), &info) == 0)
        #expect(served.validatedFolder(bucket)?.inode == UInt64(info.st_ino))
        // A change within the folder's timestamp tick (no settling): seen.
        #expect(rename(chains.path("other"), chains.path("other.two")) == 0)
        #expect(mkdir(chains.path("other"), 0o755) == 0)
        _ = served.current()
        #expect(loads.count > seen)
        #expect(stat(chains.path("other"), &info) == 0)
        #expect(served.validatedFolder(bucket)?.inode == UInt64(info.st_ino))
    }
}
