import Foundation
import Testing
import TestSupport

/// Attack 52c's 5: after a build adopted a clone's outputs from its lock unverified, every later
/// no-op repeated "100 outputs adopted from a.lock unverified …", which reads as if each run had
/// adopted them again. The marks stay until `--verify` (README), so the count is still said, as
/// what still is: the build that adopted says it adopted them; a no-op, and a build that adopted
/// none itself, say they were adopted by an earlier build and remain so.
@Suite(.ownThreads) struct AdoptedUnverifiedNoOpRound53Tests {
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    @Test func laterBuildsSayTheAdoptedOutputsRemainUnverifiedNotThatTheyAdoptedThem() throws {
        let project = try FreshCloneVerifyTests().freshClone(hashed: false)
        defer { project.remove() }
        let adopt = try project.run(["build"])
        #expect(adopt.status == 0 && text(adopt.stdout).contains("2 outputs adopted from derive.lock unverified ("),
                "\(text(adopt.stdout)) \(adopt.stderr)")
        // Twice: the first may plan in full (its witness racy), the second answers from the witness.
        for run in 1...2 {
            let later = try project.run(["build"])
            let said = text(later.stdout)
            #expect(later.status == 0 && said.hasPrefix("Nothing to do: 2 outputs up to date."), "run \(run): \(said) \(later.stderr)")
            #expect(said.contains("2 outputs adopted from derive.lock unverified by an earlier build remain so (derive.lock vouches for their bytes;"),
                    "run \(run): \(said)")
        }
        // check and plan still name them (whichever path answers).
        for command in [["check"], ["plan"]] {
            let result = try project.run(command)
            #expect(result.status == 0 && text(result.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(command): \(text(result.stdout))")
        }
    }
}
