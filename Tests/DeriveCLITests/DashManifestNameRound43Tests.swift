import Foundation
import Testing
import TestSupport

/// Attack 43a's F3: a manifest named like `-dash.yaml` or `-hero.yaml` was read by the argument
/// parser as one-letter options: `-h` among them printed help and exited 0, so `check` and `plan
/// --detailed-exitcode` passed and `build` built nothing. Such a name is a usage error (64) saying
/// how to write it, as `derive init -photos` is; written after `--` or as `./-dash.yaml` it works.
@Suite(.ownThreads) struct DashManifestNameRound43Tests {
    @Test(arguments: [["check"], ["plan", "--detailed-exitcode"], ["build"], ["validate"], ["clean"]])
    func aManifestNamedLikeOptionsIsAUsageErrorNotHelp(_ command: [String]) throws {
        let site = try HashedBuildRound20Tests.Site()
        try FileManager.default.copyItem(at: site.url("derive.yaml"), to: site.url("-dash.yaml"))
        let result = try site.run(command + ["-dash.yaml"])
        #expect(result.status == 64, "\(command): \(said(result))")
        #expect(result.stderr.contains("-dash.yaml is not an option of derive \(command[0])") && result.stderr.contains("./-dash.yaml") && result.stderr.contains("-- -dash.yaml"), "\(said(result))")
        #expect(!result.stderr.contains("))"), "\(said(result))")
        #expect(!String(decoding: result.stdout, as: UTF8.self).contains("USAGE"), "help was printed: \(said(result))")
        #expect(!FileManager.default.fileExists(atPath: site.url(".derive").path), "\(command) ran")
        // Written as the message says, it is the manifest.
        let dashed = try site.run(command + ["--", "-dash.yaml"])
        #expect(dashed.status != 64 && !String(decoding: dashed.stdout, as: UTF8.self).contains("USAGE"), "\(command): \(said(dashed))")
    }
}
