import Builder
import Foundation

/// `plan` and `check` while another derive command holds the state's lock (a build or a clean):
/// the files it has just put in place are recorded only when it commits, so until then they look
/// like files nobody recorded, and the answer would call Derive's own outputs the user's ("move
/// it or pass --overwrite", attack 29's finding 9). So no answer is given then: the command says
/// who holds the lock and exits `BuildLock.busyExitCode` (75), as a second build does. Looked at
/// before planning and again after it (a build may start meanwhile).
struct BuildRunning: Error, CustomStringConvertible {
    var holder: BuildLock.Holder
    var command: String

    var description: String {
        let again = "run derive \(command) again"
        guard holder.isDerive else {
            return "the lock of this state is held by \(holder.name), not a derive command (\(holder.lock)): derive \(command) gives no answer while it is held, "
                + "as a build would wait for it; \(again) when that process has ended or released the lock"
        }
        return "another derive command (a build or a clean) is running on this state (\(holder.name); \(holder.lock)): the files it is writing are not recorded yet, "
            + "so derive \(command) cannot tell them from files of yours and gives no answer now; \(again) when it has ended"
    }

    /// Throws when a live process holds one of the locks a build or clean of `workspace`'s state holds.
    static func refuse(_ workspace: Workspace, _ command: String) throws {
        if let holder = BuildLock.holder(folder: workspace.manifest.stateFolder, manifest: workspace.manifestPath) {
            throw BuildRunning(holder: holder, command: command)
        }
    }
}
