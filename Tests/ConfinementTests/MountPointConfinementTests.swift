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

    /// Attack 36c's H1 at the root: a folder's place is the device and root of the mount that
    /// shows it (the longest mount point holding it, here where no folder of the paths exists to
    /// give a mount id), joined with the rest of the path, on whole names (`/m/oth` does not hold
    /// `/m/other`).
    @Test func aPlaceIsTheMountsRootJoinedWithTheRestOfThePath() {
        let table = MountTable(mounts: [
            .init(id: 900_001, device: "8:1", root: "/", point: "/"),
            .init(id: 900_002, device: "8:1", root: "/data/p/src/sub", point: "/derive-test-missing/other"),
            .init(id: 900_003, device: "0:77", root: "/", point: "/derive-test-missing/oth"),
        ])
        #expect(table.place(of: "/derive-test-missing/other/a.jpg") == MountTable.Place(device: "8:1", path: "/data/p/src/sub/a.jpg"))
        #expect(table.place(of: "/derive-test-missing/other") == MountTable.Place(device: "8:1", path: "/data/p/src/sub"))
        #expect(table.place(of: "/derive-test-missing/otherwise") == MountTable.Place(device: "8:1", path: "/derive-test-missing/otherwise"))
        #expect(table.place(of: "/derive-test-missing/oth/x") == MountTable.Place(device: "0:77", path: "/x"))

        let src = MountTable.Place(device: "8:1", path: "/data/p/src")
        #expect(src.holds(MountTable.Place(device: "8:1", path: "/data/p/src/sub")))
        #expect(src.holds(src))
        #expect(!src.holds(MountTable.Place(device: "8:1", path: "/data/p/src2")))
        #expect(!src.holds(MountTable.Place(device: "8:2", path: "/data/p/src/sub")))
        #expect(!MountTable.Place(device: "8:1", path: "/data/p/src/sub").holds(src))
    }
}
