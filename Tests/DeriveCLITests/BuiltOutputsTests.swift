import Foundation
import Testing
import TestSupport
@testable import derive
import Manifest
import Planner
import Builder
import GRDB

/// Serve's record of built outputs fails closed: a missing or corrupt state never makes an output
/// that a rule wrote with an explicit `acl:` public (attack: deleting `.derive` served it anonymously).
@Suite(.ownThreads) struct BuiltOutputsTests {
    func manifest(in folder: URL) throws -> Manifest {
        let yaml = """
        version: 1
        buckets:
          src: {path: src, acl: private}
          out: {path: out, acl: public-read}
          pub: {path: pub, acl: public-read}
        styles:
          t: image/resize,w_10
        derivatives:
          - name: private-thumbs
            from: src/*.jpg
            styles: [t]
            to: out/{name}.{ext}
            acl: private

        """
        for name in ["src", "out", "pub"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        let file = folder.appendingPathComponent("derive.yaml")
        try Data(yaml.utf8).write(to: file)
        let result = ManifestLoader().load(file.path)
        return try #require(result.manifest, "\(result.diagnostics.sorted)")
    }

    @Test func aMissingStateKeepsGuardedBucketsPrivate() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
        #expect(try outputs.recordedACL(bucket: "pub", key: "a.jpg") == nil)
    }

    @Test func aCorruptStateKeepsGuardedBucketsPrivateEvenAfterItIsReplaced() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        try FileManager.default.createDirectory(atPath: loaded.stateFolder, withIntermediateDirectories: true)
        try Data(String(repeating: "garbage ", count: 512).utf8).write(to: URL(fileURLWithPath: loaded.stateFolder + "/state.sqlite"))
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
        // The state now on disk is a fresh empty one; it still proves nothing.
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
        #expect(try outputs.recordedACL(bucket: "pub", key: "a.jpg") == nil)
    }

    @Test func aHealthyStateAnswersFromItsRecords() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        _ = try StateStore(folder: loaded.stateFolder, owner: BuildSession.ownerName(loaded.file))
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(try outputs.recordedACL(bucket: "out", key: "unbuilt.jpg") == nil)
    }

    /// A state with a record for `out/a.jpg` (public-read), owned by `owner`.
    func state(_ loaded: Manifest, owner: String?) throws {
        let store = try StateStore(folder: loaded.stateFolder, owner: owner)
        try store.queue.write { db in
            let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(outputs)").map { $0["name"] as String }
            let values = columns.map { name -> String in
                switch name {
                case "path": return "'out/a.jpg'"
                case "acl": return "'public-read'"
                default: return "0"
                }
            }
            try db.execute(sql: "INSERT INTO outputs (\(columns.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))")
        }
    }

    @Test func aStateOfThisManifestIsTrusted() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        try state(loaded, owner: BuildSession.ownerName(loaded.file))
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(try outputs.recordedACL(bucket: "out", key: "a.jpg") == .publicRead)
    }

    /// Attack (#11 follow-up): a state copied from another project, or a `state:` folder shared
    /// with another manifest, must not decide this manifest's ACLs: fail closed like a missing state.
    @Test func aStateOwnedByAnotherManifestIsNotTrusted() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        try state(loaded, owner: "/elsewhere/other.yaml")
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
        #expect(try outputs.recordedACL(bucket: "pub", key: "a.jpg") == nil)
    }

    @Test func aStateWithoutOwnerIsNotTrusted() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        try state(loaded, owner: nil)
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
    }

    /// The owner is checked at every lookup: another manifest's build taking the state over
    /// while serve runs stops the records from counting.
    @Test func aStateTakenOverWhileServingStopsCounting() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        try state(loaded, owner: BuildSession.ownerName(loaded.file))
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(try outputs.recordedACL(bucket: "out", key: "a.jpg") == .publicRead)
        let store = try StateStore(folder: loaded.stateFolder)
        try store.queue.write { db in try db.execute(sql: "UPDATE owner SET manifest = '/elsewhere/other.yaml'") }
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
    }

    /// The server keeps the database open: a state moved aside (another manifest's build takes the
    /// folder over) or deleted while it runs must stop counting at once, not at the next restart.
    @Test func aStateMovedAsideOrDeletedWhileServingStopsCounting() throws {
        let folder = (try ScratchFolder.make("derive-built"))
        let loaded = try manifest(in: folder)
        try state(loaded, owner: BuildSession.ownerName(loaded.file))
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        #expect(try outputs.recordedACL(bucket: "out", key: "a.jpg") == .publicRead)
        let path = loaded.stateFolder + "/" + StateStore.fileName
        #expect(rename(path, path + ".foreign-1") == 0)
        // Another manifest's build starts a fresh state in the same folder.
        try state(loaded, owner: "/elsewhere/other.yaml")
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
        // Deleted outright: no state, so the rule's outputs are private.
        for name in try FileManager.default.contentsOfDirectory(atPath: loaded.stateFolder) where name.hasPrefix(StateStore.fileName) {
            try FileManager.default.removeItem(atPath: loaded.stateFolder + "/" + name)
        }
        #expect(throws: BuiltOutputs.Unavailable.self) { try outputs.recordedACL(bucket: "out", key: "a.jpg") }
        // This manifest's build again: it counts again.
        try state(loaded, owner: BuildSession.ownerName(loaded.file))
        #expect(try outputs.recordedACL(bucket: "out", key: "a.jpg") == .publicRead)
    }
}
