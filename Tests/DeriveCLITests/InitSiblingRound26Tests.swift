import Foundation
import Testing
import TestSupport

/// Issue #13: `derive init` beside a `derive.yml` or `derive.json` that does not parse yet (a
/// typo, `{}`, an empty file) wrote `derive.yaml`; once the user's file parsed, the validator
/// refused both (two manifests of one stem share derive.lock and .derive/derive). init judges a
/// sibling by its name, whatever its content, and refuses naming it.
@Suite(.ownThreads) struct InitSiblingRound26Tests {
    static let unfinished: [(name: String, content: String)] = [
        ("derive.yml", "version: 1\nbuckets:\n  photos: {path: photos\n"),   // a typo: YAML does not parse
        ("derive.json", "{}"),
        ("derive.yml", ""),
        ("derive.YAML", "versoin: 1\nbuckets: {photos: {path: photos}}\n"),
    ]

    @Test(arguments: 0..<unfinished.count)
    func initBesideAnUnfinishedManifestRefusesNamingIt(_ index: Int) throws {
        let (name, content) = Self.unfinished[index]
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        try Data(content.utf8).write(to: folder.appendingPathComponent(name))
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout))")
        #expect(result.stderr.contains(name) && result.stderr.contains("derive.lock"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("_site").path))
        #expect(try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) == content)
    }

    /// What the old init let happen: the user finishes the file, and both manifests are refused.
    /// A finished `derive.yml` and a `derive.yaml` are refused together by the validator, which is
    /// why init may not write one beside the other.
    @Test func theValidatorRefusesBothOnceTheSiblingParses() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        let manifest = "version: 1\nbuckets:\n  photos: {path: photos}\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yml"))
        #expect(try CLI.run(["validate", "derive.yml"], in: folder).status == 1)
        #expect(try CLI.run(["validate", "derive.yaml"], in: folder).status == 1)
    }

    /// The program itself (or a wrapper script) named `derive` beside the images is no manifest
    /// and never becomes one: init goes on, as the validator does.
    @Test func theProgramNamedDeriveIsNoObstacle() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        try Data("#!/bin/sh\nexec /opt/derive/bin/derive \"$@\"\n".utf8).write(to: folder.appendingPathComponent("derive"))
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try CLI.run(["validate"], in: folder).status == 0)
    }
}
