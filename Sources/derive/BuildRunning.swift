import Builder
import Foundation

/// `plan` and `check` while another derive command holds the state's lock (a build or a clean):
/// the files it has just put in place are recorded only when it commits, so until then they look
/// like files nobody recorded, and the answer would call Derive's own outputs the user's ("move
/// it or pass --overwrite", attack 29's finding 9). So no answer is given then: the command says
/// who holds the lock and exits `BuildLock.busyExitCode` (75), as a second build does. Looked at
/// before planning (`watch`) and again once the answer is made (`refuse`): a build may have
/// started meanwhile, or run and ended, or the state folder may have been moved or replaced.
struct BuildRunning: Error, CustomStringConvertible {
    enum Reason {
        case held(BuildLock.Holder)
        case changed(StateMark.Change)
    }
    var reason: Reason
    var folder: String
    var command: String

    var description: String {
        let again = "run derive \(command) again"
        switch reason {
        case .held(let holder) where holder.isDerive:
            return "another derive command (a build or a clean) is running on this state (\(holder.name); \(holder.lock)): the files it is writing are not recorded yet, "
                + "so derive \(command) cannot tell them from files of yours and gives no answer now; \(again) when it has ended"
        case .held(let holder):
            return "the lock of this state is held by \(holder.name), not a derive command (\(holder.lock)): derive \(command) gives no answer while it is held, "
                + "as a build would wait for it; \(again) when that process has ended or released the lock"
        case .changed(.folder):
            return "the state folder \(folder) was moved, deleted or replaced while derive \(command) ran, so its answer may be of a state that is gone and is not given; \(again)"
        case .changed(.lock(let line)):
            return "a build or a clean ran on this state while derive \(command) ran (\(folder)/\(BuildLock.fileName) \(line.map { "now reads: " + $0 } ?? "was deleted")), "
                + "so its answer is of the state before and is not given; \(again)"
        }
    }

    /// Before `workspace`'s state is read: throws when a live process holds one of its locks,
    /// else returns the mark `refuse` compares with.
    static func watch(_ workspace: Workspace, _ command: String) throws -> StateMark {
        let folder = workspace.manifest.stateFolder
        let mark = StateMark(folder: folder)
        try refuseHeld(workspace, command)
        return mark
    }

    /// Once the answer is made: throws when a live process holds one of the state's locks, or
    /// the state changed since `mark`.
    static func refuse(_ workspace: Workspace, _ command: String, since mark: StateMark) throws {
        pauseBeforeAnswer()
        try refuseHeld(workspace, command)
        let folder = workspace.manifest.stateFolder
        if let change = StateMark(folder: folder).change(since: mark) {
            throw BuildRunning(reason: .changed(change), folder: folder, command: command)
        }
    }

    private static func refuseHeld(_ workspace: Workspace, _ command: String) throws {
        let folder = workspace.manifest.stateFolder
        if let holder = BuildLock.holder(folder: folder, manifest: workspace.session.manifestPath) {
            throw BuildRunning(reason: .held(holder), folder: folder, command: command)
        }
    }

    /// Test hook, inert unless set: `DERIVE_TEST_BEFORE_ANSWER=<path>` makes `plan` and `check`,
    /// once their answer is made and before they look at the state again, create `<path>` and
    /// wait (at most 60 s) until it is removed: a build, clean or move of the state folder at a
    /// known instant of the command.
    private static func pauseBeforeAnswer() { testPause("DERIVE_TEST_BEFORE_ANSWER") }

    /// The test hooks' pause, inert unless `variable` is set: the file it names is created, and
    /// the command waits (at most 60 s) until the test removes it.
    static func testPause(_ variable: String) {
        guard let path = ProcessInfo.processInfo.environment[variable] else { return }
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        for _ in 0..<3000 where FileManager.default.fileExists(atPath: path) { usleep(20_000) }
    }
}
