import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 51c's 7 (issue 15): a no-op `build` beside 64 sibling projects opened each sibling's
/// manifest 13 times (every check of the load, and every neighbour it loaded, read it again),
/// and its cost grew with the neighbourhood. One load is one snapshot (`ReadSnapshot`): each
/// file is read once per load. Counted by the kernel (inotify's IN_OPEN on each sibling's
/// manifest), so the test counts what the binary does, not what it says.
@Suite(.ownThreads) struct SiblingReadsOnceRound52Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          www: {path: www, acl: public-read}
        derivatives:
          - from: src/*.jpg
            process: image/resize,w_8
            to: www/pics/{name}.jpg
            acl: public-read

        """

    /// Opens of each watched file while `body` runs, by the kernel's count (any process).
    static func opens(of paths: [String], during body: () throws -> Void) throws -> [String: Int] {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        try #require(fd >= 0, "inotify_init1 failed")
        defer { close(fd) }
        var names: [Int32: String] = [:]
        for path in paths {
            let watch = inotify_add_watch(fd, path, UInt32(IN_OPEN))
            try #require(watch >= 0, "cannot watch \(path)")
            names[watch] = path
        }
        try body()
        var counts: [String: Int] = Dictionary(uniqueKeysWithValues: paths.map { ($0, 0) })
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            while offset + 16 <= count {
                // struct inotify_event: wd, mask, cookie, len, then len bytes of name.
                let watch = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) }
                let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                let length = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self) }
                if mask & UInt32(IN_OPEN) != 0, let path = names[watch] { counts[path, default: 0] += 1 }
                offset += 16 + Int(length)
            }
        }
        return counts
    }

    @Test func aNoOpBesideSiblingProjectsOpensEachSiblingsManifestOncePerReader() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("p")
        try FileManager.default.createDirectory(at: project.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: project.appendingPathComponent("src/l.jpg"))
        try Data(Self.manifest.utf8).write(to: project.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: project)
        #expect(built.status == 0, "\(said(built))")
        // Attack 51c's layout: valid 3-line sibling manifests below the project's folder.
        var siblings: [String] = []
        for index in 0..<6 {
            let folder = project.appendingPathComponent("a\(index)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data("version: 1\nbuckets:\n  src: {path: ../src}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            siblings.append(folder.appendingPathComponent("derive.yaml").path)
        }
        // The witness the next build answers from is kept only when nothing it stamps changed in the
        // last second (a change within the file system's clock resolution is not trusted): a no-op
        // straight after the siblings were written planned in full again, and opened each twice as often.
        Thread.sleep(forTimeInterval: 1.2)
        let first = try CLI.run(["build"], in: project)
        #expect(first.status == 0 && said(first).contains("Nothing to do"), "\(said(first))")
        var noOp: CLI.Result?
        let counts = try Self.opens(of: siblings) { noOp = try CLI.run(["build"], in: project) }
        let answered = try #require(noOp)
        #expect(answered.status == 0 && said(answered).contains("Nothing to do"), "\(said(answered))")
        // Once by each reader of a neighbour (its text, its lock and state, and one load, whether
        // it is asked of as a neighbour or as a nearby project: `ManifestLoader.neighbourLoad`),
        // however many checks ask; the old searches opened it 13 times, and loading it once per
        // asker 4 times (attack 53c's F3).
        for sibling in siblings {
            #expect((1...3).contains(counts[sibling] ?? 0), "\(sibling) opened \(counts[sibling] ?? 0) times by one no-op")
        }
    }
}
