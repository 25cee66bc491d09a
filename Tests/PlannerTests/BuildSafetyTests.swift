import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import GRDB
import Manifest
import Planner
import ProcessLanguage

/// Ownership: Derive writes over nothing or over bytes it recorded for that path, deletes only
/// files still holding the recorded bytes in the folder they were written to, removes only
/// folders it created, and `clean` never recurses.
@Suite(.ownThreads, .serialized) struct OwnershipTests {
    @Test func cleanWithStateAtTheManifestFolderRemovesOnlyItsOwnFiles() throws {
        let project = try Project(siteManifest + "state: .\n", files: ["photos/a.jpg": "A", "notes.txt": "mine"])
        try project.build()
        #expect(project.exists("site/a.thumb.jpg"))
        let report = try project.session().clean()
        #expect(report.removed == 1)
        #expect(project.read("notes.txt") == "mine")
        #expect(project.read("photos/a.jpg") == "A")
        #expect(project.exists("derive.yaml"))
        #expect(!project.exists("site/a.thumb.jpg") && !project.exists("derive.lock") && !project.exists("state.sqlite"))
        #expect(project.exists("site"))   // a bucket folder is never removed
    }

    @Test func aUserFileAtTheLockPathIsNeitherOverwrittenNorDeleted() throws {
        // yarn.yaml → yarn.lock belongs to yarn (hostile tester, fix B.2).
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "derive.lock": "# yarn lockfile v1\n"])
        let outcome = try project.build()
        #expect(outcome.report == nil)
        #expect(outcome.plan.errors.map(\.message).contains { $0.hasPrefix("derive.lock exists and is not a Derive lock") && $0.contains("'lock:'") },
                "\(outcome.plan.errors)")
        #expect(project.read("derive.lock") == "# yarn lockfile v1\n")
        #expect(!project.exists("site/a.thumb.jpg"))
        let report = try project.session().clean()
        #expect(report.left.contains { $0.hasPrefix("derive.lock exists and is not a Derive lock") }, "\(report.left)")
        #expect(project.read("derive.lock") == "# yarn lockfile v1\n")
        // A Derive lock, even truncated by hand, is still Derive's to rewrite.
        try project.write("derive.lock", #"{"format":"derive.lock/2","note":"#)
        try project.build()
        #expect(project.read("derive.lock")?.hasPrefix(#"{"format":"derive.lock/2","#) == true)
        _ = try project.session().clean()
        #expect(!project.exists("derive.lock"))
    }

    @Test func aBuildRemovesOnlyDeadTemporariesOfItsOwnOutputs() throws {
        // A dead-PID name that is not an output's is a user's file (hostile tester B.4).
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A",
                                                        "site/.notes.txt.999999999.7.derive-tmp": "mine"])
        try project.build()
        // Derive's bytes for the output (an old copy an exchange displaced) at a dead writer's name.
        try FileManager.default.copyItem(atPath: project.path("site/a.thumb.jpg"), toPath: project.path("site/.a.thumb.jpg.999999999.7.derive-tmp"))
        try project.write("photos/a.jpg", "A2")
        try project.build()
        #expect(project.read("site/.notes.txt.999999999.7.derive-tmp") == "mine")
        #expect(!project.exists("site/.a.thumb.jpg.999999999.7.derive-tmp"))
        #expect(project.exists("site/a.thumb.jpg"))
    }

    /// Attack 15's F1: a user's file at an output's temporary name of a dead writer (moved there
    /// after the exchange) was deleted unread by the next build. The name proves nothing: only
    /// Derive's bytes for that name are removed.
    @Test func aUsersFileAtADeadWritersTemporaryNameIsKept() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        try project.write("site/.a.thumb.jpg.4194301.77.derive-tmp", "the user's draft")
        try project.build()
        try project.write("photos/a.jpg", "A2")
        try project.build()
        #expect(project.read("site/.a.thumb.jpg.4194301.77.derive-tmp") == "the user's draft")
    }

    @Test func aUsersDatabaseAtTheStatePathIsNeitherMigratedNorDeleted() throws {
        // state: data with the user's customers database in data/state.sqlite (hostile tester B.3).
        let project = try Project(siteManifest + "state: data\n", files: ["photos/a.jpg": "A"])
        try FileManager.default.createDirectory(atPath: project.path("data"), withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: project.path("data/state.sqlite"), configuration: .patientTest)
        try queue.write { db in try db.execute(sql: "CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('ada')") }
        let before = try Data(contentsOf: URL(fileURLWithPath: project.path("data/state.sqlite")))
        #expect(throws: PlanError.self) { try project.build() }
        #expect(throws: PlanError.self) { try project.session().clean() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: project.path("data/state.sqlite"))) == before)
        #expect(!project.exists("site/a.thumb.jpg"))
    }

    @Test func cleanOfANeverBuiltProjectKeepsTheUsersBuildLockAndWitness() throws {
        let project = try Project(siteManifest + "state: .\n", files: ["photos/a.jpg": "A", "build.lock": "my notes\n"])
        #expect(throws: PlanError.self) { try project.session().clean() }
        #expect(project.read("build.lock") == "my notes\n")
        try project.remove("build.lock")
        try project.write("noop-witness", "a witness statement\n")
        #expect(throws: PlanError.self) { try project.session().clean() }
        #expect(project.read("noop-witness") == "a witness statement\n")
        // Derive's own files are still cleaned.
        try project.remove("noop-witness")
        try project.build()
        #expect(project.exists("state.sqlite"))
        _ = try project.session().clean()
        #expect(!project.exists("state.sqlite") && !project.exists("build.lock"))
    }

    @Test func cleanWithStateInsideTheSourcesKeepsTheSources() throws {
        let project = try Project(siteManifest + "state: photos\n", files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        // Validation refuses a state folder inside a bucket; if it ever lets one through, clean
        // still removes only its own files.
        if (try? project.build()) != nil {
            _ = try project.session().clean()
            #expect(!project.exists("photos/state.sqlite"))
        }
        #expect(project.read("photos/a.jpg") == "A" && project.read("photos/b.jpg") == "B")
    }

    static let pngToJpg = """
    version: 1
    buckets:
      photos:
        path: photos
    derivatives:
      - name: flatten
        from: photos/*.png
        process: image/format,jpg
        to: photos/{name}.jpg

    """

    @Test func anOutputOverAUserFileIsAPlanErrorNamingIt() throws {
        let project = try Project(Self.pngToJpg, files: ["photos/logo.png": "P", "photos/logo.jpg": "the user's photo"])
        let outcome = try project.build()
        #expect(outcome.report == nil)
        #expect(outcome.plan.errors.map(\.message) == ["photos/logo.jpg exists and was not written by Derive; move it or pass --overwrite"])
        #expect(project.read("photos/logo.jpg") == "the user's photo")
        // With the rule gone, nothing of the user's is deleted.
        try project.write("derive.yaml", "version: 1\nbuckets:\n  photos:\n    path: photos\nderivatives: []\n")
        try project.build()
        #expect(project.read("photos/logo.jpg") == "the user's photo")
    }

    @Test func overwriteReplacesAUserFileWhenAsked() throws {
        let project = try Project(Self.pngToJpg, files: ["photos/logo.png": "P", "photos/logo.jpg": "the user's photo"])
        let outcome = try project.build(overwrite: true)
        #expect(outcome.report?.built == ["photos/logo.jpg"])
        #expect(project.read("photos/logo.jpg") != "the user's photo")
    }

    @Test func outputsNeverReplaceTheManifestOrTheState() throws {
        let yaml = """
        version: 1
        buckets:
          root:
            path: .
        derivatives:
          - name: clobber
            from: root/src/*.jpg
            process: image/resize,w_10
            to: root/{name}.yaml

        """
        let project = try Project(yaml, files: ["src/derive.jpg": "A"])
        // Validation may refuse the manifest first (a state folder inside a bucket); if it does
        // not, ownership must.
        if let outcome = try? project.build() {
            #expect(outcome.plan.errors.map(\.message) == ["derive.yaml exists and was not written by Derive; move it or pass --overwrite"])
        }
        #expect(project.read("derive.yaml") == yaml)
    }

    @Test func aBucketMoveNeverTouchesTheNewFolderUsersFiles() throws {
        let project = try Project(siteManifest.replacingOccurrences(of: "path: site", with: "path: outA"),
                                  files: ["photos/landscape.jpg": "L", "userB/landscape.thumb.jpg": "the user's", "userB/other.txt": "x"])
        try project.build()
        #expect(project.exists("outA/landscape.thumb.jpg"))
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "path: site", with: "path: userB"))
        let outcome = try project.build()
        #expect(outcome.plan.errors.map(\.message) == ["userB/landscape.thumb.jpg exists and was not written by Derive; move it or pass --overwrite"])
        #expect(project.read("userB/landscape.thumb.jpg") == "the user's" && project.read("userB/other.txt") == "x")
    }

    @Test func aBucketMoveDeletesTheOldFilesInTheRecordedFolderOnly() throws {
        let project = try Project(siteManifest.replacingOccurrences(of: "path: site", with: "path: outA"),
                                  files: ["photos/trip/a.jpg": "A"])
        try project.build()
        #expect(project.exists("outA/trip/a.thumb.jpg"))
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "path: site", with: "path: outB"))
        let outcome = try project.build()
        #expect(outcome.report?.built == ["site/trip/a.thumb.jpg"])
        #expect(project.exists("outB/trip/a.thumb.jpg"))
        #expect(!project.exists("outA/trip"))   // created by Derive, now empty
        #expect(project.exists("outA"))          // the old bucket folder itself stays
        #expect(try project.check().problems == [])
    }

    @Test func aModifiedOrphanIsLeftAndReported() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        try project.write("site/a.thumb.jpg", "edited by the user")
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "from: photos/**/*.jpg", with: "from: photos/**/*.png"))
        let report = try #require(try project.build().report)
        #expect(report.left.map(\.message) == ["site/a.thumb.jpg was changed since Derive wrote it; left in place"])
        #expect(project.read("site/a.thumb.jpg") == "edited by the user")
    }

    @Test func deletionRemovesOnlyFoldersDerivesCreated() throws {
        let project = try Project(siteManifest, files: ["photos/trip/a.jpg": "A", "photos/day/b.jpg": "B", "site/day/readme.txt": "mine"])
        try project.build()
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "from: photos/**/*.jpg", with: "from: photos/**/*.png"))
        let report = try #require(try project.build().report)
        #expect(report.deleted.sorted() == ["site/day/b.thumb.jpg", "site/trip/a.thumb.jpg"])
        #expect(!project.exists("site/trip"))
        #expect(project.read("site/day/readme.txt") == "mine")
        #expect(project.exists("site"))
    }

    /// A kill between the rename and the record leaves a file no record vouches for; the pending
    /// write noted just before the rename (with the digest of those bytes) keeps it Derive's, so
    /// the next build replaces it.
    @Test func aBuildKilledBetweenRenameAndRecordIsResumed() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        let session = try project.session()
        let written = "bytes renamed into place just before the kill"
        try session.store().addPendingWrite(project.path("site/a.thumb.jpg"), digest: ContentDigests.digest(written))
        try project.write("site/a.thumb.jpg", written)
        let report = try #require(try project.build().report)
        #expect(report.built == ["site/a.thumb.jpg"] && report.failed.isEmpty)
        #expect(try project.session().store().pendingWrites().isEmpty)
        // Without the pending write the same file is the user's.
        let other = try Project(siteManifest, files: ["photos/a.jpg": "A", "site/a.thumb.jpg": "the user's"])
        #expect(try other.build().plan.errors.count == 1)
    }

    @Test func removingABucketAndItsRuleDeletesItsOutputs() throws {
        let yaml = siteManifest + """
          - name: extra
            from: photos/*.jpg
            process: image/resize,w_50
            to: more/{name}.jpg

        """
        let project = try Project(yaml.replacingOccurrences(of: "  site:\n    path: site\n", with: "  site:\n    path: site\n  more:\n    path: more\n"),
                                  files: ["photos/a.jpg": "A"])
        try project.build()
        #expect(project.exists("more/a.jpg"))
        try project.write("derive.yaml", siteManifest)
        let report = try #require(try project.build().report)
        #expect(report.deleted == ["more/a.jpg"])
        #expect(!project.exists("more/a.jpg"))
    }
}

/// The lock: any key round-trips; a build always reconciles it; check never trusts a stale one.
@Suite(.ownThreads, .serialized) struct LockTests {
    static let oddNames = ["IMG 0001.jpg", "quote\"d.jpg", "100%.jpg", "naïve.jpg", "cafe\u{301}.jpg"]
    /// Names whose outputs `derive serve` would refuse (attack 14 L2): they fail at plan time.
    static let unservable = ["tab\there.jpg", "new\nline.jpg"]

    @Test func anyKeyRoundTripsThroughTheLockTheIndexAdoptionAndCheck() throws {
        var files: [String: String] = [:]
        for (index, name) in (Self.oddNames + Self.unservable).enumerated() { files["photos/" + name] = "S\(index)" }
        let project = try Project(siteManifest + "index: site/index.json\n", files: files)
        let first = try #require(try project.build().report)
        #expect(first.built.count == Self.oddNames.count, "\(first.failed)")
        #expect(Set(first.failed.map(\.output)) == Set(Self.unservable.map { "photos/" + $0 }), "\(first.failed)")
        #expect(first.failed.allSatisfy { $0.message.contains("derive serve refuses keys with control characters") }, "\(first.failed)")
        let unservable = { (problems: [String]) in problems.count == 2 && problems.allSatisfy { $0.contains("derive serve refuses keys with control characters") } }
        #expect(unservable(try project.check().problems))
        let lockText = try #require(project.read("derive.lock"))
        let lock = try #require(LockFile.parse(lockText))
        #expect(lock.entries.count == Self.oddNames.count)
        #expect(lock.entries["site/quote\"d.thumb.jpg"] != nil)
        #expect(!lock.entries.keys.contains { $0.contains("\t") || $0.contains("\n") })
        let index = try #require(project.read("site/index.json"))
        #expect(index.contains(#""photos/quote\"d.jpg""#))
        // A fresh clone: no state; the lock vouches for every output.
        try project.remove(".derive")
        let adopted = try #require(try project.build().report)
        #expect(adopted.built.isEmpty && adopted.adopted.count == Self.oddNames.count)
        #expect(unservable(try project.check().problems))
        #expect(project.read("site/index.json") == index)
    }

    @Test func aTruncatedLockIsRepairedByTheNextBuild() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        let good = try #require(project.read("derive.lock"))
        try project.write("derive.lock", String(good.prefix(good.count / 2)))
        #expect(try project.check().problems.contains { $0.contains("derive.lock is not a valid lock") })
        try project.build()
        #expect(project.read("derive.lock") == good)
    }

    @Test func checkDoesNotTrustTheWitnessForAnEditedLock() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        project.settle()
        try project.build()   // rehashes what was written in the racy second
        project.settle()
        try project.build()   // a no-op that writes nothing and leaves a witness
        #expect(try project.session().unchanged() == 1)
        let good = try #require(project.read("derive.lock"))
        let attributes = try FileManager.default.attributesOfItem(atPath: project.path("derive.lock"))
        try project.write("derive.lock", good.replacingOccurrences(of: "\"width\":10", with: "\"width\":99"))
        try FileManager.default.setAttributes([.modificationDate: attributes[.modificationDate]!], ofItemAtPath: project.path("derive.lock"))
        project.settle()
        #expect(try project.session().unchanged() == nil)
        #expect(try project.check().problems != [])
        try project.build()
        #expect(project.read("derive.lock") == good)
    }

    @Test func lockTextEscapesAndParsesBack() throws {
        let entry = LockFile.Entry(path: "b/\u{1}\"\\\n\t%é", actionKey: "k", digest: "d", width: 1, height: 2, bytes: 3, format: "json")
        let text = LockFile(entries: [entry]).text
        #expect(text.split(separator: "\n").count == 2)
        #expect(LockFile.parse(text)?.entries[entry.path] == entry)
        #expect(LockFile.parse(String(text.dropLast(5))) == nil)
        #expect(LockFile.parse("site/a.jpg k d 1x1 3\n") == nil)
    }
}

/// No missed staleness: ctime in the stat key, a witness from before the plan.
@Suite(.ownThreads, .serialized) struct StalenessTests {
    @Test func anEditKeepingSizeMtimeAndInodeIsSeenThroughCtime() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "AAAA"])
        try project.build()
        project.settle()
        try project.build()   // the source's digest is now trusted by stat
        let path = project.path("photos/a.jpg")
        let before = try FileManager.default.attributesOfItem(atPath: path)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.write(Data("BBBB".utf8))
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: before[.modificationDate]!], ofItemAtPath: path)
        let after = try FileManager.default.attributesOfItem(atPath: path)
        #expect(after[.systemFileNumber] as? Int == before[.systemFileNumber] as? Int)
        project.settle()
        let plan = try project.plan()
        #expect(plan.items.first?.reasons == ["source changed"])
    }

    @Test func anIncludeEditedWhileBuildingIsNotHiddenByTheWitness() throws {
        let yaml = siteManifest.replacingOccurrences(of: "styles:\n  thumb: image/resize,w_200\n", with: "include: [styles.yaml]\n")
        let project = try Project(yaml, files: ["styles.yaml": "version: 1\nstyles:\n  thumb: image/resize,w_200\n", "photos/a.jpg": "A"])
        project.renderer.duringRender = { try? project.write("styles.yaml", "version: 1\nstyles:\n  thumb: image/resize,w_300\n") }
        let outcome = try project.build()
        #expect(outcome.report?.built == ["site/a.thumb.jpg"])
        project.settle()
        #expect(try project.session().unchanged() == nil)
        #expect(try project.check().problems.contains { $0.contains("resize,w_200 → resize,w_300") })
    }
}

/// One bad input fails only what needs it; symlinks never lead out of a bucket.
@Suite(.ownThreads, .serialized) struct BadInputTests {
    @Test func anUnreadableSourceFailsOnlyItsOwnOutputs() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B", "secret.txt": "outside"])
        try project.build()
        try project.write("photos/a.jpg", "A2")
        // A source that cannot be read: a link out of the bucket (and mode 000 when not root).
        try project.remove("photos/b.jpg")
        try FileManager.default.createSymbolicLink(atPath: project.path("photos/b.jpg"), withDestinationPath: project.path("secret.txt"))
        let report = try #require(try project.build().report)
        #expect(report.built == ["site/a.thumb.jpg"])
        #expect(report.failed.map(\.output) == ["photos/b.jpg"])
        #expect(report.failed.first?.message.contains("symbolic link") == true, "\(report.failed)")
        #expect(report.deleted.isEmpty)
        #expect(project.exists("site/b.thumb.jpg"))   // kept: the source may come back
        if getuid() != 0 {
            try project.remove("photos/b.jpg")
            try project.write("photos/b.jpg", "B")
            chmod(project.path("photos/b.jpg"), 0)
            let second = try #require(try project.build().report)
            #expect(second.failed.map(\.output) == ["photos/b.jpg"])
            #expect(second.failed.first?.message.contains("permission denied") == true, "\(second.failed)")
        }
    }

    @Test func aWatermarkLinkedOutOfTheBucketFailsOnlyItsOutput() throws {
        let mark = "image/resize,w_100/watermark,image_\(Base64URL.encode("logo.png"))"
        let yaml = siteManifest.replacingOccurrences(of: "  thumb: image/resize,w_200\n", with: "  thumb: image/resize,w_200\n  marked: \(mark)\n")
            .replacingOccurrences(of: "styles: [thumb]", with: "styles: [thumb, marked]")
        let project = try Project(yaml, files: ["photos/a.jpg": "A", "secret.png": "outside"])
        try FileManager.default.createSymbolicLink(atPath: project.path("photos/logo.png"), withDestinationPath: project.path("secret.png"))
        let report = try #require(try project.build().report)
        #expect(report.built == ["site/a.thumb.jpg"])
        #expect(report.failed.map(\.output) == ["site/a.marked.jpg"])
        #expect(report.failed.first?.message.contains("symbolic link") == true, "\(report.failed)")
    }

    @Test func anOutputFolderLinkedOutOfTheBucketIsNotWrittenThrough() throws {
        let project = try Project(siteManifest, files: ["photos/trip/a.jpg": "A"])
        try FileManager.default.createDirectory(atPath: project.path("elsewhere"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: project.path("site"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: project.path("site/trip"), withDestinationPath: project.path("elsewhere"))
        let outcome = try project.build()
        let problems = outcome.plan.errors.map(\.message) + (outcome.report?.failed.map(\.message) ?? [])
        #expect(!problems.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: project.path("elsewhere")) == [])
    }
}

/// Recovery, the index, ACL-only changes, temporary files.
@Suite(.ownThreads, .serialized) struct StateAndIndexTests {
    @Test func aCorruptStateIsMovedAsideAndRebuiltFromTheLock() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        try project.write(".derive/derive/state.sqlite", String(repeating: "garbage ", count: 512))
        let session = try project.session()
        let report = try #require(try session.build(options: BuildOptions(jobs: 1, quiet: true)) { project.renderer }.report)
        #expect(session.movedAside?.contains("state.sqlite.corrupt-") == true)
        #expect(report.built.isEmpty && report.adopted.count == 2)
        #expect(try project.check().problems == [])
    }

    @Test func theIndexIsRegeneratedMovedAndKeepsRuleNamesAndFormats() throws {
        let project = try Project(siteManifest + "index: site/index.json\n", files: ["photos/a.jpg": "A"])
        try project.build()
        let first = try #require(project.read("site/index.json"))
        try project.remove("site/index.json")
        try project.build()
        #expect(project.read("site/index.json") == first)
        #expect(try project.check().problems == [])
        // The index moves: the old one goes.
        try project.write("derive.yaml", siteManifest + "index: site/derive-index.json\n")
        try project.build()
        #expect(!project.exists("site/index.json") && project.read("site/derive-index.json") == first)
        // A renamed rule shows in the index, without rendering.
        let renders = project.renderer.count
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "name: gallery", with: "name: pictures") + "index: site/derive-index.json\n")
        let report = try #require(try project.build().report)
        #expect(report.updated == ["site/a.thumb.jpg"] && project.renderer.count == renders)
        #expect(project.read("site/derive-index.json")?.contains(#""rule": "pictures""#) == true)
        // Adoption keeps the recorded format.
        let index = try #require(project.read("site/derive-index.json"))
        try project.remove(".derive")
        try project.build()
        #expect(project.read("site/derive-index.json") == index)
    }

    /// A settled no-op writes nothing to the state, so the witness (which covers the database) holds.
    @Test func theWitnessHoldsAfterANoOpAndNoticesAGarbledState() throws {
        let project = try Project(siteManifest + "index: site/index.json\n", files: ["photos/a.jpg": "A"])
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        try project.build()
        #expect(try project.session().unchanged() == 1)
        try project.write(".derive/derive/state.sqlite", "garbage")
        #expect(try project.session().unchanged() == nil)
    }

    @Test func anIndexPathHoldingAUserFileIsNotReplaced() throws {
        let project = try Project(siteManifest + "index: site/index.json\n", files: ["photos/a.jpg": "A", "site/index.json": "{\"mine\": true}"])
        // A plan with errors builds nothing (round 7 #2): the index is named, nothing is rendered.
        let outcome = try project.build()
        #expect(outcome.report == nil)
        #expect(outcome.plan.blockedControlFiles.contains { $0.file == "site/index.json" && $0.reason.hasPrefix("exists and was not written by Derive") })
        #expect(!project.exists("site/a.thumb.jpg"))
        #expect(project.read("site/index.json") == "{\"mine\": true}")
    }

    @Test func anACLOnlyChangeUpdatesTheRecordAndRendersNothing() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        let renders = project.renderer.count
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "to: site/{dir}/{name}.{style}.{ext}", with: "to: site/{dir}/{name}.{style}.{ext}\n    acl: public-read"))
        let outcome = try project.build()
        #expect(outcome.plan.items.map(\.kind) == [.update])
        #expect(outcome.report?.updated == ["site/a.thumb.jpg"])
        #expect(project.renderer.count == renders)
        #expect(try project.session().store().recordedACL(bucket: "site", key: "a.thumb.jpg") == "public-read")
        #expect(try project.check().problems == [])
    }

    @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        // A pid far above any running process (pid_max is at most 2^22).
        // What a killed exchange leaves: the displaced old output, Derive's recorded bytes.
        try FileManager.default.copyItem(atPath: project.path("site/a.thumb.jpg"), toPath: project.path("site/.a.thumb.jpg.4194301.77.derive-tmp"))
        try project.write("photos/a.jpg", "A2")
        try project.build()
        #expect(!project.exists("site/.a.thumb.jpg.4194301.77.derive-tmp"))
    }
}

/// A state belongs to the manifest that created it: a copied project or a second manifest
/// sharing a `state:` folder gets a state of its own, never the other one's folders to delete.
@Suite(.ownThreads, .serialized) struct StateOwnerTests {
    @Test func aCopiedProjectAdoptsItsOutputsAndNeverTouchesTheOriginals() throws {
        let original = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/trip/b.jpg": "B"])
        try original.build()
        let before = original.snapshot()
        let copy = try Project(siteManifest)
        try FileManager.default.removeItem(at: copy.root)
        try FileManager.default.copyItem(at: original.root, to: copy.root)
        let session = try copy.session()
        let outcome = try session.build(options: BuildOptions(jobs: 1, quiet: true)) { copy.renderer }
        let report = try #require(outcome.report)
        #expect(session.movedAside?.contains("state.sqlite.foreign-") == true)
        #expect(session.movedAsideReason?.contains(original.path("derive.yaml")) == true, "\(String(describing: session.movedAsideReason))")
        #expect(report.built.isEmpty && report.deleted.isEmpty && report.adopted.count == 2, "\(outcome.plan.items)")
        #expect(copy.renderer.count == 0)
        #expect(original.snapshot() == before)
        #expect(try copy.check().problems == [])
        // The renderer proves the outputs adopted unverified Derive's before clean removes them (issue 13's finding 1).
        let cleaned = try copy.session().clean(renderer: { copy.renderer })
        // Only the original's state moved aside is kept, and named.
        #expect(cleaned.removed == 2 && cleaned.left.count == 1, "\(cleaned.left)")
        #expect(cleaned.left.allSatisfy { $0.contains("is kept: it still holds state.sqlite.foreign-") }, "\(cleaned.left)")
        #expect(!copy.exists("site/a.thumb.jpg") && !copy.exists("site/trip/b.thumb.jpg"))
        #expect(original.snapshot() == before)
    }

    /// In another folder, which the validator does not look in (beside each other, one `state:`
    /// is a validation error: SharedStateFolderShared28Tests): the second manifest is refused
    /// before anything is written (gaps 28: it moved the first one's state aside, and back).
    @Test func twoManifestsSharingAStateFolderFromAnotherFolderAreRefused() throws {
        let other = """
        version: 1
        buckets:
          photos:
            path: ../photos
          more:
            path: ../more
        derivatives:
          - name: small
            from: photos/*.jpg
            process: image/resize,w_50
            to: more/{name}.jpg
        state: ../.shared

        """
        let project = try Project(siteManifest + "state: .shared\n", files: ["photos/a.jpg": "A", "sub/other.yaml": other])
        try project.build()
        let site = try #require(project.read("site/a.thumb.jpg"))
        project.manifestName = "sub/other.yaml"
        var refusal = ""
        do { _ = try project.build() } catch { refusal = "\(error)" }
        #expect(refusal.contains("two manifests cannot share a state folder") && refusal.contains(project.path("derive.yaml")), "\(refusal)")
        #expect(project.read("site/a.thumb.jpg") == site && project.read("more/a.jpg") == nil)
        project.manifestName = "derive.yaml"
        let third = try #require(try project.build().report)
        #expect(third.deleted.isEmpty && third.failed.isEmpty && third.built.isEmpty && third.adopted.isEmpty)
        #expect(project.read("site/a.thumb.jpg") == site)
    }

    @Test func aStateWithoutAnOwnerRecordIsTakenAsThisManifests() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        try project.session().store().queue.write { db in try db.execute(sql: "DELETE FROM owner") }
        let session = try project.session()
        let report = try #require(try session.build(options: BuildOptions(jobs: 1, quiet: true)) { project.renderer }.report)
        #expect(session.movedAside == nil && report.built.isEmpty && report.adopted.isEmpty)
        #expect(try session.store().owner() != nil)
    }

    /// A pending row names a path only with the digest of the bytes Derive renamed there: a user's
    /// file at a path a build once planned is still the user's.
    @Test func aStalePendingWriteDoesNotMakeAUserFileDerives() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.session().store().queue.write { db in
            for path in ["site/a.thumb.jpg", "site/never.jpg"] {
                try db.execute(sql: "INSERT INTO pendingWrites (path) VALUES (?)", arguments: [project.path(path)])
            }
        }
        try project.write("site/a.thumb.jpg", "the user's")
        let outcome = try project.build()
        #expect(outcome.plan.errors.map(\.message).contains { $0.contains("site/a.thumb.jpg exists and was not written by Derive") },
                "\(outcome.plan.errors)")
        #expect(project.read("site/a.thumb.jpg") == "the user's")
        // Once the user moves it, the build runs and drops every stale pending row.
        try project.remove("site/a.thumb.jpg")
        let report = try #require(try project.build().report)
        #expect(report.built == ["site/a.thumb.jpg"])
        #expect(try project.session().store().pendingWrites().isEmpty)
    }
}
