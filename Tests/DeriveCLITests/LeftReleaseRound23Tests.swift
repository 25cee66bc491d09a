import Foundation
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Round 22's V3 and what goes with it, on the `left` lines (round 19's mx.sh project of
/// `LeftInPlaceRound19Tests`: two private outputs left in place under renamed matrix/style values).
/// - V3: a private left file that went (a `"gone":true` line) and was then put back as another
///   rendition (other bytes, a fresh modification time: a sync client, `cp` without `-p`, a photo
///   tool's export) was answered 200 and listed after the next build ("a new file … gets its key's
///   ACL"). A file at a place only a private rule ever gave never becomes more public without the
///   user's word: it stays private, the build names it, and `derive release KEY` is that word.
///   The same for a present left file whose bytes change.
/// - The gone date: `derive clean` removed the state that held it and the lock line had none, so
///   every stateless build restarted the 30 days. The lock line carries it now (`"goneSince"`);
///   a state's date wins over the lock's, whichever way the lock's was moved.
@Suite(.ownThreads, .serialized) struct LeftReleaseRound23Tests {
    typealias R19 = LeftInPlaceRound19Tests
    typealias Project = LeftInPlaceRound19Tests.Project
    let r19 = LeftInPlaceRound19Tests()
    let r21 = LeftInPlaceRound21Tests()
    /// The left file the tests move, put back or release; the other one stays private throughout.
    let key = R19.oldKeys[0]
    let other = R19.oldKeys[1]

    func out(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) }
    func lockText(_ project: Project) -> String { (try? project.read("derive.lock")) ?? "(no lock)" }
    func lockLine(_ project: Project, _ key: String) throws -> String? {
        try project.read("derive.lock").split(separator: "\n").map(String.init).first { $0.hasPrefix(#"{"left":"site/\#(key)""#) }
    }

    /// Another rendition of the private scan at `site/<key>`: other bytes than the left file,
    /// written now (after the build that found the left file gone).
    func putBackAnotherRendition(_ project: Project) throws {
        sleep(1)
        let file = project.url("site/" + key)
        let result = try CLI.run(["process", project.url("priv/ceo-passport-scan.jpg").path, "image/resize,w_20/quality,q_40/format,webp", "-o", file.path])
        #expect(result.status == 0, "\(result.stderr)")
    }

    /// The left file moved out and a build run: its line is kept as gone (private).
    func goneLine(_ project: Project) throws {
        #expect(rename(project.url("site/" + key).path, project.url("hold.webp").path) == 0)
        let away = try project.build()
        let line = try #require(try lockLine(project, key), "\(out(away))")
        #expect(line.contains(#""acl":"private""#) && line.contains(#""gone":true"#), "\(line)")
    }

    // MARK: V3

    /// gone.sh restore-old: gone, then another rendition with a fresh modification time at its
    /// place. Private before the build, named by the build with how to publish it, private after
    /// it and after the next; with the state and without one (a clone, or after `derive clean`).
    @Test(arguments: [false, true])
    func aGoneLeftFilePutBackAsAnotherRenditionStaysPrivate(_ stateless: Bool) throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        try goneLine(project)
        if stateless { try FileManager.default.removeItem(at: project.url(".derive")) }
        try putBackAnotherRendition(project)
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        try r21.expectPrivate("site", key, file: "site/" + key, project, serve, "another rendition put back, no build")
        let build = try project.build()
        #expect(!out(build).contains("no longer left in place"), "\(out(build))")
        #expect(out(build).contains("derive release site/\(key)"), "the build does not say how to publish it: \(out(build))")
        let line = try #require(try lockLine(project, key), "the line was dropped: \(out(build)) \(lockText(project))")
        #expect(line.contains(#""acl":"private""#) && !line.contains("gone"), "\(line)")
        try r21.expectBothPrivate(project, serve, "another rendition put back, then built")
        _ = try project.build()
        try r21.expectBothPrivate(project, serve, "another rendition put back, built twice")
        #expect(try project.run(["check"]).status == 0)
    }

    /// A present left file whose bytes change (an optimiser, an export over it): private, and the
    /// build names it as other bytes than the file left there, with the release command.
    @Test func aPresentLeftFileWhoseBytesChangeStaysPrivateAndIsNamed() throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        try putBackAnotherRendition(project)
        let build = try project.build()
        let said = out(build)
        #expect(said.contains("site/\(key)") && said.contains("other bytes") && said.contains("derive release site/\(key)"), "\(said)")
        #expect(try lockLine(project, key)?.contains(#""acl":"private""#) == true)
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        try r21.expectBothPrivate(project, serve, "other bytes, built")
    }

    // MARK: derive release

    /// `derive release KEY`: the user's word that the file is theirs. Its line goes from the lock
    /// and the state at once (a running serve answers the key by its ACL: public-read here), a
    /// build does not bring it back, and the other left file stays private. With the state and
    /// without one.
    @Test(arguments: [false, true])
    func releaseGivesTheFileItsKeysACL(_ stateless: Bool) throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        if stateless { try FileManager.default.removeItem(at: project.url(".derive")) }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        try r21.expectBothPrivate(project, serve, "before the release")
        let released = try project.run(["release", "site/" + key])
        #expect(released.status == 0, "\(out(released)) \(released.stderr)")
        #expect(out(released).contains("site/\(key)") && out(released).contains("public-read"), "\(out(released))")
        #expect(try lockLine(project, key) == nil, "\(lockText(project))")
        #expect(try lockLine(project, other) != nil)
        if stateless {
            // Without a state serve answers a bucket that rules write with `acl:` privately
            // (fails closed) until a build: the release says so.
            #expect(out(released).contains("without a build state"), "\(out(released))")
        } else {
            try r19.expectPublic(key, project, serve, "released, no build")
        }
        try r21.expectPrivate("site", other, file: "site/" + other, project, serve, "the other, after the release")
        let build = try project.build()
        #expect(try lockLine(project, key) == nil, "the build brought the line back: \(out(build)) \(lockText(project))")
        try r19.expectPublic(key, project, serve, "released, then built")
        try r21.expectPrivate("site", other, file: "site/" + other, project, serve, "the other, after the release and a build")
        #expect(try project.run(["check"]).status == 0)
    }

    /// A gone line released: nothing is at its place; a file put there later is the user's.
    @Test func releasingAGoneLineLetsAFileLaterPutThereTakeItsKeysACL() throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        try goneLine(project)
        let released = try project.run(["release", "site/" + key])
        #expect(released.status == 0, "\(out(released)) \(released.stderr)")
        #expect(try lockLine(project, key) == nil)
        try putBackAnotherRendition(project)
        _ = try project.build()
        #expect(try lockLine(project, key) == nil)
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        try r19.expectPublic(key, project, serve, "released while gone, then a file put there and built")
    }

    /// Keys with no `left` line (an output, a key nothing names, a bucket not in the manifest)
    /// are refused, named, and nothing is released, not even the keys that have one.
    @Test func releaseRefusesKeysWithoutALeftLine() throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        let lock = try project.read("derive.lock")
        for keys in [["site/g/lake.webp"], ["site/nothing.webp"], ["nowhere/x.webp"], ["site/" + key, "site/nothing.webp"]] {
            let refused = try project.run(["release"] + keys)
            #expect(refused.status != 0, "\(keys): \(out(refused))")
            #expect(refused.stderr.contains(keys.last!) && refused.stderr.contains("no left line"), "\(keys): \(refused.stderr)")
            #expect(try project.read("derive.lock") == lock, "\(keys)")
        }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        try r21.expectBothPrivate(project, serve, "after the refused releases")
    }

    // MARK: the gone date

    /// The lock line of a gone file says since when (`"goneSince"`, seconds): `derive clean`
    /// keeps it, so the 30 days run from when the file went in a stateless tree too; a line whose
    /// date is past them is dropped by the next build (before, each stateless build restarted them).
    @Test func theGoneDateTravelsInTheLockThroughClean() throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        let before = Int64(Date().timeIntervalSince1970)
        try goneLine(project)
        let line = try #require(try lockLine(project, key))
        let since = try #require(Self.goneSince(line), "no date in \(line)")
        #expect(since >= before - 1 && since <= Int64(Date().timeIntervalSince1970), "\(line)")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(out(clean)) \(clean.stderr)")
        #expect(try lockLine(project, key).flatMap(Self.goneSince) == since, "clean lost the date: \(lockText(project))")
        _ = try project.build()
        #expect(try lockLine(project, key).flatMap(Self.goneSince) == since, "a stateless build restarted it: \(lockText(project))")
        // 31 days ago, stateless (removed again): the build drops the line, from the lock's date.
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.lock", try project.read("derive.lock").replacingOccurrences(of: #""goneSince":\#(since)"#, with: #""goneSince":\#(since - 31 * 86400)"#))
        let expired = try project.build()
        #expect(out(expired).contains("- site/\(key)  no longer left in place: the file is gone (for more than 30 days)"), "\(out(expired))")
        #expect(try lockLine(project, key) == nil)
    }

    /// The state's date wins over the lock's: a date moved back (it would drop the line sooner)
    /// or forward (it would keep it longer) in a lock beside a state is written back as the
    /// state's. Without a state a date ahead of the clock is no date a build wrote: now.
    @Test func aStatesGoneDateWinsOverTheLocks() throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        try goneLine(project)
        let since = try #require(try lockLine(project, key).flatMap(Self.goneSince))
        for moved in [since - 31 * 86400, since + 10 * 86400] {
            try project.write("derive.lock", try project.read("derive.lock").replacingOccurrences(of: #""goneSince":\#(since)"#, with: #""goneSince":\#(moved)"#))
            let build = try project.build()
            #expect(!out(build).contains("no longer left in place"), "\(out(build))")
            #expect(try lockLine(project, key).flatMap(Self.goneSince) == since, "\(moved): \(lockText(project))")
        }
        try FileManager.default.removeItem(at: project.url(".derive"))
        let ahead = Int64(Date().timeIntervalSince1970) + 400 * 86400
        try project.write("derive.lock", try project.read("derive.lock").replacingOccurrences(of: #""goneSince":\#(since)"#, with: #""goneSince":\#(ahead)"#))
        _ = try project.build()
        let clamped = try #require(try lockLine(project, key).flatMap(Self.goneSince))
        #expect(clamped <= Int64(Date().timeIntervalSince1970) && clamped >= since, "\(clamped)")
    }

    // MARK: clean's kept state folder

    /// Round 22's V5 trivia: `clean` kept the state folder "(the lines above say why)" with no
    /// line above saying why. Each entry it keeps is named with its own reason.
    @Test func cleanSaysWhyItKeepsTheStateFolder() throws {
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        let folder = project.url(".derive/derive")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("state.sqlite").path))
        try project.write(".derive/derive/notes.txt", "mine")
        try project.write(".derive/derive/serve-metadata.sqlite", "")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(out(clean)) \(clean.stderr)")
        #expect(!clean.stderr.contains("the lines above say why"), "\(clean.stderr)")
        #expect(clean.stderr.contains("notes.txt (a file Derive does not write there)"), "\(clean.stderr)")
        #expect(clean.stderr.contains("serve-metadata.sqlite (derive serve's headers of the objects uploaded through it"), "\(clean.stderr)")
        #expect(project.exists(".derive/derive/notes.txt"))
    }

    static func goneSince(_ line: String) -> Int64? {
        guard let range = line.range(of: #""goneSince":[0-9]+"#, options: .regularExpression) else { return nil }
        return Int64(line[range].split(separator: ":").last ?? "")
    }
}
