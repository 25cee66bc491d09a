import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 48c's F3: `to:` may not have a part named `.derive` (where Derive keeps build states,
/// and serve answers nothing), yet a bucket declared at `out/.derive` or `.derive/x` validated and
/// built its outputs into such a folder (`.derive/x` is also the state folder of any `x.yaml`).
/// A bucket's path is refused alike; names that only contain `.derive` are kept.
@Suite(.ownThreads) struct DotDeriveBucketPathTests {
    static func load(_ path: String) throws -> ManifestLoader.Result {
        try Workspace().load(yaml: """
        version: 1
        buckets:
          photos:
            path: photos
          out:
            path: \(path)
        """)
    }

    @Test(arguments: ["out/.derive", ".derive/x", "a/.derive/b", "./x/.derive/"])
    func aBucketInAFolderNamedDotDeriveIsRefused(_ path: String) throws {
        let result = try Self.load(path)
        #expect(result.has(6, 11, "has a part named '.derive'"), "\(path): \(result.lines)")
    }

    @Test(arguments: ["out/.derived", "x.derive/out", "out/.DERIVE2", ".deriveout"])
    func namesThatOnlyContainItAreKept(_ path: String) throws {
        let result = try Self.load(path)
        #expect(!result.lines.contains { $0.contains("'.derive'") }, "\(path): \(result.lines)")
    }
}
