import Builder
import Foundation

/// `plan` and `check` while another derive command holds the state's lock (a build or a clean):
/// the files it has just put in place are recorded only when it commits, so until then they look
/// like files nobody recorded, and the answer would call Derive's own outputs the user's ("move
/// it or pass --overwrite", attack 29's finding 9). So no answer is given then: the command says
/// who holds the lock and exits `BuildLock.busyExitCode` (75), as a second build does. Looked at
/// before planning and again after it (a build may start meanwhile).
struct BuildRunning: Error, CustomStringConvertible {
    var holder: String
    var lock: String
    var command: String

    var description: String {
        "another derive command (a build or a clean) is running on this state (\(holder); \(lock)): the files it is writing are not recorded yet, "
            + "so derive \(command) cannot tell them from files of yours and gives no answer now; run derive \(command) again when it has ended"
    }

    /// Throws when a live process holds the lock of `workspace`'s state.
    static func refuse(_ workspace: Workspace, _ command: String) throws {
        let folder = workspace.manifest.stateFolder
        if let holder = BuildLock.holder(folder: folder) {
            throw BuildRunning(holder: holder, lock: folder + "/" + BuildLock.fileName, command: command)
        }
    }
}
