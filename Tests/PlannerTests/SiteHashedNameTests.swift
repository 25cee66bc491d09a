import Foundation
import Testing
import TestSupport
import Builder
import Manifest
import Planner

let hashedManifest = """
version: 1
buckets:
  photos:
    path: photos
  site:
    path: site
derivatives:
  - name: hero
    from: photos/*.jpg
    process: image/resize,w_{w}/format,webp
    matrix:
      w: [100, 200]
    to: site/{name}-{w}.{hash:8}.webp
index: site/derive-index.json

"""

extension Project {
    /// Files in `folder` (relative names), sorted.
    func files(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(folder))) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// The file in `site/` whose name starts with `prefix` (one `{hash}` output).
    func hashed(_ prefix: String) -> String? { files(in: "site").first { $0.hasPrefix(prefix) } }
}

/// `{hash}` in `to:`: names from the output's digest, known from the state without rendering,
/// old names removed under the ownership rule.
@Suite(.ownThreads, .serialized) struct SiteHashedNameTests {
    @Test func theNameIsTheFirstHexOfTheDigestTheIndexMapsTheLogicalNameAndANoOpStaysANoOp() throws {
        let project = try Project(hashedManifest, files: ["photos/lake.jpg": "lake"])
        let plan = try project.plan()
        #expect(plan.items.map(\.output) == ["site/lake-100.{hash:8}.webp", "site/lake-200.{hash:8}.webp"])
        #expect(plan.items.allSatisfy { $0.kind == .create })
        // Outputs as wide as their `resize` (the fake renderer's are all 10 px), so srcset lists both.
        let outcome = try project.buildSized()
        #expect(outcome.report?.failed.isEmpty == true, "\(outcome.report?.failed ?? [])")
        let names = project.files(in: "site").filter { $0.hasSuffix(".webp") }
        #expect(names.count == 2, "\(names)")
        for name in names {
            let digest = ContentDigests.digest(try #require(FileManager.default.contents(atPath: project.path("site/" + name))))
            let parts = name.split(separator: ".")
            #expect(parts.count == 3 && parts[1] == digest.prefix(8), "\(name) \(digest)")
        }
        #expect(outcome.report?.built.sorted() == names.map { "site/" + $0 })
        // The index: each derivative under its hashed name, with the logical one; srcset uses the hashed URLs.
        let index = try project.index("site/derive-index.json")
        let derivatives = try #require(entry(index, "photos/lake.jpg")?["derivatives"] as? [[String: Any]])
        let small = try #require(project.hashed("lake-100."))
        #expect(derivatives.contains { $0["key"] as? String == small && $0["logical"] as? String == "lake-100.{hash:8}.webp" })
        let formats = try #require(picture(index, "photos/lake.jpg", "hero")?["formats"] as? [[String: Any]])
        #expect((formats.first?["srcset"] as? String)?.hasPrefix("/\(small) 100w, /lake-200.") == true, "\(formats)")
        // Planned from the state alone: up to date under the hashed names, nothing rendered.
        let renders = project.renderer.count
        let again = try project.plan()
        #expect(again.items.allSatisfy { $0.kind == .upToDate } && !again.hasChanges, "\(again.summary)")
        #expect(Set(again.items.map(\.output)) == Set(names.map { "site/" + $0 }))
        #expect(try project.build().report?.built.isEmpty != false)
        #expect(project.renderer.count == renders)
        #expect(try project.check().problems == [])
    }

    @Test func aStyleChangeWritesANewNameAndTheOldFileGoesOnlyIfItIsStillDerives() throws {
        let project = try Project(hashedManifest, files: ["photos/lake.jpg": "lake", "photos/pond.jpg": "pond"])
        try project.build()
        let oldLake = try #require(project.hashed("lake-100.")), oldPond = try #require(project.hashed("pond-100."))
        // Someone edits one old output: it is not Derive's any more and must survive.
        try project.write("site/" + oldPond, "edited by hand")
        try project.write("derive.yaml", hashedManifest.replacingOccurrences(of: "format,webp", with: "quality,q_70/format,webp"))
        let plan = try project.plan()
        let delete = try #require(plan.items.first { $0.output == "site/" + oldLake })
        #expect(delete.kind == .delete && delete.reasons.first?.contains("replaced by a new site/lake-100.{hash:8}.webp") == true, "\(delete.reasons)")
        let outcome = try project.build()
        let report = try #require(outcome.report)
        #expect(report.failed.isEmpty, "\(report.failed)")
        let newLake = try #require(project.files(in: "site").first { $0.hasPrefix("lake-100.") && $0 != oldLake })
        #expect(!project.exists("site/" + oldLake), "the old hashed file is an orphan, deleted")
        #expect(project.read("site/" + newLake)?.contains("q_70") == true)
        #expect(project.read("site/" + oldPond) == "edited by hand", "a changed old file is kept")
        #expect(report.left.contains { $0.path.hasSuffix(oldPond) })
        #expect(report.deleted.contains("site/" + oldLake) && !report.deleted.contains("site/" + oldPond))
        let lock = try #require(project.read("derive.lock"))
        #expect(lock.contains(newLake) && !lock.contains(oldLake))
        // The edited old file is no output any more: the lock keeps it only as a file left in
        // place, with the ACL it was left under (round 19's V1), never as an output line.
        let parsed = try #require(LockFile.parse(lock))
        #expect(parsed.entries["site/" + oldPond] == nil && parsed.left["site/" + oldPond] != nil, "\(lock)")
        #expect(try project.check().problems == [])
    }

    @Test func theSameBytesUnderANewActionKeyKeepTheirNameAndFile() throws {
        let project = try Project(hashedManifest, files: ["photos/lake.jpg": "lake"])
        try project.build()
        let before = project.files(in: "site")
        // A new engine identity (a render version bump) whose bytes come out the same.
        project.identity = EngineIdentity(renderVersion: "2", libvips: "8.14.1", encoder: "q85", refusesNonImages: false)
        let plan = try project.plan()
        #expect(plan.count(.create) == 2 && plan.count(.delete) == 2, "\(plan.summary)")
        let report = try #require(try project.build().report)
        #expect(report.failed.isEmpty && report.left.isEmpty, "\(report.failed) \(report.left)")
        #expect(report.deleted.isEmpty && report.built.count == 2)
        #expect(project.files(in: "site") == before, "the file written under its name is no orphan")
        let again = try project.plan()
        #expect(!again.hasChanges, "\(again.summary)")
        #expect(try project.check().problems == [])
    }

    @Test func aFreshCloneKnowsTheHashedNamesFromTheLock() throws {
        let project = try Project(hashedManifest, files: ["photos/lake.jpg": "lake"])
        try project.build()
        let renders = project.renderer.count
        try project.remove(".derive")
        let plan = try project.plan()
        #expect(plan.items.allSatisfy { $0.kind == .upToDate && $0.adopted != nil }, "\(plan.items.map { "\($0.kind) \($0.output)" })")
        let report = try #require(try project.build().report)
        #expect(report.built.isEmpty && report.adopted.count == 2)
        // (The fake renderer's colour and picture are none, so the index kept neither `color` nor
        // `dominant`: only those two are rendered again.)
        #expect(project.renderer.count <= renders + 2)
        #expect(!(try project.plan().hasChanges))
    }

    @Test func aFileDeriveDidNotWriteAtTheHashedNameIsNeverReplaced() throws {
        let project = try Project(hashedManifest, files: ["photos/lake.jpg": "lake"])
        try project.build()
        let name = try #require(project.hashed("lake-100."))
        // No state, no lock: nothing says Derive wrote the file that now holds the name.
        try project.remove(".derive")
        try project.remove("derive.lock")
        try project.remove("site/derive-index.json")
        try project.write("site/" + name, "someone else's file")
        let report = try #require(try project.build().report)
        #expect(report.failed.contains { $0.output == "site/lake-100.{hash:8}.webp" && $0.message.contains("was not written by Derive") },
                "\(report.failed)")
        #expect(project.read("site/" + name) == "someone else's file")
    }

    @Test func hashTemplatesAreValidated() throws {
        func errors(_ to: String, matrix: String = "") -> [String] {
            let yaml = """
            version: 1
            buckets: {photos: {path: photos}, site: {path: site}}
            derivatives:
              - from: photos/*.jpg
                process: image/resize,w_100
                to: "\(to)"\(matrix)
            """
            let folder = (try? ScratchFolder.make("derive-hash")) ?? FileManager.default.temporaryDirectory.appendingPathComponent("derive-hash-\(UUID().uuidString)")
            try? FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("derive.yaml").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(yaml.utf8))
            return ManifestLoader().load(path).diagnostics.errors.map(\.message)
        }
        #expect(errors("site/{name}.{hash}.{ext}") == [])
        #expect(errors("site/{name}.{hash:16}.{ext}") == [])
        #expect(errors("site/{name}.{hash:3}.{ext}").contains { $0.contains("hash length must be from 4 to 64") })
        #expect(errors("site/{name}.{hash:x}.{ext}").contains { $0.contains("hash length") })
        #expect(errors("site/{hash}/{name}.{hash}.{ext}").contains { $0.contains("only once") })
        #expect(errors("site/{name}.{ext}", matrix: "\n    matrix: {hash: [a]}").contains { $0.contains("shadows the built-in {hash}") })
        let template = try PathTemplate("img/{name}.{hash}.{ext}")
        #expect(template.hashLength == 10 && template.hashPlaceholder == "{hash}")
        #expect(try PathTemplate("img/{name}.{hash:12}.{ext}").hashPlaceholder == "{hash:12}")
    }
}
