import Foundation
import Testing
import TestSupport
import Planner

/// `GitProof`: a file is proven only when HEAD tracks exactly its bytes at its path (the git
/// object id of the bytes, computed with no filter, is the one `git ls-tree HEAD` lists); any git
/// that fails, hangs or answers garbage proves nothing.
@Suite(.ownThreads, .serialized) struct GitProofTests {
    /// A temporary folder, removed by the caller.
    func folder() throws -> URL {
        let url = (try ScratchFolder.make("gitproof"))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @discardableResult
    func git(_ arguments: [String], in folder: URL) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"] + arguments
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"]
        process.currentDirectoryURL = folder
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// A repository whose HEAD commits `out/a.bin` (and the file's SHA-256).
    func repository(objectFormat: String = "sha1") throws -> (root: URL, digest: String) {
        let root = try folder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("out"), withIntermediateDirectories: true)
        let bytes = Data("committed bytes\r\n".utf8)
        try bytes.write(to: root.appendingPathComponent("out/a.bin"))
        #expect(try git(["init", "-q", "--object-format=\(objectFormat)"], in: root) == 0)
        #expect(try git(["add", "-A"], in: root) == 0)
        #expect(try git(["commit", "-qm", "outputs"], in: root) == 0)
        return (root, ContentDigests.digest(bytes))
    }

    @Test func objectIdsAreGitsBlobIds() {
        // `printf 'hello\n' | git hash-object --stdin`, and the empty blob in both formats.
        #expect(GitProof.objectId(of: Data("hello\n".utf8)) == "ce013625030ba8dba906f756967f9e9ca394464a")
        #expect(GitProof.objectId(of: Data()) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        #expect(GitProof.objectId(of: Data(), length: 64) == "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813")
    }

    @Test func aFileCommittedAsItIsAtHeadIsProven() throws {
        for format in ["sha1", "sha256"] {
            let (root, digest) = try repository(objectFormat: format)
            defer { try? FileManager.default.removeItem(at: root) }
            let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
            #expect(proof.proves(root.appendingPathComponent("out/a.bin").path, digest: digest), "\(format): \(proof.whyNothing ?? "")")
            // The digest asked must be the file's: another one proves nothing.
            #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: String(repeating: "0", count: 64)))
        }
    }

    @Test func aModifiedOrUntrackedFileIsNotProven() throws {
        let (root, _) = try repository()
        defer { try? FileManager.default.removeItem(at: root) }
        let changed = Data("other bytes".utf8)
        try changed.write(to: root.appendingPathComponent("out/a.bin"))
        try changed.write(to: root.appendingPathComponent("out/b.bin"))
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: ContentDigests.digest(changed)))
        #expect(!proof.proves(root.appendingPathComponent("out/b.bin").path, digest: ContentDigests.digest(changed)))
    }

    @Test func noRepositoryProvesNothing() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let bytes = Data("x".utf8)
        try bytes.write(to: root.appendingPathComponent("a.bin"))
        let proof = GitProof(folder: root.path, folders: [root.path])
        #expect(!proof.proves(root.appendingPathComponent("a.bin").path, digest: ContentDigests.digest(bytes)))
        #expect(proof.whyNothing != nil)
    }

    /// A git that hangs is killed at the deadline; one that answers garbage (or a listing naming
    /// the file with the right id but in a shape git never prints) proves nothing.
    @Test func aHangingOrGarbageGitProvesNothing() throws {
        let (root, digest) = try repository()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("out/a.bin").path
        let id = GitProof.objectId(of: try Data(contentsOf: URL(fileURLWithPath: file)))
        func fakeGit(_ script: String) throws -> String {
            // It answers `rev-parse --show-toplevel` as git would, `cat-file --batch` (the blob
            // given back) by git itself, and `script` to the rest.
            let path = root.appendingPathComponent("fake-git-\(UUID().uuidString)").path
            let top = URL(fileURLWithPath: root.path).resolvingSymlinksInPath().path
            try Data("#!/bin/sh\ncase \"$*\" in *rev-parse*) echo '\(top)'; exit 0 ;; *cat-file*) exec /usr/bin/git \"$@\" ;; esac\n\(script)\n".utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            return path
        }
        let started = Date()
        let hanging = GitProof(folder: root.path, folders: [root.path], git: try fakeGit("exec sleep 30"), deadline: 1)
        #expect(!hanging.proves(file, digest: digest))
        #expect(Date().timeIntervalSince(started) < 15, "the deadline did not stop git")
        #expect(hanging.whyNothing?.contains("did not finish") == true, "\(hanging.whyNothing ?? "")")
        let garbage = GitProof(folder: root.path, folders: [root.path], git: try fakeGit("printf 'not a listing\\n'"))
        #expect(!garbage.proves(file, digest: digest))
        // One good entry after a garbage one: the whole answer is refused.
        let mixed = GitProof(folder: root.path, folders: [root.path], git: try fakeGit("printf 'garbage\\0000100644 blob \(id)\\tout/a.bin\\000'"))
        #expect(!mixed.proves(file, digest: digest))
        // The control: the same entry alone is a proof.
        let good = GitProof(folder: root.path, folders: [root.path], git: try fakeGit("printf '100644 blob \(id)\\tout/a.bin\\000'"))
        #expect(good.proves(file, digest: digest), "\(good.whyNothing ?? "")")
        let failing = GitProof(folder: root.path, folders: [root.path], git: try fakeGit("printf '100644 blob \(id)\\tout/a.bin\\000'; exit 1"))
        #expect(!failing.proves(file, digest: digest))
        let huge = GitProof(folder: root.path, folders: [root.path], git: try fakeGit("exec cat /dev/zero"), maxBytes: 1 << 16)
        #expect(!huge.proves(file, digest: digest))
    }
}
