import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 12 (review, H2): a matrix of 100,000 values took minutes to validate (each value was
/// compared with every earlier one), so a hostile revision hung `derive diff`, validate and plan.
@Suite(.ownThreads) struct ReviewMatrixLimitTests {
    static func manifest(_ matrix: String) -> String {
        """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        derivatives:
          - name: m
            from: photos/*.jpg
            process: image/resize,w_{w}
            matrix:
        \(matrix)
            to: site/{name}-{w}-{h}.jpg

        """
    }

    /// Refused from the list's length, before its values are read: one error, at the list.
    @Test func aHugeMatrixListIsRefusedWithoutReadingIt() throws {
        let values = (1...100_000).map(String.init).joined(separator: ",")
        let started = ContinuousClock.now
        let result = try Workspace().load(yaml: Self.manifest("      w: [\(values)]\n      h: [1]"))
        // A guard against the hang, not a timing goal: before the fix this took over 120 s.
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(result.manifest?.rules.isEmpty ?? true)
        // The refusal, then the variables the refused list would have declared ({w}, {h}).
        let errors = result.lines.filter { $0.contains("error") }
        let refusal = errors.filter { $0.contains("matrix variable 'w' has 100000 values") }
        #expect(refusal.count == 1, "\(result.lines)")
        #expect(refusal.first?.contains("over 1000 combinations") == true)
        #expect(errors.count <= 4, "\(errors)")
    }

    /// Each list short enough, their product too large: the product is refused, as before.
    @Test func aMatrixWhoseProductIsTooLargeIsRefused() throws {
        let forty = "[" + (1...40).map(String.init).joined(separator: ",") + "]"
        let result = try Workspace().load(yaml: Self.manifest("      w: \(forty)\n      h: \(forty)"))
        #expect(result.manifest?.rules.isEmpty ?? true)
        #expect(result.lines.contains { $0.contains("matrix variable 'h' has 40 values") }, "\(result.lines)")
        let fine = try Workspace().load(yaml: Self.manifest("      w: [1, 2, 2]\n      h: \(forty)"))
        #expect(fine.manifest?.rules.first?.matrix.map(\.values.count) == [2, 40], "\(fine.lines)")
        #expect(fine.lines.contains { $0.contains("matrix value '2' is listed twice") })
    }
}
