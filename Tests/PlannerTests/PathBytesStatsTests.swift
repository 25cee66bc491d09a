import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Confinement
@testable import Planner

/// The no-op check stats the witness's outputs from their bytes (issue 15): `RealDisk.stats(_:in:)`
/// finds each path's root and key on the bytes and stats from the root's descriptor. It must
/// answer exactly as `stats(_:)` over the same paths as Strings (and `stat` of each alone), for any
/// run of them: links on the way or at the end, `.`/`..`/empty parts, nested roots, paths under
/// no root, names with quotes, backslashes, tabs and other scripts, folders alternating.
@Suite(.ownThreads) struct PathBytesStatsTests {
    @Test func statsFromBytesAnswerAsStatsFromStrings() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("derive-pathbytes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for folder in ["photos/sub", "photos/nested/deep", "site/d0", "site/d1", "outside/x"] {
            try FileManager.default.createDirectory(atPath: base + "/" + folder, withIntermediateDirectories: true)
        }
        let files = ["photos/a.jpg", "photos/sub/b.jpg", "photos/nested/c.jpg", "photos/nested/deep/d.jpg", "site/e.jpg",
                     "site/d0/s0.a.jpg", "site/d0/s0.b.jpg", "site/d1/s1.a.jpg", "site/d1/q\"u\\o\tte.jpg", "site/d1/é🙂.jpg",
                     "outside/f.txt", "outside/x/g.txt"]
        for (index, file) in files.enumerated() {
            try Data(repeating: 7, count: index + 1).write(to: URL(fileURLWithPath: base + "/" + file))
        }
        // A link to a file, a link to a folder inside the bucket, a link out of it.
        try FileManager.default.createSymbolicLink(atPath: base + "/site/link.jpg", withDestinationPath: base + "/site/e.jpg")
        try FileManager.default.createSymbolicLink(atPath: base + "/site/d2", withDestinationPath: base + "/site/d0")
        try FileManager.default.createSymbolicLink(atPath: base + "/site/away", withDestinationPath: base + "/outside")
        let disk = RealDisk(confiningTo: [base + "/photos", base + "/photos/nested", base + "/site"])
        let names = ["photos/a.jpg", "site/e.jpg", "photos/nested/c.jpg", "outside/f.txt", "photos/sub/b.jpg", "photos/missing.jpg",
                     "site/link.jpg", "photos/nested/deep/d.jpg", "site/d0", "photos/a.jpg", "photos/sub", "site/e.jpg/x", "outside/none",
                     "site/d0/s0.a.jpg", "site/d0/s0.b.jpg", "site/d1/s1.a.jpg", "site/d0/s0.a.jpg", "site/d1/q\"u\\o\tte.jpg",
                     "site/d1/é🙂.jpg", "site/d2/s0.a.jpg", "site/away/f.txt", "site/away/x/g.txt", "site/../outside/f.txt",
                     "site/d0/../d0/s0.a.jpg", "site/./e.jpg", "site//e.jpg", "site/d0/", "photos/nested/../a.jpg", "outside/x/g.txt",
                     "site", "site/", "photos/nested", "site/d1/missing", "site/d9/none.jpg", "site/d0/s0.b.jpg"]
        let paths = names.map { base + "/" + $0 } + ["relative/site/e.jpg", "/", ""]
        let bytes = PathBytes(paths)
        #expect(bytes.strings == paths)
        let slow = disk.stats(paths)
        #expect(disk.stats(bytes, in: 0..<paths.count) == slow)
        #expect(slow == paths.map { disk.stat($0) })
        // Every run of them, as the no-op's parallel runs split the list.
        for start in 0..<paths.count {
            for end in start...paths.count where (end - start) % 3 == 0 || end == paths.count {
                #expect(disk.stats(bytes, in: start..<end) == Array(slow[start..<end]), "\(start)..<\(end)")
            }
        }
        // Some answers by name, so equal wrong answers cannot pass.
        let size = { (name: String) in slow[names.firstIndex(of: name)!]?.size }
        #expect(size("site/d0/s0.a.jpg") == 6 && size("site/d1/q\"u\\o\tte.jpg") == 9 && size("site/d1/é🙂.jpg") == 10)
        #expect(size("site/link.jpg") == nil && size("site/d2/s0.a.jpg") == nil && size("site/away/f.txt") == nil)
        #expect(size("site/../outside/f.txt") == nil && size("site/./e.jpg") == nil && size("outside/f.txt") == 11)
        // A disk that is not a real one answers through its Strings.
        #expect(StringsOnlyDisk(base: disk).stats(bytes, in: 3..<9) == Array(slow[3..<9]))
    }
}

/// A disk that forwards `stats(_:)` only: `stats(_:in:)` is the protocol's default.
struct StringsOnlyDisk: Disk {
    let base: RealDisk
    func stat(_ path: String) -> FileStat? { base.stat(path) }
    func stats(_ paths: [String]) -> [FileStat?] { base.stats(paths) }
    func exists(_ path: String) -> Bool { base.exists(path) }
    func read(_ path: String) throws -> Data { try base.read(path) }
    func read(_ path: String, maxBytes: Int) throws -> Data { try base.read(path, maxBytes: maxBytes) }
    func digestAndHead(_ path: String, headBytes: Int) throws -> (digest: String, head: Data) { try base.digestAndHead(path, headBytes: headBytes) }
    func head(_ path: String, bytes: Int) throws -> Data { try base.head(path, bytes: bytes) }
    func writeAtomically(_ data: Data, to path: String, replacing: Bool) throws -> [String] { try base.writeAtomically(data, to: path, replacing: replacing) }
    func writeAtomically(_ data: Data, to path: String, replacingOnly digest: String) throws -> [String] {
        try base.writeAtomically(data, to: path, replacingOnly: digest)
    }
    func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?) throws
        -> (created: [String], stat: FileStat?, identity: FileIdentity?) {
        try base.writeOutput(data, to: path, replacing: replacing, replacingOnly: digest)
    }
    func remove(_ path: String, ifDigest digest: String) throws -> Bool { try base.remove(path, ifDigest: digest) }
    func remove(_ path: String, ifDigest digest: String, identity: FileIdentity?) throws -> Bool { try base.remove(path, ifDigest: digest, identity: identity) }
    func remove(_ path: String) throws { try base.remove(path) }
    func removeEmptyFolder(_ path: String) -> Bool { base.removeEmptyFolder(path) }
    func removeStaleTemporaries(in folder: String, named names: PathSet, listOnly: Bool, digests: (String) -> Set<String>) -> [String] {
        base.removeStaleTemporaries(in: folder, named: names, listOnly: listOnly, digests: digests)
    }
    func mayHoldTemporaries(in folder: String) -> Bool { base.mayHoldTemporaries(in: folder) }
    func now() -> Int64 { base.now() }
    func keys(inFolder folder: String, skipping: [String]) -> [String]? { base.keys(inFolder: folder, skipping: skipping) }
    func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        base.entries(inFolder: folder, skipping: skipping)
    }
}
