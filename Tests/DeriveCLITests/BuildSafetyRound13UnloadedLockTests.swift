import Foundation
import Testing
import TestSupport

extension BuildSafetyRound13Tests {
    /// A neighbour whose manifest does not load (mid-edit) is asked whether its lock names the
    /// file at this manifest's index path as its index; that lock was read whole, without the
    /// `LockFile.maxBytes` bound every other lock read keeps (review of round 49): a 400 MiB file
    /// at its lock path took a plan's peak memory past 1 GB. Its size is looked at first now.
    @Test func aHugeFileAtAnUnloadedNeighboursLockIsNotReadIntoMemory() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("out"), withIntermediateDirectories: true)
        try project.write("out/index.json", "{}\n")   // a user's file at the index path: asked whose it is
        try project.write("n.yaml", "buckets: {{\n")   // a neighbour mid-edit
        try sparseFile(project, "n.lock", bytes: Self.bigFile)
        let (result, peak) = try runMeasured(project, ["plan"])
        #expect(peak > 0, "no VmHWM was read for derive")
        #expect(peak < Self.peakLimitKiB, "\(peak) KiB: the unloaded neighbour's lock was read whole")
        let said = text(result.stdout) + result.stderr
        #expect(result.status == 1 && said.contains("out/index.json"), "\(said)")
        #expect(try FileManager.default.attributesOfItem(atPath: project.url("n.lock").path)[.size] as? UInt64 == Self.bigFile)
    }
}
