import Foundation
import Testing
import TestSupport

/// Attack 38a's L3 and L4: symbolic links among the control files.
/// - L4: `ln -s derive.yaml site.yaml; derive build site.yaml` made a second state `.derive/site`
///   and refused every output of the same manifest: a manifest named through a link to a file in
///   its own folder is that file (its state, lock and name).
/// - L3: the index and the lock both links to one user file: validation said the index "is one of
///   Derive's own files"; it is the user's, reached through two links.
@Suite(.ownThreads) struct ManifestLinksRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func bytes(_ project: Project, _ names: [String]) -> [Data?] {
        names.map { FileManager.default.contents(atPath: project.url("out/" + $0).path) }
    }

    @Test func aManifestNamedThroughALinkBesideItIsTheFileItLeadsTo() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build"]).status == 0)
        let before = bytes(project, project.outputs + ["index.json"])
        let lock = FileManager.default.contents(atPath: project.url("derive.lock").path)
        try FileManager.default.createSymbolicLink(atPath: project.url("site.yaml").path, withDestinationPath: "derive.yaml")

        let build = try project.run(["build", "site.yaml"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!build.stderr.contains("not written by Derive"), "\(build.stderr)")
        #expect(!project.exists(".derive/site") && !project.exists("site.lock"), "a second state or lock for the same manifest")
        #expect(bytes(project, project.outputs + ["index.json"]) == before)
        #expect(FileManager.default.contents(atPath: project.url("derive.lock").path) == lock)
        // Both names agree that nothing is to do, and a chain of links beside it is the same file.
        try FileManager.default.createSymbolicLink(atPath: project.url("web.yaml").path, withDestinationPath: "site.yaml")
        for name in ["derive.yaml", "site.yaml", "web.yaml"] {
            let check = try project.run(["check", name])
            #expect(check.status == 0, "\(name): \(check.stderr)")
        }
        #expect(!project.exists(".derive/web") && !project.exists("web.lock"))
    }

    @Test func theIndexAndTheLockLinkedToOneUserFileAreNamedAsSuch() throws {
        let project = try Project()
        defer { project.remove() }
        try project.write("notes.txt", "precious\n")
        try FileManager.default.createDirectory(at: project.url("out"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: project.url("out/index.json").path, withDestinationPath: "../notes.txt")
        try FileManager.default.createSymbolicLink(atPath: project.url("derive.lock").path, withDestinationPath: "notes.txt")

        let validate = try project.run(["validate"])
        let said = String(decoding: validate.stdout, as: UTF8.self) + validate.stderr
        #expect(validate.status != 0)
        #expect(!said.contains("one of Derive's own files"), "\(said)")
        #expect(said.contains("the index out/index.json and the lock file derive.lock are one file, notes.txt"), "\(said)")
        #expect(said.contains("out/index.json is a symbolic link to ../notes.txt"), "\(said)")
        #expect(said.contains("derive.lock is a symbolic link to notes.txt"), "\(said)")
        #expect(try project.run(["build"]).status != 0)
        #expect(FileManager.default.contents(atPath: project.url("notes.txt").path) == Data("precious\n".utf8))
    }
}
