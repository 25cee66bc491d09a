import Foundation
import Testing
import TestSupport

/// Attack 52c's 1 (issue 15): a no-op beside sibling projects read each sibling's state database
/// four times (its header twice, by the state check and by `holdsDeriveState`; its owner record
/// twice more, by two checks of one load) and listed the shared folder once more for each
/// sibling's own load (`manifestCandidates`). One load is one snapshot (`ReadSnapshot`): the
/// header and the owner record are read once each. Counted by the kernel (inotify's IN_OPEN).
@Suite(.ownThreads) struct SiblingStateReadsRound53Tests {
    @Test func aNoOpOpensEachSiblingsStateDatabaseOnceForItsHeaderAndOnceForItsOwner() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("p")
        try FileManager.default.createDirectory(at: project.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: project.appendingPathComponent("src/l.jpg"))
        try Data(SiblingReadsOnceRound52Tests.manifest.utf8).write(to: project.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: project)
        #expect(built.status == 0, "\(said(built))")
        // Sibling projects in the same folder, each built (a state of its own, no outputs).
        for index in 1...3 {
            try Data("version: 1\nbuckets:\n  src: {path: src}\n  out\(index): {path: o/\(index), acl: private}\nderivatives: []\n".utf8)
                .write(to: project.appendingPathComponent("n\(index).yaml"))
            let sibling = try CLI.run(["build", "-q", "n\(index).yaml"], in: project)
            #expect(sibling.status == 0, "\(said(sibling))")
        }
        // Settled first: the second may still refresh the witness.
        for _ in 1...2 { _ = try CLI.run(["build"], in: project) }
        let states = (1...3).map { project.appendingPathComponent(".derive/n\($0)/state.sqlite").path }
        var noOp: CLI.Result?
        let counts = try SiblingReadsOnceRound52Tests.opens(of: states) { noOp = try CLI.run(["build"], in: project) }
        let answered = try #require(noOp)
        #expect(answered.status == 0 && said(answered).contains("Nothing to do"), "\(said(answered))")
        for state in states {
            #expect((1...2).contains(counts[state] ?? 0), "\(state) opened \(counts[state] ?? 0) times by one no-op")
        }
    }
}
