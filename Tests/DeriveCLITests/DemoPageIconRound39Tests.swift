import Foundation
import Testing
import TestSupport

/// Attack 39b's L5: the demo page had no icon link, so a browser asked for /favicon.ico and
/// logged a 404 in its console; init's page has one (`data:`, no request at all).
@Suite(.ownThreads) struct DemoPageIconRound39Tests {
    @Test func theDemoPageNamesAnInlineIcon() throws {
        let page = try String(contentsOf: CLI.samples.appendingPathComponent("site/index.html"), encoding: .utf8)
        let head = try #require(page.range(of: "</head>")).lowerBound
        #expect(page[..<head].contains("<link rel=\"icon\" href=\"data:,\">"))
    }
}
