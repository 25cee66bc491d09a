import Foundation
import Testing
import TestSupport

/// Attack 41b's L3 and L8, and the numeric options next to serve's `--port`: `derive styles
/// nosuch` said only `nosuch:1:1: error: …` (no `derive: error:` line), `catalog --html /proc/x`
/// ended with Foundation's "The operation could not be completed"; `derive init -photos` (a
/// folder named `-photos`) printed help and exited 0, and a dangling `derive.yaml` link was
/// called a manifest that "already exists"; `sign --expires 9223372036854775807` crashed on an
/// overflow.
@Suite(.ownThreads) struct CLIWordsRound41Tests {
    /// Every command that reads a manifest, given one that is not there, ends with one
    /// `derive: error:` line naming it and the ways out.
    @Test func aMissingManifestIsADeriveErrorInEveryCommand() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let commands: [[String]] = [["validate", "nosuch.yaml"], ["styles", "nosuch.yaml"], ["plan", "nosuch.yaml"], ["build", "nosuch.yaml"],
                                    ["check", "nosuch.yaml"], ["catalog", "nosuch.yaml"], ["clean", "nosuch.yaml"], ["serve", "nosuch.yaml"],
                                    ["html", "a.jpg", "--manifest", "nosuch.yaml"], ["sign", "b/k", "--manifest", "nosuch.yaml"],
                                    ["explain", "b/k", "--manifest", "nosuch.yaml"], ["release", "b/k", "--manifest", "nosuch.yaml"]]
        for command in commands {
            let result = try CLI.run(command, in: folder)
            let lines = result.stderr.split(separator: "\n").map(String.init)
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(lines.last.map { $0.hasPrefix("derive: error: ") && $0.contains("nosuch.yaml") && $0.contains("no such file") && $0.contains("derive init") } ?? false,
                    "\(command): \(result.stderr)")
        }
    }

    /// A report folder the file system refuses (/proc takes no new folder, even from root) is
    /// said as that, never as Foundation's words.
    @Test func catalogNamesWhyItsFolderCannotBeMade() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "/proc/self", isDirectory: &isFolder) else { return }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("p"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("p/a.jpg"))
        try Data("version: 1\nbuckets:\n  images: {path: p}\nstyles:\n  thumb: image/resize,w_16\ncatalog: {samples: [images/a.jpg]}\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let result = try CLI.run(["catalog", "--html", "/proc/derive-test-x"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("derive: error: ") && result.stderr.contains("/proc/derive-test-x") && result.stderr.contains("/proc ")
                && result.stderr.contains("choose"), "\(result.stderr)")
        #expect(!result.stderr.contains("could not be completed") && !result.stderr.contains("doesn’t exist"), "\(result.stderr)")
    }

    /// `-photos` is read by ArgumentParser as the one-letter flags -p -h -o …: `-h` printed help.
    @Test func initRefusesAFolderNameThatLooksLikeOptions() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("-photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("-photos/a.jpg"))
        let refused = try CLI.run(["init", "-photos"], in: folder)
        #expect(refused.status == 64, "\(said(refused))")
        #expect(refused.stderr.hasPrefix("derive: error: ") && refused.stderr.contains("derive init -- -photos") && refused.stderr.contains("derive init ./-photos"),
                "\(said(refused))")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        // The advice works.
        let written = try CLI.run(["init", "--", "-photos"], in: folder)
        #expect(written.status == 0, "\(said(written))")
    }

    @Test func initNamesADanglingManifestLinkAndLeavesIt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("images"), withIntermediateDirectories: true)
        let link = folder.appendingPathComponent("derive.yaml")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "gone.yaml")
        let result = try CLI.run(["init"], in: folder)
        #expect(result.status == 1, "\(said(result))")
        #expect(result.stderr.hasPrefix("derive: error: ") && result.stderr.contains("dangling") && result.stderr.contains("gone.yaml")
                && !result.stderr.contains("init --page") && !result.stderr.contains("already exists"), "\(result.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == "gone.yaml")
    }

    /// `now + expires` overflowed (a crash) for V1 URLs.
    @Test func signRefusesAnExpiryPastItsRange() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("version: 1\naccess_keys:\n  - id: AKIDTEST\n    secret_env: DERIVE_TEST_SIGN_SECRET\nbuckets:\n  photos: {path: photos}\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        for expires in ["9223372036854775807", "3155760001"] {
            let result = try CLI.run(["sign", "photos/a.jpg", "--expires", expires], in: folder, environment: ["DERIVE_TEST_SIGN_SECRET": "s"])
            #expect(result.status == 64, "--expires \(expires): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("derive: error: --expires must be from 1 to 3155760000"), "\(result.stderr)")
        }
        let longest = try CLI.run(["sign", "photos/a.jpg", "--expires", "3155760000"], in: folder, environment: ["DERIVE_TEST_SIGN_SECRET": "s"])
        #expect(longest.status == 0, "\(longest.stderr)")
    }
}
