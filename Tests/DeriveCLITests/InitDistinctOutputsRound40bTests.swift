import Crypto
import Foundation
import Testing
import TestSupport

/// Attack 40b's L3 (issue #13 names byte-identical duplicates as a defect): init's starter manifest
/// wrote every image's widest WebP twice, the style `large` (`resize,w_1600`, WebP) and the
/// `<picture>` rule's widest WebP (`landscape.large.<h>.webp` and `landscape-1200.<h>.webp`).
@Suite(.ownThreads) struct InitDistinctOutputsRound40bTests {
    @Test func initThenBuildOfTheSamplesWritesNoTwoOutputsAlike() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg", "logo-alpha.png", "spinner.gif"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: images.appendingPathComponent(name))
        }
        let made = try CLI.run(["init"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let site = folder.appendingPathComponent("_site")
        let names = try FileManager.default.contentsOfDirectory(atPath: site.path).filter { $0 != "index.html" && $0 != "derive-index.json" }
        #expect(names.count >= 4 * 4, "\(names.sorted())")
        var byDigest: [String: [String]] = [:]
        for name in names {
            let digest = SHA256.hash(data: try Data(contentsOf: site.appendingPathComponent(name))).map { String(format: "%02x", $0) }.joined()
            byDigest[digest, default: []].append(name)
        }
        let alike = byDigest.values.filter { $0.count > 1 }.map { $0.sorted() }
        #expect(alike.isEmpty, "outputs with the same bytes: \(alike)")
    }
}
