import Foundation
import Testing
import TestSupport

/// Every suite runs on `TestThreadPool` (`.ownThreads`): one suite left on Swift's cooperative
/// pool, waiting, holds one of its only two threads on CI's 2 cores and stalls every other
/// test. A new suite written without the trait fails here, naming its file and line.
@Suite(.ownThreads) struct EverySuiteOwnThreadsTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

    @Test func everySuiteDeclaresOwnThreads() throws {
        var missing: [String] = []
        let files = FileManager.default.enumerator(atPath: Self.tests.path)
        let declaration = try Regex(#"^(?:(?:final|public|internal|private|fileprivate)\s+)*(?:struct|class|enum|actor)\s+\w+"#)
        while let name = files?.nextObject() as? String {
            guard name.hasSuffix(".swift"), !name.hasPrefix("TestSupport/") else { continue }
            let lines = try String(contentsOf: Self.tests.appendingPathComponent(name), encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (index, line) in lines.enumerated() {
                // A `@Suite` attribute without the trait.
                if line.trimmingCharacters(in: .whitespaces).hasPrefix("@Suite"), !line.contains(".ownThreads") {
                    missing.append("\(name):\(index + 1): \(line)")
                }
                // A top-level type holding `@Test`s with no `@Suite` above it (an implicit suite):
                // its attributes and doc comment are the lines above it, up to a blank line.
                guard line.prefixMatch(of: declaration) != nil, !line.hasSuffix("}") else { continue }
                let above = lines[..<index].reversed().prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("}") }
                if above.contains(where: { $0.contains("@Suite") }) { continue }
                let body = lines[(index + 1)...].prefix { !$0.hasPrefix("}") }
                if body.contains(where: { $0.contains("@Test") }) {
                    missing.append("\(name):\(index + 1): \(line) (holds @Test but has no @Suite(.ownThreads))")
                }
            }
        }
        #expect(missing.isEmpty, "suites without .ownThreads:\n\(missing.joined(separator: "\n"))")
    }
}
