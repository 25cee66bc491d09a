import Foundation
import Testing
import TestSupport
import Planner

/// Gaps 28, 3: `GitProof` listed HEAD over whole bucket folders (`git ls-tree -r HEAD -- ./out`),
/// every committed file of every bucket, to prove a handful. It now asks for the candidate paths
/// only, as literal pathspecs (`GIT_LITERAL_PATHSPECS=1`: a name with `*`, `?`, `[` or a leading
/// `:` is a name, never a pattern nor magic), in batches bounded in argument bytes, under one
/// deadline and one bound on the answers together.
@Suite(.ownThreads, .serialized) struct GitProofPathspecGaps28Tests {
    let base = GitProofTests()

    /// A fake git that appends its arguments (one a line, then `--end`) and its
    /// GIT_LITERAL_PATHSPECS to `log`, and answers `answer`.
    func fakeGit(in root: URL, log: URL, answer: String) throws -> String {
        let path = root.appendingPathComponent("fake-git").path
        // `rev-parse --show-toplevel` is answered as git would, and `cat-file --batch` (the blob
        // given back) by git itself; neither is logged.
        let top = URL(fileURLWithPath: root.path).resolvingSymlinksInPath().path
        let script = "#!/bin/sh\ncase \"$*\" in *rev-parse*) echo '\(top)'; exit 0 ;; *cat-file*) exec /usr/bin/git \"$@\" ;; esac\n"
            + "for a in \"$@\"; do printf '%s\\n' \"$a\" >> '\(log.path)'; done\n"
            + "printf -- '--end %s\\n' \"$GIT_LITERAL_PATHSPECS\" >> '\(log.path)'\nprintf '\(answer)'\n"
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    /// Each run's arguments and its GIT_LITERAL_PATHSPECS.
    func runs(_ log: URL) throws -> [(arguments: [String], literal: String)] {
        let lines = try String(contentsOf: log, encoding: .utf8).components(separatedBy: "\n")
        var result: [(arguments: [String], literal: String)] = []
        var current: [String] = []
        for line in lines {
            if line.hasPrefix("--end") {
                result.append((current, String(line.dropFirst(6))))
                current = []
            } else if !line.isEmpty {
                current.append(line)
            }
        }
        return result
    }

    @Test func onlyTheCandidatePathIsAskedForLiterally() throws {
        let (root, digest) = try base.repository()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("out/a.bin").path
        let id = GitProof.objectId(of: try Data(contentsOf: URL(fileURLWithPath: file)))
        let log = root.appendingPathComponent("log.txt")
        let git = try fakeGit(in: root, log: log, answer: "100644 blob \(id)\\tout/a.bin\\000")
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path], git: git)
        #expect(proof.proves(file, digest: digest), "\(proof.whyNothing ?? "")")
        let all = try runs(log)
        #expect(all.count == 1, "\(all)")
        let arguments = all.first?.arguments ?? []
        #expect(arguments.contains("ls-tree") && arguments.contains("HEAD"), "\(arguments)")
        let specs = Array(arguments.drop { $0 != "--" }.dropFirst())
        #expect(specs == ["out/a.bin"], "\(arguments)")
        #expect(all.first?.literal == "1", "\(all)")
    }

    @Test func candidatesAreAskedInBatchesBoundedInBytes() throws {
        let (root, digest) = try base.repository()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("out/a.bin").path
        let id = GitProof.objectId(of: try Data(contentsOf: URL(fileURLWithPath: file)))
        let log = root.appendingPathComponent("log.txt")
        let git = try fakeGit(in: root, log: log, answer: "100644 blob \(id)\\tout/a.bin\\000")
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path], git: git, batchBytes: 100)
        let others = (0..<40).map { root.appendingPathComponent("out/file-\($0).bin").path }
        proof.prefetch(others + [file])
        #expect(proof.proves(file, digest: digest), "\(proof.whyNothing ?? "")")
        #expect(!proof.proves(others[3], digest: digest))
        let all = try runs(log)
        #expect(all.count > 1, "\(all.count)")
        var asked: [String] = []
        for run in all {
            let specs = Array(run.arguments.drop { $0 != "--" }.dropFirst())
            #expect(!specs.isEmpty && specs.reduce(0) { $0 + $1.utf8.count + 1 } <= 100, "\(specs)")
            asked += specs
        }
        // Each candidate once, none asked again by `proves`.
        #expect(asked.sorted() == (others + [file]).map { "out/" + ($0 as NSString).lastPathComponent }.sorted(), "\(asked)")
    }

    /// Names git would read as patterns or magic are names.
    @Test func namesLikePatternsAreProvenAsNames() throws {
        let root = try base.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("out"), withIntermediateDirectories: true)
        let names = ["*.bin", "[ab].bin", "a.bin", ":(glob)c.bin", "?.bin"]
        for name in names { try Data("bytes of \(name)".utf8).write(to: root.appendingPathComponent("out/" + name)) }
        try Data(":!x".utf8).write(to: root.appendingPathComponent(":!x"))
        #expect(try base.git(["init", "-q"], in: root) == 0)
        #expect(try base.git(["add", "-A"], in: root) == 0)
        #expect(try base.git(["commit", "-qm", "outputs"], in: root) == 0)
        // Changed after the commit: `a.bin` is not what HEAD holds (a pattern must not find another file's blob).
        try Data("changed".utf8).write(to: root.appendingPathComponent("out/a.bin"))
        let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path, root.path])
        for name in names where name != "a.bin" {
            let path = root.appendingPathComponent("out/" + name).path
            #expect(proof.proves(path, digest: ContentDigests.digest(Data("bytes of \(name)".utf8))), "\(name): \(proof.whyNothing ?? "")")
        }
        #expect(!proof.proves(root.appendingPathComponent("out/a.bin").path, digest: ContentDigests.digest(Data("changed".utf8))))
        #expect(proof.proves(root.appendingPathComponent(":!x").path, digest: ContentDigests.digest(Data(":!x".utf8))), "\(proof.whyNothing ?? "")")
    }
}
