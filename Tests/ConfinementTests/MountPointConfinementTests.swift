import Foundation
import Testing
import TestSupport
@testable import Confinement

/// Attack 36's finding 1 at the root, without making a mount (no root needed): `/proc` is a
/// mount point below `/`, so a confined folder at `/` must refuse every key through it, as it
/// refuses a link (folders on a bucket's own mount are walked as before: ConfinedFolderTests). (The bind-mount cases
/// run end to end in MountPointRound36Tests, where `mount --bind` is allowed.)
@Suite(.ownThreads, .enabled(if: MountIdentity.mountPoints().contains("/proc") && MountIdentity.mountPoints().contains("/"),
                             "needs /proc mounted below / (a Linux mount table)"))
struct MountPointConfinementTests {
    @Test func aKeyThroughAMountPointIsRefusedNamingIt() throws {
        let root = try ConfinedFolder(path: "/")
        #expect(throws: ConfinementError.mountPoint("proc")) { try root.read(try ObjectKey("proc/version")) }
        #expect(root.status(try ObjectKey("proc/version")) == nil)
        #expect(root.statuses([try ObjectKey("proc/version")]) == [nil])
        // A subfolder is named by its parent's path and its name.
        #expect(throws: ConfinementError.mountPoint("//proc")) { try ConfinedFolder(subfolder: "proc", of: root) }
        // Nothing is made past it either.
        #expect(throws: ConfinementError.mountPoint("proc")) {
            try root.writeAtomically(Data("x".utf8), to: try ObjectKey("proc/derive-test-missing/x.txt"))
        }
    }

    @Test func theMountTableUndoesItsEscapes() {
        #expect(MountIdentity.unescaped(Array(#"/tmp/a\040b\011c\134d"#.utf8)) == "/tmp/a b\tc\\d")
        #expect(MountIdentity.unescaped(Array(#"/plain\04"#.utf8)) == #"/plain\04"#)
    }
}
