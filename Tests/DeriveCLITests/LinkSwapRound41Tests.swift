import Foundation
import Testing
import TestSupport

/// Attack 41a's B11: two output buckets given as symbolic links (`L1` → AAA, `L2` → BBB), the links
/// swapped after a build. The next build wrote each output anew and then warned that a file it had
/// just written "is not the file Derive wrote there … left in place" (the old record's deletion
/// ran after the new write at the same path). The result was right; the warning was false.
@Suite(.ownThreads) struct LinkSwapRound41Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func swappedBucketLinksBuildWithoutAFalseWarning() throws {
        // Two output buckets as BuildSafetyRound40Tests swaps them, given as links L1 → AAA, L2 → BBB.
        let manifest = BuildSafetyRound40Tests.swapped(false, index: false)
            .replacingOccurrences(of: "path: AAA}", with: "path: L1}").replacingOccurrences(of: "path: BBB}", with: "path: L2}")
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: manifest)
        defer { site.remove() }
        let links = FileManager.default
        for folder in ["AAA", "BBB"] { try links.createDirectory(at: site.url(folder), withIntermediateDirectories: true) }
        try links.createSymbolicLink(atPath: site.url("L1").path, withDestinationPath: "AAA")
        try links.createSymbolicLink(atPath: site.url("L2").path, withDestinationPath: "BBB")
        #expect(try site.run(["build", "-q"]).status == 0)
        for (link, to) in [("L1", "BBB"), ("L2", "AAA")] {
            try links.removeItem(atPath: site.url(link).path)
            try links.createSymbolicLink(atPath: site.url(link).path, withDestinationPath: to)
        }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("is not the file Derive wrote there"), "\(said(build))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }
}
