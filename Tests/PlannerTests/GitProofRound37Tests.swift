import Foundation
import Testing
import TestSupport
import Planner

/// Attack 36c on the git proof. L1: in a blobless partial clone, one blob HEAD names but the
/// repository lacks made `git ls-tree -l` fail (it reads each blob's header, and lazy fetching is
/// refused), so every file lost its proof, the one whose blob is there too, with the wrong reason
/// ("git could not list HEAD"). L2: a loose object holding another blob's valid content was called
/// "not committed to git as it is at HEAD" instead of damaged.
@Suite(.ownThreads, .serialized) struct GitProofRound37Tests {
    let base = GitProofTests()
    let round29 = GitProofRound29Tests()
    let round31 = GitProofRound31Tests()

    func bytes(_ count: Int) -> Data { Data((0..<count).map { _ in UInt8.random(in: 0...255) }) }

    /// `out/a.bin` and `out/b.bin` committed in a repository, as given; their SHA-256s.
    func repository(a: Data, b: Data) throws -> (root: URL, a: String, b: String) {
        let root = try base.folder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("out"), withIntermediateDirectories: true)
        try a.write(to: root.appendingPathComponent("out/a.bin"))
        try b.write(to: root.appendingPathComponent("out/b.bin"))
        #expect(try base.git(["init", "-q"], in: root) == 0)
        #expect(try base.git(["add", "-A"], in: root) == 0)
        #expect(try base.git(["commit", "-qm", "outputs"], in: root) == 0)
        return (root, ContentDigests.digest(a), ContentDigests.digest(b))
    }

    @Test func aBloblessCloneMissingOneBlobKeepsTheOthersProven() throws {
        let (origin, a, b) = try repository(a: bytes(3000), b: bytes(2000))
        defer { try? FileManager.default.removeItem(at: origin) }
        #expect(try base.git(["config", "uploadpack.allowFilter", "true"], in: origin) == 0)
        let parent = try base.folder()
        defer { try? FileManager.default.removeItem(at: parent) }
        #expect(try base.git(["clone", "-q", "--filter=blob:none", "--no-checkout", "file://" + origin.path, "clone"], in: parent) == 0)
        let clone = parent.appendingPathComponent("clone")
        // The clone fetches b's blob only; both files hold the committed bytes.
        #expect(try base.git(["cat-file", "-p", "HEAD:out/b.bin"], in: clone) == 0)
        try FileManager.default.createDirectory(at: clone.appendingPathComponent("out"), withIntermediateDirectories: true)
        for name in ["a.bin", "b.bin"] {
            try FileManager.default.copyItem(at: origin.appendingPathComponent("out/" + name), to: clone.appendingPathComponent("out/" + name))
        }
        let fileA = clone.appendingPathComponent("out/a.bin").path, fileB = clone.appendingPathComponent("out/b.bin").path
        for prefetched in [false, true] {
            let proof = GitProof(folder: clone.path, folders: [clone.appendingPathComponent("out").path])
            if prefetched { proof.prefetch([fileA, fileB]) }
            #expect(proof.proves(fileB, digest: b), "prefetched \(prefetched): the file whose blob is there: \(proof.whyUnproven(fileB))")
            #expect(!proof.proves(fileA, digest: a), "prefetched \(prefetched): a blob the clone lacks proved its file")
            let why = proof.whyUnproven(fileA)
            #expect(why == "it is committed to git at HEAD, but the repository does not hold that commit's copy of it", "prefetched \(prefetched): \(why)")
        }
    }

    /// Another blob's valid content under this blob's name (`git fsck`: hash-path mismatch),
    /// larger than this blob and smaller: damaged, and the honest neighbour still proven.
    @Test func aLooseObjectHoldingAnotherBlobIsDamaged() throws {
        for (sizeA, sizeB) in [(900, 1700), (1700, 900)] {
            let (root, a, b) = try repository(a: bytes(sizeA), b: bytes(sizeB))
            defer { try? FileManager.default.removeItem(at: root) }
            let idA = try round29.gitOutput(["rev-parse", "HEAD:out/a.bin"], in: root)
            let idB = try round29.gitOutput(["rev-parse", "HEAD:out/b.bin"], in: root)
            let objectB = try Data(contentsOf: round31.looseObject(idB, in: root))
            try round31.rewrite(round31.looseObject(idA, in: root)) { $0 = objectB }
            let fileA = root.appendingPathComponent("out/a.bin").path, fileB = root.appendingPathComponent("out/b.bin").path
            for prefetched in [false, true] {
                let proof = GitProof(folder: root.path, folders: [root.appendingPathComponent("out").path])
                if prefetched { proof.prefetch([fileA, fileB]) }
                let label = "a \(sizeA) bytes holding b's \(sizeB), prefetched \(prefetched)"
                #expect(!proof.proves(fileA, digest: a), "\(label): a damaged object proved its file")
                #expect(proof.whyUnproven(fileA).contains("the repository's copy of it is damaged"), "\(label): \(proof.whyUnproven(fileA))")
                #expect(proof.proves(fileB, digest: b), "\(label): the honest neighbour: \(proof.whyUnproven(fileB))")
            }
        }
    }
}
