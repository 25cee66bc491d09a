import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 48a's F6: `to: out/./{name}.webp` validated, and every build then failed each output
/// ("its outputs' keys would have a '.' or '..' part"). Validate refuses a literal `.` part of
/// the output path where the build would, and leaves dots inside names alone.
@Suite(.ownThreads) struct DotPartInOutputPathTests {
    @Test(arguments: ["site/./{name}.jpg", "site/{name}/./x.jpg", "site/{dir}/./{name}.jpg"])
    func aDotPartIsRefused(_ to: String) throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/a.jpg
            process: image/resize,w_10
            to: \(to)
        """)
        #expect(result.lines.contains { $0.contains(": error: ") && $0.contains("has a part named '.'") }, "\(to): \(result.lines)")
    }

    @Test(arguments: ["site/{name}.{ext}", "site/.well-known/{name}.jpg", "site/{name}..jpg", "site/a.b/{name}.jpg", "site/{name}/.x.jpg"])
    func dotsInsideNamesAreKept(_ to: String) throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/a.jpg
            process: image/resize,w_10
            to: \(to)
        """)
        #expect(!result.lines.contains { $0.contains("has a part named '.'") }, "\(to): \(result.lines)")
    }
}
