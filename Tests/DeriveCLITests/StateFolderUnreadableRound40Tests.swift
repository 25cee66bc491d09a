import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 39b's L7: as nobody in a project root built, whose state folder root made (0700) nobody
/// may not look into, `build` said "cannot create the state folder …: Permission denied", when the
/// folder is there and only cannot be read.
@Suite(.ownThreads) struct StateFolderUnreadableRound40Tests {
    @Test(.enabled(if: Nobody.canActAs, "needs root with setpriv(1) to act as nobody"))
    func theStateFolderRootMadeIsNamedAsUnreadableNotAsUncreatable() throws {
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { try? FileManager.default.removeItem(at: project.root) }
        let built = try CLI.run(["build", "-q"], in: project.root)
        #expect(built.status == 0, "\(said(built))")
        // The project stays root's; nobody keeps only its tokens in a folder of its own.
        let home = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        giveToNobody(home)
        try project.write("derive.yaml", BuildSafetyAttackTests.Project.manifest(outPath: "out", index: false, width: 33))
        let result = try runAsNobody(["build"], in: project.root, stateHome: home)
        let message = said(result)
        #expect(result.status != 0)
        #expect(!message.contains("cannot create the state folder"), "\(message)")
        #expect(message.contains("cannot open the state folder") && message.contains("belongs to root") && message.contains("may not look inside it"), "\(message)")
    }
}
