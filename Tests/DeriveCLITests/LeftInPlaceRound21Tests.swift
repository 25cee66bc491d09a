import Foundation
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Issues #9 and #13, round 21's ways around the `left` lines (round 19's V1/V2 fix) against a
/// running `derive serve`. The project is round 19's mx.sh (`LeftInPlaceRound19Tests`): two
/// private outputs left in place under renamed matrix/style values, both private.
/// - N2: the ACL a file was left under lived only in `derive.lock`: deleting the lines or writing
///   `"acl":"public-read"` published the files at once, state or no state, and the next build
///   kept the edit (`check` said up to date).
/// - N5: a bucket renamed over the same folder (`site:` → `www:`, `path: site`) kept the lines
///   under `site/…`: the files were public under `www/…`.
/// - N4: a left file away during one build (moved out, put back) lost its line for good.
@Suite(.ownThreads, .serialized) struct LeftInPlaceRound21Tests {
    typealias R19 = LeftInPlaceRound19Tests
    typealias Project = LeftInPlaceRound19Tests.Project
    let r19 = LeftInPlaceRound19Tests()

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    func out(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) }

    /// The project after mx.sh's left build: built, the two private outputs left in place with a
    /// state (re-created: "not the file Derive wrote there") or in a fresh clone (`.derive/` gone:
    /// "known only from the lock"), then the renames built. Both keys are private, two lines.
    func leftProject(freshClone: Bool) throws -> Project {
        setenv(R19.secretVariable, R19.secret, 1)
        let project = try Project()
        _ = try project.build(["-q"])
        if freshClone {
            try FileManager.default.removeItem(at: project.url(".derive"))
        } else {
            for key in R19.oldKeys { try project.recreate("site/" + key) }
        }
        try project.edit(R19.renamed)
        _ = try project.build()
        let lock = try project.read("derive.lock")
        for key in R19.oldKeys { #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private""#), "\(lock)") }
        return project
    }

    /// `bucket/key` (whose file is `file` in the project) answers 403 anonymously, is in no
    /// anonymous listing of `bucket`, and a signed GET answers its bytes.
    func expectPrivate(_ bucket: String, _ key: String, file: String, _ project: Project, _ serve: ServeSession, _ when: String) throws {
        let bytes = try Data(contentsOf: project.url(file))
        let anonymous = try r19.request(serve, "/\(bucket)/" + key)
        #expect(anonymous.status == 403, "\(when): anonymous GET \(bucket)/\(key): \(anonymous.status)")
        #expect(Data(anonymous.body) != bytes)
        for listing in ["/\(bucket)/?prefix=", "/\(bucket)/?list-type=2&prefix="] {
            let list = try r19.request(serve, listing)
            #expect(list.status == 200 && !text(list.body).contains("<Key>\(key)</Key>"), "\(when): \(listing) lists \(key): \(text(list.body))")
        }
        let signedGet = try r19.request(serve, try r19.signed(project, "\(bucket)/" + key, serve: serve))
        #expect(signedGet.status == 200 && Data(signedGet.body) == bytes, "\(when): signed GET \(bucket)/\(key): \(signedGet.status)")
    }

    func expectBothPrivate(_ project: Project, _ serve: ServeSession, _ when: String, bucket: String = "site") throws {
        for key in R19.oldKeys { try expectPrivate(bucket, key, file: "site/" + key, project, serve, when) }
    }

    // MARK: N2

    /// left.sh drop / statekeep-drop: the `left` lines deleted from the lock (a hostile pull
    /// request, a merge taking "theirs", a tidy-up, an older Derive rewriting the lock). The
    /// state recorded both files: serve keeps them private before any build, `check` is not
    /// up to date, and the next build writes the lines back.
    @Test(arguments: [false, true])
    func leftLinesDeletedFromTheLockComeBackFromTheState(_ freshClone: Bool) throws {
        let project = try leftProject(freshClone: freshClone)
        defer { project.remove() }
        let lock = try project.read("derive.lock")
        let dropped = lock.split(separator: "\n").filter { !$0.contains(#""left""#) }.joined(separator: "\n") + "\n"
        try project.write("derive.lock", dropped)
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        try expectBothPrivate(project, serve, "lines deleted, no build")
        let check = try project.run(["check"])
        #expect(check.status != 0, "check calls a lock without the state's left lines up to date: \(out(check))")
        let build = try project.build()
        let rebuilt = try project.read("derive.lock")
        for key in R19.oldKeys { #expect(rebuilt.contains(#"{"left":"site/\#(key)","acl":"private""#), "\(out(build)) \(rebuilt)") }
        try expectBothPrivate(project, serve, "lines deleted, then built")
        #expect(try project.run(["check"]).status == 0)
    }

    /// left.sh forge: `"acl":"private"` → `"acl":"public-read"` in the lock. A lock line may narrow
    /// what the state recorded, never widen it: private before the build and after it, and the
    /// build writes the state's ACL back.
    @Test(arguments: [false, true])
    func aLeftLineForgedPublicIsRefused(_ freshClone: Bool) throws {
        let project = try leftProject(freshClone: freshClone)
        defer { project.remove() }
        try project.write("derive.lock", try project.read("derive.lock").replacingOccurrences(of: #""acl":"private""#, with: #""acl":"public-read""#))
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        try expectBothPrivate(project, serve, "forged public-read, no build")
        #expect(try project.run(["check"]).status != 0)
        _ = try project.build()
        let rebuilt = try project.read("derive.lock")
        #expect(!rebuilt.contains(#""acl":"public-read""#), "\(rebuilt)")
        for key in R19.oldKeys { #expect(rebuilt.contains(#"{"left":"site/\#(key)","acl":"private""#), "\(rebuilt)") }
        try expectBothPrivate(project, serve, "forged public-read, then built")
    }

    // MARK: N5

    /// left.sh base + the rename: `site:` → `www:` over the same folder. The left files are the
    /// same files under `www/…`: private before the build (serve matches the line by its file's
    /// place) and after it (the build re-keys the lines to `www/…`, naming the folder).
    @Test(arguments: [false, true])
    func aBucketRenamedOverTheSameFolderKeepsItsLeftFilesPrivate(_ freshClone: Bool) throws {
        let project = try leftProject(freshClone: freshClone)
        defer { project.remove() }
        if freshClone { try FileManager.default.removeItem(at: project.url(".derive")) }
        try project.edit { $0.replacingOccurrences(of: "\n  site:\n", with: "\n  www:\n").replacingOccurrences(of: "to: site/", with: "to: www/")
            .replacingOccurrences(of: "index: site/", with: "index: www/") }
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        try expectBothPrivate(project, serve, "renamed, no build", bucket: "www")
        if freshClone {
            // A clone's lock does not vouch for `www/…` (its lines say `site/…`): the build refuses
            // the outputs it finds there and writes nothing; the left files stay private.
            let refused = try project.run(["build"])
            #expect(refused.status != 0, "\(out(refused))")
            try expectBothPrivate(project, serve, "renamed in a clone, build refused", bucket: "www")
            return
        }
        let build = try project.build()
        let lock = try project.read("derive.lock")
        for key in R19.oldKeys {
            #expect(lock.contains(#"{"left":"www/\#(key)","acl":"private""#) && lock.contains(#""file":"site/\#(key)""#), "\(out(build)) \(lock)")
        }
        try expectBothPrivate(project, serve, "renamed, then built", bucket: "www")
        _ = try project.build()
        try expectBothPrivate(project, serve, "renamed, built twice", bucket: "www")
    }

    // MARK: N4

    /// left.sh moveback: one left file moved out, a build, moved back. Its record is kept, marked
    /// gone, so the file put back is private (and the next build finds it back). A new file with
    /// other bytes, written at that place after it went, stays private too (round 22's V3): the
    /// build names it, and `derive release` is the user's word that it is theirs.
    @Test func aLeftFileMovedOutAndBackStaysPrivate() throws {
        let project = try leftProject(freshClone: false)
        defer { project.remove() }
        let moved = R19.oldKeys[0]
        let hold = project.url("hold.webp")
        #expect(rename(project.url("site/" + moved).path, hold.path) == 0)
        let away = try project.build()
        let lock = try project.read("derive.lock")
        #expect(lock.contains(#"{"left":"site/\#(moved)","acl":"private""#) && lock.contains(#""gone":true"#), "\(out(away)) \(lock)")
        #expect(out(away).contains("~ site/\(moved)  left in place"), "\(out(away))")
        #expect(try project.run(["check"]).status == 0)
        #expect(rename(hold.path, project.url("site/" + moved).path) == 0)
        let serve = try ServeSession(in: project.root, environment: [R19.secretVariable: R19.secret])
        defer { serve.stop() }
        try expectBothPrivate(project, serve, "moved back, no build")
        _ = try project.build()
        #expect(!(try project.read("derive.lock")).contains(#""gone":true"#))
        try expectBothPrivate(project, serve, "moved back, then built")

        // Gone again, then a new file (other bytes, written after) at that place: not the user's
        // until the user says so (round 22's V3): private, named, and released by `derive release`.
        try FileManager.default.removeItem(at: project.url("site/" + moved))
        _ = try project.build()
        #expect(try project.read("derive.lock").contains(#""gone":true"#))
        try expectPrivateWhileThere(project, serve, moved)
        sleep(1)
        // Written now (a copy could keep the sample's old modification time).
        try Data(contentsOf: CLI.samples.appendingPathComponent("cmyk.jpg")).write(to: project.url("site/" + moved))
        let fresh = try project.build()
        #expect(out(fresh).contains("= site/\(moved)  left in place") && out(fresh).contains("derive release site/\(moved)"), "\(out(fresh))")
        #expect(try project.read("derive.lock").contains(#"{"left":"site/\#(moved)","acl":"private""#))
        try expectBothPrivate(project, serve, "a new file put there, then built")
        let released = try project.run(["release", "site/" + moved])
        #expect(released.status == 0, "\(out(released)) \(released.stderr)")
        #expect(!(try project.read("derive.lock")).contains(moved))
        let anonymous = try r19.request(serve, "/site/" + moved)
        #expect(anonymous.status == 200, "the user's new file, released: \(anonymous.status)")
    }

    /// While its file is gone the key answers nothing public (404 or 403, never 200).
    func expectPrivateWhileThere(_ project: Project, _ serve: ServeSession, _ key: String) throws {
        let anonymous = try r19.request(serve, "/site/" + key)
        #expect(anonymous.status != 200, "gone: \(anonymous.status)")
    }
}
