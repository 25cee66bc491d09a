import Foundation
import Planner
import Testing
import TestSupport

/// Attack 38a's H1: a path below a bucket's folder by its bytes whose rest is no key
/// (`out/../victim`) was used as named, so the kernel resolved it out of the bucket and a write
/// replaced a user's file outside the project. `RealDisk` refuses such a path in every operation.
@Suite(.ownThreads) struct DotSegmentConfinementTests {
    @Test func aPathThatClimbsOutOfABucketIsNeverResolved() throws {
        let base = (try ScratchFolder.make("derive-dotdot")).path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/proj/out/sub", withIntermediateDirectories: true)
        let notes = Data("user's notes\n".utf8)
        try notes.write(to: URL(fileURLWithPath: base + "/notes"))
        let disk = RealDisk(confiningTo: [base + "/proj/out"])
        for path in [base + "/proj/out/../../notes", base + "/proj/out/sub/../../../notes", base + "/proj/out/./../../notes"] {
            #expect(disk.stat(path) == nil, "stat resolved \(path)")
            #expect(disk.stats([path]) == [nil], "stats resolved \(path)")
            #expect(!disk.exists(path), "exists resolved \(path)")
            #expect((try? disk.read(path)) == nil, "read resolved \(path)")
            #expect((try? disk.head(path, bytes: 4)) == nil, "head resolved \(path)")
            #expect((try? disk.digestAndHead(path, headBytes: 4)) == nil, "digest resolved \(path)")
            #expect((try? disk.writeAtomically(Data("over".utf8), to: path, replacing: true)) == nil, "write resolved \(path)")
            #expect((try? disk.writeOutput(Data("over".utf8), to: path, replacing: true, replacingOnly: nil)) == nil, "output write resolved \(path)")
            #expect((try? disk.remove(path, ifDigest: ContentDigests.digest(notes))) == nil, "removal resolved \(path)")
            #expect((try? disk.remove(path)) == nil, "plain removal resolved \(path)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: base + "/notes")) == notes)
        }
        // A new file above the bucket is not made either.
        #expect((try? disk.writeAtomically(Data("new".utf8), to: base + "/proj/out/../new.jpg", replacing: false)) == nil)
        #expect(!FileManager.default.fileExists(atPath: base + "/proj/new.jpg"))
        // The bucket's own keys still work.
        try disk.writeAtomically(Data("mine".utf8), to: base + "/proj/out/sub/a.jpg", replacing: false)
        #expect(try disk.read(base + "/proj/out/sub/a.jpg") == Data("mine".utf8))
    }
}
