import Foundation
import Testing
import TestSupport
import Builder
import Confinement
import Planner

/// Attack 13b's finding 5: an output whose key is longer than OSS's 1 023 bytes was built, indexed
/// and checked as up to date, and `derive serve` then refused every request for it (InvalidObjectName).
/// Such an output fails at plan time like one with a control character: the source is named, with
/// the key's length and the fix; the rest of the build goes on.
@Suite(.ownThreads, .serialized) struct KeyLengthMisc27Tests {
    /// Four folders of 250 bytes: the source's key (1 009 bytes) is fine, its outputs' (1 030) are not.
    static let deep = Array(repeating: String(repeating: "d", count: 250), count: 4).joined(separator: "/")

    static let manifest = """
    version: 1
    buckets:
      photos:
        path: photos
      site:
        path: site
    derivatives:
      - name: long
        from: photos/**/*.jpg
        process: image/resize,w_{w}
        matrix: {w: [40, 80]}
        to: site/{dir}/{name}-{w}-thumbnail-version.{ext}
    index: site/index.json

    """

    @Test func anOutputKeyOverTheLimitFailsAtPlanTimeNamingTheSourceAndTheLength() throws {
        let project = try Project(Self.manifest, files: ["photos/\(Self.deep)/a.jpg": "A", "photos/short.jpg": "S"])
        let source = "photos/\(Self.deep)/a.jpg"
        let report = try #require(try project.build().report)
        #expect(Set(report.built) == ["site/short-40-thumbnail-version.jpg", "site/short-80-thumbnail-version.jpg"], "\(report.built)")
        let failure = try #require(report.failed.first { $0.output == source }, "\(report.failed)")
        #expect(failure.message.contains("1030 bytes") && failure.message.contains("\(ObjectKey.maxBytes)"), "\(failure.message)")
        #expect(failure.message.contains("derive serve refuses") && failure.message.contains("'to:'"), "\(failure.message)")
        #expect(!project.exists("site/\(Self.deep)"))
        #expect(!(project.read("site/index.json") ?? "").contains("a-40-thumbnail-version"))
        #expect(try project.check().problems.contains { $0.contains(source) && $0.contains("1030 bytes") })
    }

    /// `{hash:N}` counts with its N characters, not the placeholder's.
    @Test func aHashedKeyIsMeasuredWithItsHash() throws {
        let prefix = String(repeating: "p", count: 196)
        let yaml = Self.manifest.replacingOccurrences(of: "to: site/{dir}/{name}-{w}-thumbnail-version.{ext}",
                                                      with: "to: site/{dir}/\(prefix)/{name}-{w}.{hash:64}.{ext}")
        // 3 × 250 + 2 + 1 + 196 + 1 + "a-40." + 64 + ".jpg" = 1 023 exactly; w_80's key is 1 023 too.
        let dir = Array(repeating: String(repeating: "d", count: 250), count: 3).joined(separator: "/")
        let fits = try Project(yaml, files: ["photos/\(dir)/a.jpg": "A"])
        let built = try #require(try fits.build().report)
        #expect(built.failed.isEmpty && built.built.count == 2, "\(built.failed)")
        // One byte more in the source's name: over the limit by one.
        let over = try Project(yaml, files: ["photos/\(dir)/ab.jpg": "A"])
        let refused = try #require(try over.build().report)
        #expect(refused.built.isEmpty)
        #expect(refused.failed.contains { $0.output == "photos/\(dir)/ab.jpg" && $0.message.contains("1024 bytes") }, "\(refused.failed)")
    }
}
