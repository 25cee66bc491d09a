import Foundation
import Testing
import TestSupport
import Planner
import CChildProcess

/// Attack round 31 on the git proof. F1: `git ls-tree -l` reads only an object's header, so a
/// truncated or corrupt loose object, or a damaged pack, still showed the blob's size: a damaged
/// clone "proved" a file git could not give back, and Derive replaced the user's file. A file is
/// proven only once git has given its blob back and the bytes hash to the blob's id. F9: a
/// repository git refuses for its owner is named as such.
@Suite(.ownThreads, .serialized) struct GitProofRound31Tests {
    let base = GitProofTests()
    let round29 = GitProofRound29Tests()

    /// A repository (in `format`) committing `out/a.bin` (to be damaged) and `out/b.bin` (the
    /// honest neighbour), each 20 000 random bytes (so their objects are large enough to cut).
    func repository(_ format: String) throws -> (root: URL, a: String, b: String, aId: String) {
        let root = try base.folder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("out"), withIntermediateDirectories: true)
        var digests: [String] = []
        for name in ["a", "b"] {
            let bytes = Data((0..<20_000).map { _ in UInt8.random(in: 0...255) })
            try bytes.write(to: root.appendingPathComponent("out/\(name).bin"))
            digests.append(ContentDigests.digest(bytes))
        }
        #expect(try base.git(["init", "-q", "--object-format=\(format)"], in: root) == 0)
        #expect(try base.git(["add", "-A"], in: root) == 0)
        #expect(try base.git(["commit", "-qm", "outputs"], in: root) == 0)
        let id = try round29.gitOutput(["rev-parse", "HEAD:out/a.bin"], in: root)
        #expect(id.count == (format == "sha256" ? 64 : 40))
        return (root, digests[0], digests[1], id)
    }

    func looseObject(_ id: String, in root: URL) -> URL {
        root.appendingPathComponent(".git/objects/\(id.prefix(2))/\(id.dropFirst(2))")
    }

    /// Rewrites the file at `url` (git makes objects read-only) with `change` applied.
    func rewrite(_ url: URL, _ change: (inout Data) -> Void) throws {
        var data = try Data(contentsOf: url)
        change(&data)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        try data.write(to: url)
    }

    /// The attack's premise: git still lists the damaged blob with its size (it reads only the header).
    func expectListedWithSize(_ root: URL) throws {
        let listing = try round29.gitOutput(["ls-tree", "-l", "HEAD", "out/a.bin"], in: root)
        #expect(listing.contains(" 20000\t"), "git no longer shows the size: \(listing)")
    }

    /// The damaged file is not proven (with the true reason), its honest neighbour is, both when
    /// asked alone and when prefetched together (one damaged blob must not stop the others).
    func expectDamageSeen(_ root: URL, a: String, b: String, _ label: String) {
        let fileA = root.appendingPathComponent("out/a.bin").path, fileB = root.appendingPathComponent("out/b.bin").path
        let alone = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        #expect(!alone.proves(fileA, digest: a), "\(label): git cannot give the blob back, yet the file was proven")
        #expect(alone.whyUnproven(fileA).contains("the repository's copy of it is damaged"), "\(label): \(alone.whyUnproven(fileA))")
        #expect(alone.proves(fileB, digest: b), "\(label): the honest neighbour: \(alone.whyUnproven(fileB))")
        let together = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
        together.prefetch([fileA, fileB])
        #expect(!together.proves(fileA, digest: a), "\(label), prefetched: the damaged file was proven")
        #expect(together.proves(fileB, digest: b), "\(label), prefetched: the honest neighbour: \(together.whyUnproven(fileB))")
    }

    @Test func aTruncatedLooseObjectProvesNothing() throws {
        for format in ["sha1", "sha256"] {
            let (root, a, b, id) = try repository(format)
            defer { try? FileManager.default.removeItem(at: root) }
            // The first bytes kept: the header still inflates.
            try rewrite(looseObject(id, in: root)) { $0 = $0.prefix($0.count / 2) }
            try expectListedWithSize(root)
            expectDamageSeen(root, a: a, b: b, "\(format), truncated")
        }
    }

    @Test func aLooseObjectWithACorruptTailProvesNothing() throws {
        for format in ["sha1", "sha256"] {
            let (root, a, b, id) = try repository(format)
            defer { try? FileManager.default.removeItem(at: root) }
            try rewrite(looseObject(id, in: root)) { data in
                for index in (data.count - 64)..<data.count { data[index] ^= 0x5a }
            }
            try expectListedWithSize(root)
            expectDamageSeen(root, a: a, b: b, "\(format), corrupt tail")
        }
    }

    /// A loose object file holding another blob of the same size (its zlib stream intact): git
    /// gives back other bytes without a word; only their hash shows it.
    @Test func aLooseObjectHoldingOtherBytesProvesNothing() throws {
        for format in ["sha1", "sha256"] {
            let (root, a, b, id) = try repository(format)
            defer { try? FileManager.default.removeItem(at: root) }
            try Data((0..<20_000).map { _ in UInt8.random(in: 0...255) }).write(to: root.appendingPathComponent("other.bin"))
            let other = try round29.gitOutput(["hash-object", "-w", "other.bin"], in: root)
            try rewrite(looseObject(id, in: root)) { $0 = (try? Data(contentsOf: looseObject(other, in: root))) ?? Data() }
            try expectListedWithSize(root)
            expectDamageSeen(root, a: a, b: b, "\(format), other bytes")
        }
    }

    @Test func aDamagedPackProvesNothing() throws {
        for format in ["sha1", "sha256"] {
            let (root, a, b, id) = try repository(format)
            defer { try? FileManager.default.removeItem(at: root) }
            #expect(try base.git(["gc", "-q"], in: root) == 0)
            #expect(!FileManager.default.fileExists(atPath: looseObject(id, in: root).path), "\(format): the blob is still loose")
            let packs = root.appendingPathComponent(".git/objects/pack")
            let names = try FileManager.default.contentsOfDirectory(atPath: packs.path)
            let index = try #require(names.first { $0.hasSuffix(".idx") })
            // `ID TYPE SIZE SIZE-IN-PACK OFFSET`: the blob's data damaged well past its entry's header.
            let listing = try round29.gitOutput(["verify-pack", "-v", packs.appendingPathComponent(index).path], in: root)
            let line = try #require(listing.split(separator: "\n").first { $0.hasPrefix(id) })
            let offset = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[4]))
            try rewrite(packs.appendingPathComponent(index.replacingOccurrences(of: ".idx", with: ".pack"))) { data in
                for position in (offset + 5_000)..<(offset + 5_016) { data[position] ^= 0x5a }
            }
            try expectListedWithSize(root)
            expectDamageSeen(root, a: a, b: b, "\(format), damaged pack")
        }
    }

    /// A git that fails before naming the blob has not shown it damaged: the reason says only
    /// that git ended before giving it back.
    @Test func aGitEndingBeforeAnsweringIsNotCalledDamage() throws {
        let (root, a, _, _) = try repository("sha1")
        defer { try? FileManager.default.removeItem(at: root) }
        let fake = root.appendingPathComponent("fake-git").path
        try Data("#!/bin/sh\ncase \"$*\" in *cat-file*) exit 1 ;; esac\nexec /usr/bin/git \"$@\"\n".utf8).write(to: URL(fileURLWithPath: fake))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
        let proof = GitProof(folder: root.path, folders: [root.path], git: fake)
        let file = root.appendingPathComponent("out/a.bin").path
        #expect(!proof.proves(file, digest: a))
        #expect(proof.whyUnproven(file) == "it is committed to git at HEAD, but git ended before giving it back (`git fsck` names any damage)",
                "\(proof.whyUnproven(file))")
    }

    /// F6: what GitCommand starts is bound to the thread that started it (and waits for it): once
    /// that thread ends (as when derive is killed, even with SIGKILL), the program and what it
    /// started die within moments. Here the thread ends on purpose without waiting.
    @Test func aProgramAndItsChildrenDieWithTheThreadThatStartedThem() throws {
        let root = try base.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let pidFile = root.appendingPathComponent("grandchild").path
        final class Started: @unchecked Sendable { var pid: pid_t = 0 }
        let started = Started()
        let thread = Thread {
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(null) }
            let words = ["/bin/sh", "-c", "sleep 30 & echo $! > '\(pidFile)'; exec sleep 30"]
            let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
            defer { for case let pointer? in argv { free(pointer) } }
            let envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
            defer { free(envp[0]) }
            started.pid = derive_spawn_bound_to_thread("/bin/sh", argv, envp, null, null, null)
            // The thread ends once the program has started its own child.
            for _ in 0..<500 where (try? String(contentsOfFile: pidFile, encoding: .utf8))?.hasSuffix("\n") != true { usleep(10_000) }
        }
        thread.start()
        while !thread.isFinished { usleep(10_000) }
        let supervisor = started.pid
        try #require(supervisor > 0, "the program did not start: \(supervisor)")
        let grandchild = try #require(pid_t((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(-supervisor, SIGKILL); kill(grandchild, SIGKILL) }
        let ended = Date()
        var status: Int32 = 0
        var reaped = waitpid(supervisor, &status, WNOHANG)
        while reaped == 0, Date().timeIntervalSince(ended) < 2 { usleep(10_000); reaped = waitpid(supervisor, &status, WNOHANG) }
        #expect(reaped == supervisor, "the program still runs 2 s after the thread that started it ended")
        while LiveProcess.isRunning(grandchild), Date().timeIntervalSince(ended) < 2 { usleep(10_000) }
        #expect(!LiveProcess.isRunning(grandchild), "the program's child still runs 2 s after the thread that started it ended")
    }

    /// F9: git refuses a repository another user owns (`safe.directory`); the reason is named, and
    /// nothing is proven (Derive never adds a `safe.directory` exception).
    @Test func aRepositoryOfAnotherOwnerIsNamed() throws {
        let (root, a, _, _) = try repository("sha1")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("out/a.bin").path
        let expected = "git refuses the repository at \(root.path) because another user owns it (git's safe.directory); nothing is proven"
        let fake = root.appendingPathComponent("fake-git").path
        try Data("#!/bin/sh\nprintf \"fatal: detected dubious ownership in repository at '%s'\\n\" \"$PWD\" >&2\nexit 128\n".utf8)
            .write(to: URL(fileURLWithPath: fake))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
        let faked = GitProof(folder: root.path, folders: [root.path], git: fake)
        #expect(!faked.proves(file, digest: a))
        #expect(faked.whyUnproven(file) == expected, "\(faked.whyUnproven(file))")
        #expect(faked.whyNothing == expected, "\(faked.whyNothing ?? "")")
        // The real refusal, where the test may give the repository away (as root).
        if getuid() == 0 {
            #expect(chown(root.path, 12_345, 12_345) == 0)
            let real = GitProof(folder: root.path, folders: [root.path])
            #expect(!real.proves(file, digest: a))
            #expect(real.whyUnproven(file) == expected, "\(real.whyUnproven(file))")
        }
    }
}

/// Whether a process runs, by /proc (a zombie waiting for its reaper has ended).
enum LiveProcess {
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
