import Foundation
import Planner
import Testing
import TestSupport

/// Round 24's H2: while a build state exists, a `derive.lock` line is no proof of bytes. The lock
/// is committed (a user can edit it, a merge brings one); only a fresh clone (no state) takes its
/// word. With a state, a file at an output path the state does not record as Derive's is the
/// user's unless it holds exactly what the build renders for that output.
@Suite(.ownThreads, .serialized) struct LockVouchRound24Tests {
    typealias Site = SiteRound11Tests.Site
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static let manifest = LockOwnershipRound13Tests.manifest(process: "image/resize,w_40/format,webp", to: "site/{name}.webp")

    /// A site of a, b and c built (so a state exists), then c's source removed and built again
    /// (its output and record gone), and c's source put back: c's output path is new to the state.
    /// Returns c's lock line and the bytes Derive rendered for it.
    func siteWithNewOutputPath() throws -> (site: Site, line: String, rendered: Data) {
        let site = try Site(["images/a.jpg": "orientation-1.jpg", "images/b.jpg": "orientation-2.jpg", "images/c.jpg": "orientation-3.jpg"],
                            manifest: Self.manifest)
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        let line = try #require(site.lock().components(separatedBy: "\n").first { $0.contains(#""path":"site/c.webp""#) }, "\(site.lock())")
        let rendered = try Data(contentsOf: site.url("_site/c.webp"))
        let source = try Data(contentsOf: site.url("images/c.jpg"))
        try FileManager.default.removeItem(at: site.url("images/c.jpg"))
        let second = try site.run(["build", "-q"])
        #expect(second.status == 0 && !site.exists("_site/c.webp"), "\(second.stderr)")
        try source.write(to: site.url("images/c.jpg"))
        return (site, line, rendered)
    }

    /// `line` with its digest replaced by the SHA-256 of `bytes`.
    func line(_ line: String, vouchingFor bytes: Data) -> String {
        line.replacingOccurrences(of: #""digest":"[0-9a-f]{64}""#, with: "\"digest\":\"\(HexDigest.sha256(bytes))\"", options: .regularExpression)
    }

    /// The lock with `line` added (or put in place of the line for the same path).
    func addToLock(_ site: Site, _ line: String, replacing path: String? = nil) throws {
        var lines = site.lock().components(separatedBy: "\n").filter { !$0.isEmpty }
        if let path { lines.removeAll { $0.contains("\"path\":\"\(path)\"") } }
        lines.append(line)
        try (lines.joined(separator: "\n") + "\n").write(to: site.url("derive.lock"), atomically: true, encoding: .utf8)
    }

    @Test func aUsersFileAtANewOutputPathIsRefusedWhateverTheLockSays() throws {
        let (site, cLine, _) = try siteWithNewOutputPath()
        defer { site.remove() }
        // The user's own picture at the new output path, and a lock line stating its digest.
        let mine = try Data(contentsOf: CLI.samples.appendingPathComponent("orientation-5.jpg"))
        try mine.write(to: site.url("_site/c.webp"))
        let forged = line(cLine, vouchingFor: mine)
        #expect(forged != cLine)
        try addToLock(site, forged)
        let build = try site.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("_site/c.webp exists and was not written by Derive"), "\(build.stderr)")
        #expect(build.stderr.contains("move it or pass --overwrite"), "\(build.stderr)")
        #expect(try Data(contentsOf: site.url("_site/c.webp")) == mine)
        // Nothing recorded it as Derive's: the next plan still refuses it.
        let plan = try site.run(["plan"])
        #expect(plan.status != 0 && plan.stderr.contains("_site/c.webp exists and was not written by Derive"), "\(text(plan.stdout)) \(plan.stderr)")
        #expect(try Data(contentsOf: site.url("_site/c.webp")) == mine)
    }

    @Test func aRetouchedOutputWithItsLineRewrittenIsNotOverwritten() throws {
        let site = try Site(["images/a.jpg": "orientation-1.jpg", "images/b.jpg": "orientation-2.jpg"], manifest: Self.manifest)
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        let aLine = try #require(site.lock().components(separatedBy: "\n").first { $0.contains(#""path":"site/a.webp""#) })
        // Retouched by hand, and the lock line made to state the retouched bytes.
        let retouched = try Data(contentsOf: CLI.samples.appendingPathComponent("orientation-6.jpg"))
        try retouched.write(to: site.url("_site/a.webp"))
        try addToLock(site, line(aLine, vouchingFor: retouched), replacing: "site/a.webp")
        let build = try site.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("_site/a.webp was changed since Derive wrote it; move it or pass --overwrite"), "\(build.stderr)")
        #expect(try Data(contentsOf: site.url("_site/a.webp")) == retouched)
    }

    @Test func aFileHoldingExactlyTheRenderAtALockListedPathIsAdopted() throws {
        let (site, cLine, rendered) = try siteWithNewOutputPath()
        defer { site.remove() }
        // A `git pull` brings c's committed output and its lock line.
        try rendered.write(to: site.url("_site/c.webp"))
        try addToLock(site, cLine)
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        // Proven by a render, not taken on the line's word.
        #expect(text(build.stdout).contains("verified 1"), "\(text(build.stdout))")
        #expect(!text(build.stdout).contains("adopted from derive.lock unverified"), "\(text(build.stdout))")
        #expect(try Data(contentsOf: site.url("_site/c.webp")) == rendered)
        // Recorded now: nothing left to do, and the lock lists it.
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(site.lock().contains(#""path":"site/c.webp""#), "\(site.lock())")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    @Test func aFreshCloneStillAdoptsWithoutRendering() throws {
        let site = try Site(["images/a.jpg": "orientation-1.jpg", "images/b.jpg": "orientation-2.jpg"], manifest: Self.manifest)
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        let before = try FileManager.default.attributesOfItem(atPath: site.url("_site/a.webp").path)
        try site.freshClone()
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(text(build.stdout))")
        #expect(!text(build.stdout).contains("verified 2"), "\(text(build.stdout))")
        let after = try FileManager.default.attributesOfItem(atPath: site.url("_site/a.webp").path)
        // Not written again: the same file, untouched.
        #expect(before[.systemFileNumber] as? Int == after[.systemFileNumber] as? Int)
        #expect(before[.modificationDate] as? Date == after[.modificationDate] as? Date)
    }
}
