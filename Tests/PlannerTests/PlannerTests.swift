import Confinement
import Foundation
import Testing
import TestSupport
import Builder
import Manifest
import Planner
import ProcessLanguage

@Suite(.ownThreads) struct PlannerTests {
    @Test func firstBuildCreatesEverything() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "trip/b.jpg": "B", "c.png": "C"])
        let (plan, report) = try fixture.build()
        #expect(fixture.items(plan, .create) == ["site/a.hero.webp", "site/a.thumb.jpg", "site/trip/b.hero.webp", "site/trip/b.thumb.jpg"])
        #expect(report.built.count == 4 && report.failed.isEmpty)
        #expect(fixture.disk.exists(fixture.path("site/trip/b.thumb.jpg")))
        let lock = String(decoding: try #require(fixture.disk.contents(fixture.path("derive.lock"))), as: UTF8.self)
        #expect(lock.split(separator: "\n").count == 5)
        #expect(lock.contains("{\"path\":\"site/a.thumb.jpg\","))
    }

    @Test func noOpBuildReadsNoBytes() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "trip/b.jpg": "B"])
        try fixture.build()
        // Outputs written in this very tick are "racy" and hashed once more, as git does.
        _ = try fixture.build()
        fixture.disk.resetReads()
        let (plan, report) = try fixture.build()
        #expect(!plan.hasChanges && report.built.isEmpty)
        #expect(plan.count(.upToDate) == 4)
        #expect(fixture.disk.reads.filter { !$0.hasSuffix("derive.lock") } == [])
    }

    @Test func styleEditRebuildsExactlyThatStyle() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "trip/b.jpg": "B"])
        try fixture.build()
        try fixture.setManifest(photosAndSite.replacingOccurrences(of: "thumb: image/resize,w_200", with: "thumb: image/resize,w_240"))
        let plan = try fixture.plan()
        #expect(fixture.items(plan, .rebuild) == ["site/a.thumb.jpg", "site/trip/b.thumb.jpg"])
        #expect(plan.items.first { $0.kind == .rebuild }?.reasons == ["style 'thumb': resize,w_200 → resize,w_240"])
        #expect(fixture.items(plan, .upToDate) == ["site/a.hero.webp", "site/trip/b.hero.webp"])
    }

    @Test func touchingASourceRebuildsNothing() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        fixture.disk.touch(fixture.path("photos/a.jpg"))
        fixture.disk.advance(seconds: 5)
        let plan = try fixture.plan()
        #expect(!plan.hasChanges)
        #expect(fixture.disk.reads.contains(fixture.path("photos/a.jpg")))   // rehashed once, found equal
    }

    @Test func changedSourceRebuildsOnlyItsDerivatives() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "trip/b.jpg": "B"])
        try fixture.build()
        fixture.disk.put(fixture.path("photos/a.jpg"), Data("A2".utf8))
        fixture.disk.advance(seconds: 5)
        let (plan, _) = try fixture.build()
        #expect(fixture.items(plan, .rebuild) == ["site/a.hero.webp", "site/a.thumb.jpg"])
        #expect(plan.items.first { $0.kind == .rebuild }?.reasons == ["source changed"])
        #expect(!(try fixture.plan().hasChanges))
    }

    @Test func removingARuleDeletesItsOutputs() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        try fixture.setManifest(photosAndSite.replacingOccurrences(of: "styles: [thumb, hero]", with: "styles: [hero]"))
        let (plan, report) = try fixture.build()
        #expect(fixture.items(plan, .delete) == ["site/a.thumb.jpg"])
        #expect(report.deleted == ["site/a.thumb.jpg"])
        #expect(!fixture.disk.exists(fixture.path("site/a.thumb.jpg")))
        #expect(try fixture.store.allOutputs().keys.sorted() == ["site/a.hero.webp"])
        let lock = String(decoding: try #require(fixture.disk.contents(fixture.path("derive.lock"))), as: UTF8.self)
        #expect(!lock.contains("a.thumb.jpg"))
    }

    /// Ownership: an output edited by hand is no longer Derive's to replace; a missing one is rebuilt.
    @Test func handEditedOutputIsAPlanErrorAndMissingOneIsRebuilt() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        fixture.disk.put(fixture.path("site/a.thumb.jpg"), Data("edited by hand".utf8))
        try fixture.disk.remove(fixture.path("site/a.hero.webp"))
        fixture.disk.advance(seconds: 5)
        let plan = try fixture.plan()
        #expect(plan.errors.map(\.message) == ["site/a.thumb.jpg was changed since Derive wrote it; move it or pass --overwrite"])
        #expect(plan.items.first { $0.output == "site/a.hero.webp" }?.reasons == ["output missing"])
        #expect(fixture.disk.contents(fixture.path("site/a.thumb.jpg")) == Data("edited by hand".utf8))
    }

    @Test func engineAndACLChangesAreReasons() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        fixture.identity.libvips = "8.15.0"
        let plan = try fixture.plan()
        #expect(plan.items.allSatisfy { $0.reasons == ["libvips 8.14.1 → 8.15.0"] })
        fixture.identity.libvips = "8.14.1"
        try fixture.setManifest(photosAndSite.replacingOccurrences(of: "    acl: public-read\n\"\"\"", with: "").replacingOccurrences(of: "to: site/{dir}/{name}.{style}.{ext}\n    acl: public-read", with: "to: site/{dir}/{name}.{style}.{ext}\n    acl: private"))
        let aclPlan = try fixture.plan()
        #expect(aclPlan.items.allSatisfy { $0.kind == .update && $0.reasons == ["acl public-read → private"] })
    }

    @Test func aCodecLibraryUpgradeRebuildsNamingTheLibrary() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        fixture.identity.libraries = ["libwebp": "1.3.2", "libjpeg-turbo": "3.0.2"]
        try fixture.build()
        #expect(!(try fixture.plan().hasChanges))
        fixture.identity.libraries["libwebp"] = "1.4.0"
        let plan = try fixture.plan()
        #expect(plan.items.allSatisfy { $0.kind == .rebuild && $0.reasons == ["libwebp 1.3.2 → 1.4.0"] })
    }

    /// Two sources naming one output: each fails those derivatives, once, naming the other; the
    /// plan has no error, so the rest builds (attack 39b's M2: one plan error per output before,
    /// and nothing was built).
    @Test func twoSourcesOnePathFailTheirOwnDerivativesOnly() throws {
        let fixture = try Fixture(photosAndSite.replacingOccurrences(of: "to: site/{dir}/{name}.{style}.{ext}", with: "to: site/{name}.{style}.{ext}"),
                                  sources: ["a.jpg": "A", "x/a.jpg": "B", "b.jpg": "C"])
        let plan = try fixture.plan()
        #expect(plan.errors.isEmpty, "\(plan.errors)")
        #expect(plan.failures.count == 2, "\(plan.failures)")
        let first = plan.failures.first { $0.subject == "photos/a.jpg" }
        #expect(first?.message.contains("would be written over those of photos/x/a.jpg (site/a.") == true, "\(plan.failures)")
        #expect(first?.message.contains("2 derivatives not built") == true, "\(plan.failures)")
        #expect(plan.failures.contains { $0.subject == "photos/x/a.jpg" && $0.message.contains("those of photos/a.jpg") }, "\(plan.failures)")
        #expect(!plan.items.contains { $0.derivative?.source.hasSuffix("a.jpg") == true }, "\(plan.items.map(\.output))")
        #expect(plan.items.contains { $0.derivative?.source == "photos/b.jpg" }, "\(plan.items.map(\.output))")
    }

    @Test func aFailingDerivativeDoesNotStopTheOthers() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "bad.jpg": "BROKEN bytes"])
        let (_, report) = try fixture.build()
        #expect(report.built.sorted() == ["site/a.hero.webp", "site/a.thumb.jpg"])
        #expect(report.failed.map(\.output).sorted() == ["site/bad.hero.webp", "site/bad.thumb.jpg"])
        #expect(report.failed.first?.message.contains("corrupt") == true)
        #expect(!fixture.disk.exists(fixture.path("site/bad.thumb.jpg")))
        #expect(try fixture.store.allOutputs().count == 2)
        // The failures stay in the plan until fixed.
        #expect(fixture.items(try fixture.plan(), .create) == ["site/bad.hero.webp", "site/bad.thumb.jpg"])
    }

    @Test func racyTimestampsAreRehashed() throws {
        let disk = MemoryDisk()
        disk.put("/f", Data("one".utf8))
        let digests = ContentDigests(disk: disk, cache: [:])
        _ = try digests.content(of: "/f")
        // The entry was taken in the tick the file was written: it is not trusted.
        let cache = PathDictionary(uniqueKeysWithValues: digests.takePending().map { ($0.path, $0) })
        disk.put("/f", Data("two".utf8))
        let racy = ContentDigests(disk: disk, cache: cache)
        #expect(try racy.content(of: "/f")?.digest == ContentDigests.digest(Data("two".utf8)))
        // A settled entry (hashed well after its mtime) is trusted without reading.
        disk.advance(seconds: 5)
        let settled = ContentDigests(disk: disk, cache: [:])
        _ = try settled.content(of: "/f")
        let trusted = ContentDigests(disk: disk, cache: PathDictionary(uniqueKeysWithValues: settled.takePending().map { ($0.path, $0) }))
        disk.resetReads()
        #expect(try trusted.content(of: "/f")?.digest == ContentDigests.digest(Data("two".utf8)))
        #expect(disk.reads.isEmpty)
    }

    /// Attack 18's S4: HEIF sizes were read from the coded extent (a 333-high image read 334).
    /// A size cached before the reader applied the clean aperture (2026-12-03) is read again
    /// once; one cached after is trusted without reading, as any other.
    @Test func heifSizesCachedBeforeTheApertureReaderAreReadAgain() throws {
        let disk = MemoryDisk()
        var bytes = Data([0, 0, 0, 24]) + Data("ftypheic".utf8)
        bytes += Data(count: 12)
        disk.put("/p.heic", bytes)
        disk.advance(seconds: 1_796_256_000 - 1_700_000_000 + 86_400)
        let stat = try #require(disk.stat("/p.heic"))
        func record(recorded: Int64) -> FileRecord {
            FileRecord(path: "/p.heic", size: stat.size, mtime: stat.mtime, inode: Int64(bitPattern: stat.inode),
                       digest: ContentDigests.digest(bytes), format: "heic", recorded: recorded, ctime: stat.ctime, width: 78, height: 64)
        }
        for (recorded, read) in [(Int64(1_796_256_000 - 60) * 1_000_000_000, true), (Int64(1_796_256_000 + 60) * 1_000_000_000, false)] {
            let digests = ContentDigests(disk: disk, cache: ["/p.heic": record(recorded: recorded)])
            disk.resetReads()
            let content = try #require(try digests.content(of: "/p.heic"))
            #expect(disk.reads.isEmpty == !read, "recorded \(recorded)")
            #expect(content.format == "heic")
            #expect(read ? content.width == 0 : content.width == 78, "recorded \(recorded)")
        }
    }

    @Test func pipelineChangeReasons() {
        #expect(Planner.pipelineChangeText("image/resize,m_lfit,w_200,limit_1/quality,q_80", "image/resize,m_lfit,w_240,limit_1/quality,q_80") == "resize,w_200 → resize,w_240")
        #expect(Planner.pipelineChangeText("image/resize,w_1", "image/resize,w_1/format,png") == "resize,w_1 → resize,w_1/format,png")
    }
}

@Suite(.ownThreads) struct DependencyTests {
    static let manifest = photosAndSite.replacingOccurrences(of: "hero: image/resize,w_1600/format,webp",
        with: "hero: image/resize,w_1600/watermark,image_\(Base64URL.encode("marks/logo.png"))/watermark,text_\(Base64URL.encode("hi"))/format,webp")
        .replacingOccurrences(of: "from: photos/**/*.jpg", with: "from: photos/*.jpg")

    @Test func watermarkObjectChangesRebuild() throws {
        let fixture = try Fixture(Self.manifest, sources: ["a.jpg": "A", "marks/logo.png": "L1"])
        try fixture.build()
        #expect(!(try fixture.plan().hasChanges))
        fixture.disk.put(fixture.path("photos/marks/logo.png"), Data("L2".utf8))
        fixture.disk.advance(seconds: 5)
        let plan = try fixture.plan()
        #expect(fixture.items(plan, .rebuild) == ["site/a.hero.webp"])
        #expect(plan.items.first { $0.kind == .rebuild }?.reasons == ["watermark object 'marks/logo.png' changed"])
    }

    @Test func missingWatermarkObjectFailsOnlyItsOutput() throws {
        let fixture = try Fixture(Self.manifest, sources: ["a.jpg": "A"])
        let plan = try fixture.plan()
        #expect(plan.errors.isEmpty)
        #expect(plan.failures == [PlanFailure(subject: "site/a.hero.webp", message: "the watermark object 'marks/logo.png' does not exist in bucket 'photos'",
                                                  source: "photos/a.jpg")])
    }

    @Test func fontFileChangesRebuild() throws {
        let fixture = try Fixture(Self.manifest, sources: ["a.jpg": "A", "marks/logo.png": "L1"])
        let fontPath = fixture.path("fonts/zenhei.ttc")
        fixture.disk.put(fontPath, Data("font v1".utf8))
        fixture.identity = EngineIdentity(renderVersion: "1", libvips: "8.14.1", encoder: "q85", fontFile: { _ in fontPath }, refusesNonImages: false)
        try fixture.build()
        fixture.disk.put(fontPath, Data("font v2".utf8))
        fixture.disk.advance(seconds: 5)
        let plan = try fixture.plan()
        #expect(plan.items.first { $0.kind == .rebuild }?.reasons == ["font 'wqy-zenhei' changed"])
    }
}

@Suite(.ownThreads) struct NoOpWitnessTests {
    func inputs(_ fixture: Fixture) throws -> NoOpWitness.Inputs {
        NoOpWitness.Inputs(manifestFiles: [fixture.manifestPath], manifest: try fixture.manifest(), manifestPath: fixture.manifestPath,
                           identity: fixture.identity, fontFiles: [])
    }

    func save(_ fixture: Fixture) throws {
        let manifest = try fixture.manifest()
        let outputs = try fixture.store.allOutputs().keys.compactMap { Builder.absolutePath(of: $0, in: manifest) }
        let witnessInputs = try inputs(fixture)
        NoOpWitness.save(witnessInputs, snapshot: NoOpWitness.snapshot(witnessInputs, disk: fixture.disk), outputs: outputs, disk: fixture.disk, valid: true)
        fixture.disk.advance(seconds: 5)
    }

    @Test func holdsUntilAnythingChanges() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "trip/b.jpg": "B"])
        try fixture.build()
        try save(fixture)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == 4)

        fixture.disk.touch(fixture.path("photos/a.jpg"))                 // a source's stat changes
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
        try save(fixture)
        fixture.disk.put(fixture.path("photos/new.jpg"), Data("N".utf8))  // a new source appears
        fixture.disk.advance(seconds: 5)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
        try fixture.disk.remove(fixture.path("photos/new.jpg"))
        try save(fixture)
        fixture.disk.put(fixture.path("site/a.thumb.jpg"), Data("edited".utf8))   // an output is edited
        fixture.disk.advance(seconds: 5)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
    }

    @Test func manifestEngineAndLockAreCovered() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        try save(fixture)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) != nil)
        fixture.identity.libvips = "9.0.0"
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
        fixture.identity.libvips = "8.14.1"
        try fixture.disk.remove(fixture.path("derive.lock"))
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
    }

    /// Outputs written in the witness's own tick: vouched for by their bytes, so a witness is left
    /// at once, and a same-size edit in that tick (which keeps the stat) is still noticed.
    @Test func racyOutputsAreVouchedForByTheirBytes() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let manifest = try fixture.manifest()
        let records = try fixture.store.allOutputs().values
        let outputs = records.compactMap { Builder.absolutePath(of: $0.path, in: manifest) }
        let recorded = Dictionary(records.map { ($0.file, $0.outputDigest) }, uniquingKeysWith: { a, _ in a })
        let output = fixture.path("site/a.thumb.jpg")
        let bytes = try #require(fixture.disk.contents(output))
        fixture.disk.put(output, bytes)   // rewritten now: racy, same bytes
        let witnessInputs = try inputs(fixture)
        let snapshot = NoOpWitness.snapshot(witnessInputs, disk: fixture.disk)
        NoOpWitness.save(witnessInputs, snapshot: snapshot, outputs: outputs, disk: fixture.disk, valid: true, expected: { recorded[$0] })
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) != nil, "a racy output with its recorded bytes")

        var edited = bytes
        edited[edited.startIndex] ^= 0xFF
        let stat = fixture.disk.stat(output)
        fixture.disk.replaceKeepingStat(output, edited)   // same size, same tick: the stat does not move
        #expect(fixture.disk.stat(output) == stat && fixture.disk.contents(output) == edited)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil, "a same-tick edit of a racy output")

        // Saving over a racy output that does not hold what the build recorded leaves no witness.
        fixture.disk.put(output, edited)
        NoOpWitness.save(witnessInputs, snapshot: snapshot, outputs: outputs, disk: fixture.disk, valid: true, expected: { recorded[$0] })
        #expect(!fixture.disk.exists(manifest.stateFolder + "/" + NoOpWitness.fileName))
        fixture.disk.advance(seconds: 5)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
    }

    /// Once the racy margin has passed, a witness that held by rehashing is saved again without
    /// racy files; one whose racy file changed is not.
    @Test func aRacyWitnessIsRefreshedOnlyWhileItHolds() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let manifest = try fixture.manifest()
        let records = try fixture.store.allOutputs().values
        let outputs = records.compactMap { Builder.absolutePath(of: $0.path, in: manifest) }
        let recorded = Dictionary(records.map { ($0.file, $0.outputDigest) }, uniquingKeysWith: { a, _ in a })
        let output = fixture.path("site/a.thumb.jpg")
        let bytes = try #require(fixture.disk.contents(output))
        fixture.disk.put(output, bytes)
        let witnessInputs = try inputs(fixture)
        NoOpWitness.save(witnessInputs, snapshot: NoOpWitness.snapshot(witnessInputs, disk: fixture.disk), outputs: outputs,
                         disk: fixture.disk, valid: true, expected: { recorded[$0] })
        #expect(NoOpWitness.read(witnessInputs, disk: fixture.disk)?.racy.keys.sorted() == [output])
        fixture.disk.advance(seconds: 5)
        NoOpWitness.refresh(witnessInputs, disk: fixture.disk)
        #expect(NoOpWitness.read(witnessInputs, disk: fixture.disk)?.racy.isEmpty == true)
        #expect(NoOpWitness.holds(witnessInputs, disk: fixture.disk) != nil)

        // Racy again, then edited in the same tick: refresh must not vouch for the edit.
        fixture.disk.put(output, bytes)
        NoOpWitness.save(witnessInputs, snapshot: NoOpWitness.snapshot(witnessInputs, disk: fixture.disk), outputs: outputs,
                         disk: fixture.disk, valid: true, expected: { recorded[$0] })
        var edited = bytes
        edited[edited.startIndex] ^= 0xFF
        fixture.disk.replaceKeepingStat(output, edited)
        fixture.disk.advance(seconds: 5)
        NoOpWitness.refresh(witnessInputs, disk: fixture.disk)
        #expect(NoOpWitness.read(witnessInputs, disk: fixture.disk)?.racy.count == 1)
        #expect(NoOpWitness.holds(witnessInputs, disk: fixture.disk) == nil)
    }

    /// An input changed in the snapshot's own tick could change again unseen: no witness, even
    /// when the build took longer than the racy margin.
    @Test func racyInputsLeaveNoWitness() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let manifest = try fixture.manifest()
        let outputs = try fixture.store.allOutputs().keys.compactMap { Builder.absolutePath(of: $0, in: manifest) }
        fixture.disk.put(fixture.path("photos/a.jpg"), Data("B".utf8))
        let witnessInputs = try inputs(fixture)
        let snapshot = NoOpWitness.snapshot(witnessInputs, disk: fixture.disk)
        fixture.disk.advance(seconds: 5)   // a long build
        NoOpWitness.save(witnessInputs, snapshot: snapshot, outputs: outputs, disk: fixture.disk, valid: true)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
    }

    /// An input changed in the snapshot's own tick that the plan hashed (a build started right
    /// after an edit, issue 15): vouched for by its bytes, read again when saving, so a witness is
    /// left at once; any edit of it in that tick, before saving or after, is noticed.
    @Test func racyInputsThePlanHashedAreVouchedForByTheirBytes() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let manifest = try fixture.manifest()
        let outputs = try fixture.store.allOutputs().keys.compactMap { Builder.absolutePath(of: $0, in: manifest) }
        let source = fixture.path("photos/a.jpg")
        let planned = ContentDigests.digest(Data("B".utf8))
        let witnessFile = manifest.stateFolder + "/" + NoOpWitness.fileName
        func saveNow() throws {
            let witnessInputs = try inputs(fixture)
            NoOpWitness.save(witnessInputs, snapshot: NoOpWitness.snapshot(witnessInputs, disk: fixture.disk), outputs: outputs,
                             disk: fixture.disk, valid: true, planDigest: { file, _ in file == source ? planned : nil })
        }

        fixture.disk.put(source, Data("B".utf8))   // edited in the snapshot's own tick
        try saveNow()
        #expect(NoOpWitness.read(try inputs(fixture), disk: fixture.disk)?.racy.keys.sorted() == [source])
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) != nil, "a racy input holding the bytes the plan read")
        fixture.disk.replaceKeepingStat(source, Data("C".utf8))   // same size, same tick: the stat does not move
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil, "a same-tick edit after saving")
        fixture.disk.advance(seconds: 5)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil, "a same-tick edit after saving, checked later")

        // Edited in that tick after the plan read it, before saving: no witness.
        fixture.disk.put(source, Data("B".utf8))
        let witnessInputs = try inputs(fixture)
        let snapshot = NoOpWitness.snapshot(witnessInputs, disk: fixture.disk)
        fixture.disk.replaceKeepingStat(source, Data("D".utf8))
        fixture.disk.advance(seconds: 5)   // a long build
        NoOpWitness.save(witnessInputs, snapshot: snapshot, outputs: outputs, disk: fixture.disk, valid: true,
                         planDigest: { file, _ in file == source ? planned : nil })
        #expect(!fixture.disk.exists(witnessFile))
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)

        // A racy manifest file leaves no witness: the plan parsed it, the snapshot read it again.
        fixture.disk.put(source, Data("B".utf8))
        fixture.disk.put(fixture.manifestPath, try #require(fixture.disk.contents(fixture.manifestPath)))
        try saveNow()
        #expect(!fixture.disk.exists(witnessFile))
    }

    /// The lock is read again only while it is racy: a settled lock with the stat the witness
    /// took holds the bytes it hashed (the rule every other file is trusted by); a same-tick edit
    /// of a racy lock, which keeps its stat, is noticed.
    @Test func theLockIsReadAgainOnlyWhileRacy() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let manifest = try fixture.manifest()
        let outputs = try fixture.store.allOutputs().keys.compactMap { Builder.absolutePath(of: $0, in: manifest) }
        let lock = try inputs(fixture).lockPath
        let bytes = try #require(fixture.disk.contents(lock))
        try save(fixture)   // settled
        fixture.disk.resetReads()
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) != nil)
        #expect(!fixture.disk.reads.contains(lock), "a settled lock was read again")

        fixture.disk.put(lock, bytes)   // rewritten now, same bytes: racy
        let witnessInputs = try inputs(fixture)
        NoOpWitness.save(witnessInputs, snapshot: NoOpWitness.snapshot(witnessInputs, disk: fixture.disk), outputs: outputs,
                         disk: fixture.disk, valid: true, expected: { $0 == lock ? ContentDigests.digest(bytes) : nil })
        fixture.disk.resetReads()
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) != nil)
        #expect(fixture.disk.reads.contains(lock), "a racy lock was not read again")
        var edited = bytes
        edited[edited.startIndex] ^= 0xFF
        fixture.disk.replaceKeepingStat(lock, edited)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil, "a same-tick edit of a racy lock")
    }

    @Test func racyWitnessIsNotTrusted() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let manifest = try fixture.manifest()
        let outputs = try fixture.store.allOutputs().keys.compactMap { Builder.absolutePath(of: $0, in: manifest) }
        fixture.disk.put(fixture.path("photos/a.jpg"), Data("B".utf8))   // written in the witness's own tick
        let witnessInputs = try inputs(fixture)
        NoOpWitness.save(witnessInputs, snapshot: NoOpWitness.snapshot(witnessInputs, disk: fixture.disk), outputs: outputs, disk: fixture.disk, valid: true)
        #expect(NoOpWitness.holds(try inputs(fixture), disk: fixture.disk) == nil)
    }
}
