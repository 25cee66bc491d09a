import Foundation
import Testing
import TestSupport
@testable import Manifest

/// `budget:` of a rule: read, checked, and described by the JSON Schema from the same table.
@Suite(.ownThreads) struct BudgetManifestTests {
    static func manifest(_ budget: String) -> String {
        """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        derivatives:
          - name: thumbs
            from: photos/*.jpg
            process: image/resize,w_100
            to: site/{name}.{ext}
            budget: \(budget)
        """
    }

    @Test func aBudgetIsRead() throws {
        let result = try Workspace().load(yaml: Self.manifest("{max_bytes: 20_000, max_total_bytes: 1000000, min_ssim: 0.95}"))
        #expect(result.lines.isEmpty, "\(result.lines)")
        let budget = try #require(result.manifest?.rules.first?.budget)
        #expect(budget == RuleBudget(maxBytes: 20_000, maxTotalBytes: 1_000_000, minSSIM: 0.95))
        #expect(budget.description == "max_bytes 20000, max_total_bytes 1000000, min_ssim 0.95")
    }

    @Test func badBudgetsAreClearErrors() throws {
        let cases: [(String, String)] = [
            ("{min_ssim: 1.5}", "budget.min_ssim must be a number from 0 to 1"),
            ("{min_ssim: high}", "budget.min_ssim must be a number from 0 to 1"),
            ("{max_bytes: 0}", "budget.max_bytes must be at least 1"),
            ("{max_total_bytes: -3}", "budget.max_total_bytes must be at least 1"),
            ("{max_byte: 10}", "max_byte"),
            ("{}", "is empty"),
            ("20000", "'budget' of rule 'thumbs'"),
        ]
        for (budget, message) in cases {
            let result = try Workspace().load(yaml: Self.manifest(budget))
            #expect(result.manifest == nil || result.diagnostics.hasErrors, "\(budget)")
            #expect(result.lines.contains { $0.contains(message) }, "\(budget): \(result.lines)")
        }
    }

    @Test func theSchemaDescribesTheBudget() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: ManifestSchema.json()) as? [String: Any])
        let rule = (((schema["properties"] as? [String: Any])?["derivatives"] as? [String: Any])?["items"] as? [String: Any])?["properties"] as? [String: Any]
        let budget = try #require(rule?["budget"] as? [String: Any])
        let properties = try #require(budget["properties"] as? [String: Any])
        #expect(Set(properties.keys) == ["max_bytes", "max_total_bytes", "min_ssim"])
        #expect(budget["additionalProperties"] as? Bool == false)
        let ssim = try #require(properties["min_ssim"] as? [String: Any])
        #expect(ssim["type"] as? String == "number")
        #expect((ssim["minimum"] as? NSNumber)?.doubleValue == 0 && (ssim["maximum"] as? NSNumber)?.doubleValue == 1)
    }
}

/// `catalog: {samples: [...]}`: read at the top level only, each sample a declared bucket.
@Suite(.ownThreads) struct CatalogManifestTests {
    static let base = """
    version: 1
    buckets:
      photos: {path: photos}
      site: {path: site}

    """

    @Test func samplesAreRead() throws {
        let result = try Workspace().load(yaml: Self.base + "catalog:\n  samples: [photos/a.jpg, photos/press/b.jpg]\n")
        #expect(result.lines.isEmpty, "\(result.lines)")
        #expect(result.manifest?.catalogSamples == ["photos/a.jpg", "photos/press/b.jpg"])
        #expect(try Workspace().load(yaml: Self.base).manifest?.catalogSamples == [])
    }

    @Test func badCatalogsAreClearErrors() throws {
        let cases: [(String, String)] = [
            ("catalog:\n  samples: [nowhere/a.jpg]\n", "unknown bucket 'nowhere' in 'catalog.samples'"),
            ("catalog:\n  samples: photos/a.jpg\n", "'catalog.samples' must be a list of bucket/key"),
            ("catalog:\n  sample: [photos/a.jpg]\n", "sample"),
            ("catalog:\n  samples: [photos/a.jpg, photos/a.jpg]\n", "is listed twice"),
        ]
        for (yaml, message) in cases {
            let result = try Workspace().load(yaml: Self.base + yaml)
            #expect(result.diagnostics.hasErrors, "\(yaml)")
            #expect(result.lines.contains { $0.contains(message) }, "\(yaml): \(result.lines)")
        }
        let many = "catalog:\n  samples: [" + (0...ManifestSchema.maxCatalogSamples).map { "photos/\($0).jpg" }.joined(separator: ", ") + "]\n"
        #expect(try Workspace().load(yaml: Self.base + many).lines.contains { $0.contains("at most \(ManifestSchema.maxCatalogSamples)") })
    }

    @Test func theSchemaDescribesTheCatalog() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: ManifestSchema.json()) as? [String: Any])
        let catalog = try #require((schema["properties"] as? [String: Any])?["catalog"] as? [String: Any])
        #expect(Set((catalog["properties"] as? [String: Any])?.keys.map { $0 } ?? []) == ["samples"])
    }
}
