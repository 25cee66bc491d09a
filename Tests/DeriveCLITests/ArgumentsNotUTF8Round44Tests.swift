import Foundation
import Testing
import TestSupport

/// Attack 44a's M1: a command-line argument whose bytes are not UTF-8 reached every command as
/// U+FFFD (`process … -o $'o\xE9.jpg'` wrote `o\xEF\xBF\xBD.jpg`; `validate $'m\xE9.yaml'` said no
/// such file). A usage error naming its bytes, for every command. And L5: `--manifest -hero.yaml`
/// is advised as `--manifest ./-hero.yaml`, not `-- -hero.yaml` (the OUTPUT argument there).
@Suite(.ownThreads) struct ArgumentsNotUTF8Round44Tests {
    /// Runs derive with raw argument bytes (Process takes Strings, which cannot hold them).
    static func run(_ script: String, in folder: URL) throws -> (status: Int32, stderr: String) {
        let result = try CLI.run(["-c", script + " 2>&1 >/dev/null"], in: folder, environment: ["DERIVE": CLI.executable.path], executable: "/bin/sh")
        return (result.status, text(result.stdout))
    }

    @Test func anArgumentThatIsNotUTF8IsAUsageError() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("in.jpg"))
        for script in [#""$DERIVE" process in.jpg image/resize,w_8 -o "$(printf 'o\351.jpg')""#, #""$DERIVE" validate "$(printf 'm\351.yaml')""#] {
            let result = try Self.run(script, in: folder)
            #expect(result.status == 64 && result.stderr.contains("\\xE9") && result.stderr.contains("not valid UTF-8"), "\(script): \(result.status) \(result.stderr)")
        }
        let written = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(written == ["in.jpg"], "\(written)")
    }

    @Test func aManifestNamedLikeOptionsAfterManifestIsAdvisedThere() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try "version: 1\nbuckets: {}\nderivatives: []\n".write(to: folder.appendingPathComponent("-hero.yaml"), atomically: true, encoding: .utf8)
        let result = try CLI.run(["explain", "x", "--manifest", "-hero.yaml"], in: folder)
        #expect(result.status == 64 && result.stderr.contains("--manifest ./-hero.yaml") && !result.stderr.contains("-- -hero.yaml"), "\(result.stderr)")
    }
}
