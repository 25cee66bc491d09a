import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack round 23's static L2/L3: a matrix value `..` was refused with a message about '/' and
/// ',' it does not hold, and values with control characters (a tab, an escape, DEL) passed
/// validate and named files no object key can name (serve refuses control characters in keys).
@Suite(.ownThreads) struct MatrixValueTests {
    func load(_ values: String) throws -> ManifestLoader.Result {
        try Workspace().load(yaml: baseBuckets + """

        derivatives:
          - from: photos/press/*.jpg
            process: image/resize,w_10
            matrix: {v: \(values)}
            to: site/{v}/{name}.{ext}
        """)
    }

    @Test func dotValuesAreRefusedSayingWhy() throws {
        for value in ["..", "."] {
            let result = try load("[\"\(value)\"]")
            #expect(result.has(15, 18, "matrix value '\(value)' would name a '.' or '..' folder"), "\(value): \(result.lines)")
            #expect(!result.lines.contains { $0.contains("contain '/' or ','") }, "\(value): \(result.lines)")
        }
    }

    @Test func controlCharactersAreRefused() throws {
        // The message holds the value as written: the printer escapes it (`--json` keeps it, JSON-escaped).
        for (escaped, shown) in [("a\\tb", "a\tb"), ("\\e[31m", "\u{1B}[31m"), ("x\\x7Fy", "x\u{7F}y"), ("p\\u009Bq", "p\u{9B}q")] {
            let result = try load("[\"\(escaped)\"]")
            #expect(result.has(15, 18, "matrix value '\(shown)' contains a control character"), "\(escaped): \(result.lines)")
        }
    }

    @Test func ordinaryValuesStillPass() throws {
        let result = try load("[\"...\", \"a b\", \"é\"]")
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
    }
}
