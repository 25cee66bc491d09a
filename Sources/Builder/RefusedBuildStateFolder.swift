import Confinement
import Foundation
import Planner
#if canImport(Glibc)
import Glibc
#endif

extension BuildSession {
    /// Removes the state folder a refused build made (attack 50c's L3: `derive build site.yaml`
    /// for a renamed `derive.yaml`, refused at plan time, left `.derive/site` with its build lock,
    /// clock stamp and an empty 128 KiB state, which nothing ever removed once the advice was
    /// followed). Only when the folder was not there before this build (`existedBefore`), and only
    /// Derive's own files there by name, then the folders Derive made on the way, once empty
    /// (`rmdir`, never recursively), as `clean` does; anything else keeps them.
    func removeStateFolderOfRefusedBuild(existedBefore: Bool) {
        guard !existedBefore else { return }
        let folder = manifest.stateFolder
        for name in [StateFiles.database] + StateFiles.databaseJournals + [StateFiles.buildLock, StateFiles.witness, StateFiles.witnessInputs] {
            _ = unlink(folder + "/" + name)
        }
        _ = Self.removeClockStamp(in: folder)
        if !StateFolderMade.removeEmpty(stateFolder: folder), Self.isDefaultStateFolder(folder, manifestPath: manifestPath), rmdir(folder) == 0 {
            _ = rmdir((folder as NSString).deletingLastPathComponent)
        }
    }
}
