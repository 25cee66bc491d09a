import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 39b's L3: a matrix variable named "1w" (declared, then used as {1w}) was reported as
/// an unknown variable to declare under 'matrix', and one named 1 as not "letters, digits and
/// '_'" though 1 is a digit. The real rule, at the matrix key: it starts with a letter or '_'.
@Suite(.ownThreads) struct MatrixNameRound39Tests {
    func load(_ name: String) throws -> ManifestLoader.Result {
        try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/press/*.jpg
            process: image/resize,w_{\(name)}
            matrix: {"\(name)": [100]}
            to: site/{name}-{\(name)}.{ext}
        """)
    }

    @Test(arguments: ["1w", "1"])
    func aNameStartingWithADigitIsRefusedAtItsKeyWithTheRealRule(_ name: String) throws {
        let result = try load(name)
        let key = result.diagnostics.all.filter { $0.message.contains("matrix variable '\(name)'") }
        #expect(key.count == 1, "\(result.lines)")
        #expect(key.first?.line == 15, "\(result.lines)")
        #expect(key.first?.message.contains("must start with a letter or '_'") == true, "\(result.lines)")
        #expect(!result.lines.contains { $0.contains("unknown variable") }, "\(result.lines)")
        #expect(!result.lines.contains { $0.contains("must be letters, digits and '_'") }, "\(result.lines)")
    }

    @Test func aNameWithOtherCharactersIsStillRefused() throws {
        let result = try load("w-1")
        #expect(result.lines.contains { $0.contains("matrix variable 'w-1'") && $0.contains("ASCII letters, digits and '_'") }, "\(result.lines)")
        #expect(!result.lines.contains { $0.contains("unknown variable") }, "\(result.lines)")
    }

    @Test func aGoodNameStillPasses() throws {
        let result = try load("_1w")
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
    }

    /// Attack 39b's L2: `HASH` or `Name` would read as the built-in in `to:`; refused at its key
    /// with the reason, and its use is not reported again as unknown.
    @Test(arguments: ["HASH", "Name", "sTyLe"])
    func aBuiltInInAnotherCaseIsRefusedAtItsKey(_ name: String) throws {
        let result = try load(name)
        let key = result.diagnostics.all.filter { $0.message.contains("matrix variable '\(name)'") }
        #expect(key.count == 1 && key.first?.line == 15, "\(result.lines)")
        #expect(key.first?.message.contains("differs from the built-in {\(name.lowercased())} only in case; choose another name, e.g. \(name.lowercased())2") == true, "\(result.lines)")
        #expect(!result.lines.contains { $0.contains("unknown variable") }, "\(result.lines)")
    }
}
