import Foundation
import GRDB
import Testing
import TestSupport

/// Outputs a plain build adopts from derive.lock (a fresh clone) stay marked in the state as
/// adopted unverified until `build --verify` renders them again or a build renders them anew
/// (left by session 26: they became ordinary records, so `check --verify` and `build --verify`,
/// which render adopted outputs again, no longer looked at them; only `--verify-all` did).
/// `check`, `plan` and `build` keep saying how many there are, no-op answers included.
@Suite(.ownThreads, .serialized) struct FreshCloneAdoptedMarkTests {
    typealias Project = BuildSafetyAttackTests.Project
    let clone = FreshCloneVerifyTests()
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
    static let two = "2 outputs adopted from derive.lock unverified"

    /// The state database of `project` (one manifest, the default state folder).
    func database(_ project: Project) -> String { project.url(".derive/derive/state.sqlite").path }

    /// A forged output a plain build adopted: the next `check --verify` still renders it again
    /// and names it, `build --verify` refuses to write over it, and every command in between
    /// says the two outputs are adopted unverified, whether it planned or answered at once.
    @Test func aForgedOutputAPlainBuildAdoptedIsStillVerified() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false)
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains(Self.two), "\(text(build.stdout)) \(build.stderr)")
        // Twice each: the first may plan, the second answers from the no-op witness.
        for command in [["check"], ["plan"], ["build"], ["check"], ["plan"], ["build"]] {
            let result = try project.run(command)
            #expect(result.status == 0, "\(command): \(text(result.stdout)) \(result.stderr)")
            #expect(text(result.stdout).contains(Self.two), "\(command) forgot the adopted outputs: \(text(result.stdout))")
        }
        let verify = try project.run(["check", "--verify"])
        #expect(verify.status == 1, "\(text(verify.stdout))")
        #expect(text(verify.stdout).contains("out/landscape-100.webp  differs from what rule 'pic' renders from src/landscape.jpg"), "\(text(verify.stdout))")
        #expect(text(verify.stdout).contains("verified 1 output "), "\(text(verify.stdout))")
        let refused = try project.run(["build", "--verify"])
        #expect(refused.status == 1, "\(text(refused.stdout))")
        #expect(refused.stderr.contains("out/landscape-100.webp exists and was not written by Derive: it differs from what rule 'pic' renders"), "\(refused.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes)
        // Still unverified: a refused build records nothing.
        #expect(text(try project.run(["check"]).stdout).contains(Self.two))
        let overwrite = try project.run(["build", "--verify", "--overwrite"])
        #expect(overwrite.status == 0, "\(text(overwrite.stdout)) \(overwrite.stderr)")
        // One rendered anew, one verified: nothing is adopted unverified any more.
        for command in [["check"], ["plan"], ["build"], ["check"]] {
            let result = try project.run(command)
            #expect(result.status == 0, "\(command): \(text(result.stdout)) \(result.stderr)")
            #expect(!text(result.stdout).contains("unverified"), "\(command): \(text(result.stdout))")
        }
        let after = try project.run(["check", "--verify"])
        #expect(after.status == 0 && text(after.stdout).contains("verified 0 outputs"), "\(text(after.stdout))")
    }

    /// `build --verify` of an untouched clone a plain build adopted: both outputs render to their
    /// files' bytes, their marks go, and the no-op answers say nothing of adoption.
    @Test func buildVerifyClearsTheMarks() throws {
        let project = try clone.freshClone(hashed: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(text(try project.run(["check"]).stdout).contains(Self.two))
        let verify = try project.run(["build", "--verify"])
        #expect(verify.status == 0 && text(verify.stdout).contains("verified 2"), "\(text(verify.stdout)) \(verify.stderr)")
        #expect(!text(verify.stdout).contains("unverified"), "\(text(verify.stdout))")
        for command in [["check"], ["plan"], ["build"], ["check"]] {
            let result = try project.run(command)
            #expect(result.status == 0 && !text(result.stdout).contains("unverified"), "\(command): \(text(result.stdout)) \(result.stderr)")
        }
        let marked = try DatabaseQueue(path: database(project), configuration: .patientTest).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outputs WHERE adopted != 0") }
        #expect(marked == 0)
    }

    /// The mark stays through a record-only update (an ACL) and goes with a render: a matrix
    /// value replaced renders one output anew and deletes the other; the one left is still adopted.
    @Test func theMarkStaysThroughAnUpdateAndGoesWithARender() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let manifest = FreshCloneVerifyTests.manifest(hashed: false)
        try project.write("derive.yaml", manifest.replacingOccurrences(of: "    to: out/", with: "    acl: public-read\n    to: out/"))
        let update = try project.run(["build"])
        #expect(update.status == 0 && text(update.stdout).contains("updated 2 records"), "\(text(update.stdout)) \(update.stderr)")
        #expect(text(update.stdout).contains(Self.two), "\(text(update.stdout))")
        #expect(text(try project.run(["check"]).stdout).contains(Self.two))
        try project.write("derive.yaml", manifest.replacingOccurrences(of: "[100, 200]", with: "[100, 300]"))
        let render = try project.run(["build"])
        #expect(render.status == 0 && text(render.stdout).hasPrefix("built 1,"), "\(text(render.stdout)) \(render.stderr)")
        let one = "1 output adopted from derive.lock unverified"
        #expect(text(render.stdout).contains(one), "\(text(render.stdout))")
        for command in [["check"], ["plan"], ["build"]] {
            let result = try project.run(command)
            #expect(result.status == 0 && text(result.stdout).contains(one), "\(command): \(text(result.stdout)) \(result.stderr)")
        }
        let verify = try project.run(["check", "--verify"])
        #expect(verify.status == 0 && text(verify.stdout).contains("verified 1 output "), "only the adopted one: \(text(verify.stdout))")
    }

    /// `explain` and `plan -v` name a record still marked as the lock's word, as they name an
    /// adoption of this plan; once `build --verify` proved it, it is plainly up to date.
    @Test func explainAndVerbosePlanNameAMarkedRecord() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let explain = try project.run(["explain", "out/landscape-100.webp"])
        #expect(text(explain.stdout).hasPrefix("out/landscape-100.webp: up to date (vouched for by derive.lock)"), "\(text(explain.stdout)) \(explain.stderr)")
        let plan = try project.run(["plan", "-v"])
        #expect(text(plan.stdout).contains("out/landscape-100.webp  up to date (from derive.lock)"), "\(text(plan.stdout))")
        #expect(try project.run(["build", "--verify"]).status == 0)
        #expect(text(try project.run(["explain", "out/landscape-100.webp"]).stdout).hasPrefix("out/landscape-100.webp: up to date\n"))
        #expect(!text(try project.run(["plan", "-v"]).stdout).contains("derive.lock"))
    }

    /// A state from 0.13 (schema v8, no mark) still loads: its records are ordinary ones, nothing
    /// is rendered again, and the next build keeps working.
    @Test func aStateFromBeforeTheMarkLoads() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        // Built from nothing (not adopted), then the state made as 0.13 left it.
        try FileManager.default.removeItem(at: project.url("out"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try DatabaseQueue(path: database(project), configuration: .patientTest).write { db in
            try db.execute(sql: "ALTER TABLE outputs DROP COLUMN adopted; DELETE FROM grdb_migrations WHERE identifier = 'v9';")
        }
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).hasPrefix("Nothing to do"), "\(text(build.stdout)) \(build.stderr)")
        let check = try project.run(["check"])
        #expect(check.status == 0 && !text(check.stdout).contains("unverified"), "\(text(check.stdout)) \(check.stderr)")
        let migrated = try DatabaseQueue(path: database(project), configuration: .patientTest).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
        }
        #expect(migrated.contains("v9"))
    }
}
