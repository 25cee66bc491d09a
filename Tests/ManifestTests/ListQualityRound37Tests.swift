import Foundation
import Testing
import TestSupport
import ProcessLanguage
@testable import Manifest

/// Attack 36a's M9: `- quality: 80` in a list style compiled to `quality,q_80`, OSS's quality
/// relative to a JPEG source's (a q60 JPEG came out at q48), while README says a one-value
/// action is `name,value`. A web developer writing `- quality: 80` means 80: it is the absolute
/// `quality,Q_80`; the mapping `{q: 80}` still writes OSS's relative `q_`.
@Suite(.ownThreads) struct ListQualityRound37Tests {
    @Test func aBareQualityIsAbsoluteAndTheMappingStaysAsWritten() throws {
        let result = try Workspace().load(yaml: baseBuckets + """

        styles:
          bare:
            - quality: 80
            - format: jpg
          relative:
            - quality: {q: 80}
          absolute:
            - quality: {Q: 80}
          string: image/quality,Q_80/format,jpg
        """ + "\n")
        #expect(result.lines.isEmpty, "\(result.lines)")
        let catalogue = try #require(result.manifest).catalogue
        let bare = try #require(catalogue["bare"]), string = try #require(catalogue["string"])
        #expect(bare.process == "image/quality,Q_80/format,jpg")
        #expect(bare.pipeline == string.pipeline)
        #expect(catalogue["relative"]?.process == "image/quality,q_80")
        #expect(catalogue["absolute"]?.process == "image/quality,Q_80")
    }
}
