import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack 15/16's static M7 and M7b: a manifest that is a symbolic link to a file
/// elsewhere (a dotfiles or stow checkout). Watch did not see edits of the link's target, and a
/// link swapped for a copy (or back) made the project's own state "another manifest's".
@Suite(.ownThreads, .serialized) struct ManifestLinkTests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static func hashed(width: Int) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: pic
            from: src/landscape.jpg
            process: image/resize,w_\(width)/format,webp
            to: out/{name}.{hash}.webp

        """
    }

    func outputs(_ project: Project) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: project.url("out").path)) ?? []).filter { $0.hasSuffix(".webp") }.sorted()
    }

    // MARK: M7: watch follows the link's target

    /// `derive.yaml` → `<elsewhere>/derive.yaml`; the target edited in place and saved as editors
    /// do (written aside, renamed over it, as `sed -i` does): each edit rebuilds.
    @Test func watchRebuildsWhenALinkedManifestsTargetIsEdited() throws {
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        let target = elsewhere.appendingPathComponent("derive.yaml")
        let watch = try WatchSession(width: 64) { root in
            try FileManager.default.moveItem(at: root.appendingPathComponent("derive.yaml"), to: target)
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("derive.yaml").path, withDestinationPath: target.path)
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.size("a.jpg")?.width == 64, "\(watch.lines) \(watch.standardError)")

        try Data(WatchSession.manifestText(width: 48).utf8).write(to: target)   // in place
        #expect(watch.wait(30) { watch.size("a.jpg")?.width == 48 }, "an edit of the link's target was not seen: \(watch.lines) \(watch.standardError)")

        let aside = elsewhere.appendingPathComponent(".derive.yaml.tmp")
        try Data(WatchSession.manifestText(width: 40).utf8).write(to: aside)
        #expect(rename(aside.path, target.path) == 0)                            // replaced, as sed -i does
        #expect(watch.wait(30) { watch.size("a.jpg")?.width == 40 }, "a target replaced by rename was not seen: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        let check = try CLI.run(["check"], in: watch.root)
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    // MARK: M7b: one identity for a manifest reached through a link

    /// The attack's repro: built from a regular file; the file replaced by a link to a copy in
    /// another folder and built; the regular file put back and built. Every build is the same
    /// project's: nothing is refused, nothing moved aside, and check is clean.
    @Test func aManifestSwappedForALinkToACopyAndBackKeepsItsState() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try project.write("derive.yaml", Self.hashed(width: 100))
        #expect(try project.run(["build", "-q"]).status == 0)
        let first = outputs(project)
        #expect(first.count == 1)

        let copy = elsewhere.appendingPathComponent("derive.yaml")
        try FileManager.default.copyItem(at: project.url("derive.yaml"), to: copy)
        try FileManager.default.moveItem(at: project.url("derive.yaml"), to: project.url("derive.yaml.orig"))
        try FileManager.default.createSymbolicLink(atPath: project.url("derive.yaml").path, withDestinationPath: copy.path)
        let linked = try project.run(["build"])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(!linked.stderr.contains("foreign") && !linked.stderr.contains("owned by"), "the state is the project's: \(linked.stderr)")

        try FileManager.default.removeItem(at: project.url("derive.yaml"))
        try FileManager.default.moveItem(at: project.url("derive.yaml.orig"), to: project.url("derive.yaml"))
        let back = try project.run(["build"])
        #expect(back.status == 0, "the project's own outputs were refused: \(back.stderr)")
        #expect(outputs(project) == first)
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        let aside = (try? FileManager.default.contentsOfDirectory(atPath: project.url(".derive/derive").path)) ?? []
        #expect(!aside.contains { $0.contains("foreign") }, "no state was moved aside: \(aside)")
    }

    /// The watch variant: GNU `sed -i` on the link replaces it by a regular file with the edit.
    /// The rebuild is the same project's: the old output is deleted (it was left behind with no
    /// record when the state was moved aside as another manifest's).
    @Test func aLinkReplacedByAnEditedFileDeletesTheOldOutput() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        let target = elsewhere.appendingPathComponent("derive.yaml")
        try Data(Self.hashed(width: 100).utf8).write(to: target)
        try FileManager.default.removeItem(at: project.url("derive.yaml"))
        try FileManager.default.createSymbolicLink(atPath: project.url("derive.yaml").path, withDestinationPath: target.path)
        #expect(try project.run(["build", "-q"]).status == 0)
        let first = outputs(project)
        #expect(first.count == 1)

        // What sed -i does to a link: the edited text written aside and renamed over the link.
        let aside = project.url(".sedXXXX")
        try Data(Self.hashed(width: 120).utf8).write(to: aside)
        #expect(rename(aside.path, project.url("derive.yaml").path) == 0)
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        let now = outputs(project)
        #expect(now.count == 1 && now != first, "the old output is deleted, the new one written: \(first) → \(now)")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    /// A state a linked manifest's build recorded before this change names the link's target:
    /// it is still this project's (its owner record is rewritten), not moved aside.
    @Test func aStateRecordedUnderTheLinksTargetIsStillTheProjects() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        let target = elsewhere.appendingPathComponent("derive.yaml")
        try Data(Self.hashed(width: 100).utf8).write(to: target)
        try FileManager.default.removeItem(at: project.url("derive.yaml"))
        try FileManager.default.createSymbolicLink(atPath: project.url("derive.yaml").path, withDestinationPath: target.path)
        #expect(try project.run(["build", "-q"]).status == 0)
        let real = try #require(realpath(target.path, nil))
        let resolved = String(cString: real)
        free(real)
        let store = try StateStore(folder: project.url(".derive/derive").path)
        try store.queue.write { db in
            try db.execute(sql: "DELETE FROM owner")
            try db.execute(sql: "INSERT INTO owner (manifest) VALUES (?)", arguments: [resolved])
        }
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("Nothing to do") || text(build.stdout).hasPrefix("built 0"), "\(text(build.stdout)) \(build.stderr)")
        let aside = (try? FileManager.default.contentsOfDirectory(atPath: project.url(".derive/derive").path)) ?? []
        #expect(!aside.contains { $0.contains("foreign") }, "no state was moved aside: \(aside)")
        let owner = try StateStore(folder: project.url(".derive/derive").path).owner()
        #expect(owner == StateOwner.name(project.url("derive.yaml").path))
    }
}
