import Foundation
import Testing
import TestSupport

/// Attack 52a's F4: `derive plan x` (any one-character manifest name that does not exist)
/// crashed in the message for a missing manifest (Foundation's `deletingLastPathComponent` traps
/// on a one-character path), exit 132, for plan, check, build, validate and clean alike.
@Suite(.ownThreads) struct OneCharacterManifestNameRound52Tests {
    @Test(arguments: ["plan", "check", "build", "validate", "clean"])
    func aMissingOneCharacterManifestIsNamedNotACrash(command: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try CLI.run([command, "x"], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        let text = String(decoding: run.stdout, as: UTF8.self) + run.stderr
        #expect(run.status == 1, "\(command): exit \(run.status): \(text.prefix(400))")
        #expect(text.contains("x: no such file"), "\(command): \(text.prefix(400))")
    }
}
