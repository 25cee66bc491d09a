import Foundation
import Testing
import TestSupport
import Planner

/// Attack round 29 on the git proof: a repository Derive only reads must not run a program
/// (F1: a partial clone's lazy fetch runs `remote.*.uploadpack`), a blob HEAD names but the
/// repository lacks proves nothing (F2), the deadline holds against git's children (F3), and a
/// file is asked about where it really is: a bucket linked outside the repository proves nothing
/// (F5), a bucket outside the repository does not stop the others' proof (F6), a folder that is
/// not a bucket (a moved bucket's old folder) is asked about too (F7).
@Suite(.ownThreads, .serialized) struct GitProofRound29Tests {
    let base = GitProofTests()
    func folder() throws -> URL { try base.folder() }
    @discardableResult
    func git(_ arguments: [String], in folder: URL) throws -> Int32 { try base.git(arguments, in: folder) }

    func gitOutput(_ arguments: [String], in folder: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"]
        process.currentDirectoryURL = folder
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func write(_ text: String, _ path: String, in root: URL) throws -> String {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return ContentDigests.digest(Data(text.utf8))
    }

    func commitAll(_ root: URL) throws {
        #expect(try git(["init", "-q"], in: root) == 0)
        #expect(try git(["add", "-A"], in: root) == 0)
        #expect(try git(["commit", "-qm", "outputs"], in: root) == 0)
    }

    func removeObject(_ id: String, in root: URL) throws {
        let path = root.appendingPathComponent(".git/objects/\(id.prefix(2))/\(id.dropFirst(2))")
        try FileManager.default.removeItem(at: path)
    }

    @Test func aPartialClonesLazyFetchRunsNothing() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let digest = try write("committed\n", "out/a.bin", in: root)
        _ = try write("other\n", "src/b.bin", in: root)
        try commitAll(root)
        // What an unpacked project could carry: a partial clone missing a tree, whose promisor
        // remote's upload-pack is a command of its choosing.
        try removeObject(try gitOutput(["rev-parse", "HEAD:out"], in: root), in: root)
        let marker = root.appendingPathComponent("RAN").path
        for (key, value) in [("core.repositoryformatversion", "1"), ("extensions.partialclone", "origin"), ("remote.origin.url", root.path),
                             ("remote.origin.promisor", "true"), ("remote.origin.uploadpack", "touch \(marker); git-upload-pack")] {
            #expect(try git(["config", key, value], in: root) == 0)
        }
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest))
        #expect(!FileManager.default.fileExists(atPath: marker), "git ran the repository's upload-pack command")
        _ = try GitCommand.run(["cat-file", "-p", "HEAD:out"], in: root.path, deadline: 20, maxBytes: 1 << 20)
        #expect(!FileManager.default.fileExists(atPath: marker), "git ran the repository's upload-pack command")
    }

    @Test func aBlobTheRepositoryLacksProvesNothing() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let digest = try write("committed\n", "out/a.bin", in: root)
        let kept = try write("kept\n", "out/b.bin", in: root)
        try commitAll(root)
        try removeObject(try gitOutput(["rev-parse", "HEAD:out/a.bin"], in: root), in: root)
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest))
        #expect(proof.whyUnproven(root.appendingPathComponent("out/a.bin").path).contains("does not hold"))
        // The control: its neighbour, whose blob is there, is proven.
        #expect(proof.proves(root.appendingPathComponent("out/b.bin").path, digest: kept), "\(proof.whyNothing ?? "")")
    }

    /// Attack round 31's F2: a `git replace` ref let another object of the same size stand in for
    /// the blob HEAD names (deleted), so the file was proven and replaced, its bytes lost.
    @Test func aReplaceRefProvesNothing() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let digest = try write("committed\n", "out/a.bin", in: root)
        try commitAll(root)
        let original = try gitOutput(["rev-parse", "HEAD:out/a.bin"], in: root)
        _ = try write("stand-in!\n", "other.bin", in: root)
        let standIn = try gitOutput(["hash-object", "-w", "other.bin"], in: root)
        #expect(try git(["replace", original, standIn], in: root) == 0)
        try removeObject(original, in: root)
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest))
    }

    /// git killed at the deadline with every process it started, even one holding its output.
    @Test func theDeadlineHoldsAgainstGitsChildren() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let digest = try write("committed\n", "out/a.bin", in: root)
        for script in ["(sleep 30) & exec sleep 30", "sleep 30 & printf ''; exit 0", "sleep 30 >&2 & exit 0"] {
            let fake = root.appendingPathComponent("fake-git-\(UUID().uuidString)").path
            try Data("#!/bin/sh\n\(script)\n".utf8).write(to: URL(fileURLWithPath: fake))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
            let started = Date()
            let proof = GitProof(folder: root.path, folders: [root.path], git: fake, deadline: 1)
            #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest))
            #expect(Date().timeIntervalSince(started) < 10, "'\(script)': the deadline did not stop git's children")
        }
    }

    @Test func aBucketLinkedOutsideTheRepositoryProvesNothing() throws {
        let base = try folder()
        defer { try? FileManager.default.removeItem(at: base) }
        let root = base.appendingPathComponent("repo")
        let digest = try write("committed\n", "out/a.bin", in: root)
        try commitAll(root)
        // The bucket now leads outside, to a folder holding the same bytes.
        _ = try write("committed\n", "elsewhere/a.bin", in: base)
        try FileManager.default.removeItem(at: root.appendingPathComponent("out"))
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("out").path, withDestinationPath: "../elsewhere")
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        let file = root.appendingPathComponent("out/a.bin").path
        #expect(!proof.proves(file, digest: digest))
        #expect(proof.whyUnproven(file).contains("outside the git repository"), "\(proof.whyUnproven(file))")
    }

    @Test func aBucketOutsideTheRepositoryLeavesTheOthersProven() throws {
        let base = try folder()
        defer { try? FileManager.default.removeItem(at: base) }
        let root = base.appendingPathComponent("repo")
        let digest = try write("committed\n", "out/a.bin", in: root)
        try commitAll(root)
        let outside = try write("photo\n", "photos/p.bin", in: base)
        let proof = GitProof(folder: root.path, folders: [base.appendingPathComponent("photos").path, root.appendingPathComponent("out").path])
        #expect(proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest), "\(proof.whyNothing ?? "")")
        let photo = base.appendingPathComponent("photos/p.bin").path
        #expect(!proof.proves(photo, digest: outside))
        #expect(proof.whyUnproven(photo).contains("outside the git repository"), "\(proof.whyUnproven(photo))")
    }

    @Test func aCommittedLinkedBucketIsAskedWhereItsFilesAre() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let digest = try write("committed\n", "pub/img/a.bin", in: root)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("out").path, withDestinationPath: "pub/img")
        try commitAll(root)
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest), "\(proof.whyUnproven(root.appendingPathComponent("out/a.bin").path))")
    }

    @Test func aFolderThatIsNoBucketIsAskedToo() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let digest = try write("committed\n", "old/a.bin", in: root)
        let untracked = "loose\n"
        try commitAll(root)
        _ = try write(untracked, "old/b.bin", in: root)
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(proof.proves(root.appendingPathComponent("old/a.bin").path, digest: digest), "\(proof.whyUnproven(root.appendingPathComponent("old/a.bin").path))")
        #expect(!proof.proves(root.appendingPathComponent("old/b.bin").path, digest: ContentDigests.digest(Data(untracked.utf8))))
        #expect(proof.whyUnproven(root.appendingPathComponent("old/b.bin").path) == "it is not committed to git as it is at HEAD")
    }

    /// Names are matched literally: a folder `o[u]t` and a file `x*.jpg` are not patterns.
    @Test func namesAreNotPatterns() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let star = try write("star\n", "o[u]t/x*.jpg", in: root)
        try commitAll(root)
        let loose = try write("loose\n", "o[u]t/xa.jpg", in: root)
        _ = try write("other\n", "out/xa.jpg", in: root)
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("o[u]t").path])
        #expect(proof.proves(root.appendingPathComponent("o[u]t/x*.jpg").path, digest: star), "\(proof.whyNothing ?? "")")
        #expect(!proof.proves(root.appendingPathComponent("o[u]t/xa.jpg").path, digest: loose))
    }
}
