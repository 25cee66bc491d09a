import Foundation
import Testing
import TestSupport

/// Gaps 28, 3: a `{hash}` file adopted from the lock unverified and not proven Derive's (neither
/// rendered again to its bytes nor committed to git as it is at HEAD) is kept in place when its
/// name is no longer produced, and only its record dropped. README promises that every file a
/// build leaves in place instead of deleting it is kept in the lock as a `left` line with the ACL
/// it was left under; this one was not listed at all (so serve forgot it, and `check` and
/// `clean` no longer named it).
@Suite(.ownThreads, .serialized) struct UnprovenHashedLeftLineGaps28Tests {
    typealias Project = BuildSafetyAttackTests.Project
    let clone = FreshCloneVerifyTests()
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    @Test func anUnprovenHashedFileKeptInPlaceHasALeftLine() throws {
        let project = try clone.freshClone(hashed: true)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: true)
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: true)
            .replacingOccurrences(of: "/format,webp", with: "/quality,q_60/format,webp"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "the user's file was deleted")
        let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        let line = lock.components(separatedBy: "\n").first { $0.contains("\"left\":\"out/\(forged.file)\"") }
        #expect(line?.contains("\"acl\":\"private\"") == true && line?.contains("\"why\":\"not the file Derive wrote there\"") == true, "\(lock)")
        // Still listed by the next build (the state keeps it too), and check agrees.
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(try String(contentsOf: project.url("derive.lock"), encoding: .utf8).contains("\"left\":\"out/\(forged.file)\""))
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }
}
