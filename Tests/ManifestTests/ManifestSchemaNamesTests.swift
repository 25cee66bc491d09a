import Testing
import TestSupport
@testable import Manifest

/// The loader checks keys against written-out name lists (issue 15): each must be its schema
/// table's names, in order, so `derive schema` and the loader never disagree on a key.
@Suite(.ownThreads) struct ManifestSchemaNamesTests {
    @Test func theLoadersNameListsAreTheTablesNames() {
        #expect(ManifestSchema.topLevelNames == ManifestSchema.topLevel.names)
        #expect(ManifestSchema.bucketNames == ManifestSchema.bucket.names)
        #expect(ManifestSchema.ruleNames == ManifestSchema.rule.names)
        #expect(ManifestLoader.topLevelKeys == ManifestSchema.topLevel.names)
    }
}
