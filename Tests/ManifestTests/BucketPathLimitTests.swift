import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 18's P1: serve looks at what the buckets' paths pass through before each request, so
/// their links and folders are bounded (`BucketPathBudget`): past the limit the manifest does not
/// load, with the count and how to fix it.
@Suite(.ownThreads) struct BucketPathLimitTests {
    /// `count` buckets, each behind a chain of `links` relative links in `d/`.
    func chains(count: Int, links: Int) throws -> Workspace {
        let workspace = try Workspace()
        var yaml = "version: 1\nbuckets:\n"
        for bucket in 1...count {
            try FileManager.default.createDirectory(atPath: workspace.path("d/f\(bucket)"), withIntermediateDirectories: true)
            var previous = "f\(bucket)"
            for link in 1...links {
                try FileManager.default.createSymbolicLink(atPath: workspace.path("d/l\(bucket)_\(link)"), withDestinationPath: previous)
                previous = "l\(bucket)_\(link)"
            }
            yaml += "  bkt\(bucket): {path: d/\(previous)}\n"
        }
        try workspace.write("derive.yaml", yaml)
        return workspace
    }

    @Test func bucketPathsPastTheLimitOfLinksAndFoldersAreRefused() throws {
        let over = try chains(count: 110, links: 38)
        defer { try? FileManager.default.removeItem(at: over.folder) }
        let refused = over.load()
        let message = refused.lines.first { $0.contains("more than 4096") } ?? ""
        #expect(message.contains("4180 symbolic links") && message.contains("more than 4096"), "\(refused.lines.prefix(3))")
        #expect(refused.lines.contains { $0.contains("shorten the chains of links") }, "\(refused.lines.prefix(3))")
        let under = try chains(count: 100, links: 38)
        defer { try? FileManager.default.removeItem(at: under.folder) }
        #expect(!under.load().lines.contains { $0.contains("more than 4096") })
    }
}
