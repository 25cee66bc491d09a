import Foundation
import Testing
import TestSupport
@testable import derive

/// Issue #9, round 21's N1 and N3 against a running `derive serve` (round 19's project:
/// `LeftInPlaceRound19Tests`).
///
/// N1: `derive clean` removed `derive.lock`, and with it the `left` lines of the files builds had
/// left in place (old private outputs, an old private index), but not the files, and did not
/// name them: the next `derive build` wrote a lock without them and serve answered them 200 to
/// anyone, listed. The same for the files `clean` itself leaves (an output changed since Derive
/// wrote it, a lock line's file it may not delete without a state).
///
/// N3: in a fresh clone a private rule's old output whose bytes changed since the lock was
/// written (an image optimiser recompressed it) got no `left` line: private before the build (the
/// lock listed it), public after it.
@Suite(.ownThreads, .serialized) struct LeftInPlaceCleanRound21Tests {
    typealias Round19 = LeftInPlaceRound19Tests
    let round19 = LeftInPlaceRound19Tests()

    /// Round 19's mx.sh: built, `.derive/` gone, the matrix value and the style renamed, built
    /// again: the two old private outputs are left in place with `left` lines.
    func projectWithLeftFiles() throws -> Round19.Project {
        let project = try Round19.Project()
        _ = try project.build(["-q"])
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.edit(Round19.renamed)
        _ = try project.build()
        let lock = try project.read("derive.lock")
        for key in Round19.oldKeys { #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private""#), "\(lock)") }
        return project
    }

    /// Each of `keys` (under `site/`) is anonymous 403, unlisted, signed 200: after `clean`
    /// (no state), then after the build that follows it.
    func expectPrivateAfterCleanAndBuild(_ project: Round19.Project, _ keys: [String], _ when: String) throws {
        do {
            let serve = try ServeSession(in: project.root, environment: [Round19.secretVariable: Round19.secret])
            defer { serve.stop() }
            for key in keys { try round19.expectPrivate(key, project, serve, "\(when): after clean") }
        }
        let build = try project.build()
        let lock = try project.read("derive.lock")
        for key in keys {
            #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private""#), "\(when): the build after clean keeps the line: \(lock) \(String(decoding: build.stdout, as: UTF8.self))")
        }
        let serve = try ServeSession(in: project.root, environment: [Round19.secretVariable: Round19.secret])
        defer { serve.stop() }
        for key in keys { try round19.expectPrivate(key, project, serve, "\(when): after clean and build") }
        try round19.expectPublic("g/lake.webp", project, serve, "\(when): the public rule's output")
    }

    /// `clean` after the left build, with its state and without (a clone): the left files stay,
    /// named; the lock stays holding only their lines (no output line); private after clean and
    /// after the next build.
    @Test(arguments: [false, true])
    func cleanKeepsTheLeftFilesPrivate(_ stateGone: Bool) throws {
        setenv(Round19.secretVariable, Round19.secret, 1)
        let project = try projectWithLeftFiles()
        defer { project.remove() }
        if stateGone { try FileManager.default.removeItem(at: project.url(".derive")) }
        let clean = try project.run(["clean"])
        let out = String(decoding: clean.stdout, as: UTF8.self)
        #expect(clean.status == 0, "\(out) \(clean.stderr)")
        for key in Round19.oldKeys {
            #expect(project.exists("site/" + key), "\(key) left in place")
            #expect(out.contains("= site/\(key)  left in place (known only from the lock): kept in derive.lock as a file left private"), "\(out)")
        }
        #expect(!project.exists("site/g/lake.webp"), "the outputs are removed: \(out) \(clean.stderr)")
        #expect(out.contains("derive.lock kept, holding only the 2 files left in place"), "\(out)")
        let lock = (try? project.read("derive.lock")) ?? "(no lock)"
        #expect(lock.hasPrefix(#"{"format":"derive.lock/3""#) && !lock.contains(#"{"path":"#) && !lock.contains(#""index":"#), "\(lock)")
        #expect(lock.split(separator: "\n").count == 3, "\(lock)")
        try expectPrivateAfterCleanAndBuild(project, Round19.oldKeys, stateGone ? "clean without a state" : "clean with the state")
    }

    /// f2.sh then clean: the old private index a build left in place keeps its line.
    @Test(arguments: [false, true])
    func cleanKeepsAnOldPrivateIndexPrivate(_ freshClone: Bool) throws {
        setenv(Round19.secretVariable, Round19.secret, 1)
        let project = try Round19.Project()
        defer { project.remove() }
        try project.edit { $0.replacingOccurrences(of: "    acl: private\n  - name: internal2", with: "    acl: private\n    placeholder: true\n  - name: internal2") }
        _ = try project.build(["-q"])
        if freshClone {
            try FileManager.default.removeItem(at: project.url(".derive"))
        } else {
            try project.recreate("site/index.json")
        }
        try project.edit { $0.replacingOccurrences(of: #"match: "index.json""#, with: #"match: "data/index.json""#)
            .replacingOccurrences(of: "index: site/index.json", with: "index: site/data/index.json") }
        _ = try project.build()
        #expect(try project.read("derive.lock").contains(#"{"left":"site/index.json","acl":"private","why":"old index"}"#))
        let clean = try project.run(["clean"])
        let out = String(decoding: clean.stdout, as: UTF8.self)
        #expect(clean.status == 0, "\(out) \(clean.stderr)")
        #expect(project.exists("site/index.json") && !project.exists("site/data/index.json"), "\(out) \(clean.stderr)")
        #expect(out.contains("= site/index.json  left in place (old index): kept in derive.lock as a file left private"), "\(out)")
        try expectPrivateAfterCleanAndBuild(project, ["index.json"], freshClone ? "old index, fresh clone" : "old index re-created")
    }

    /// Files `clean` itself leaves get a line when their key would be answered more publicly
    /// without one: with a state, a private output an optimiser changed after its rule's matrix
    /// value and style were renamed (its record said private, no template gives its key now);
    /// without a state, the lock's lines for those old outputs (clean deletes nothing on the
    /// lock's word), whether their bytes still match the lock or not.
    @Test(arguments: ["state, changed", "clone", "clone, changed"])
    func filesCleanLeavesKeepTheACLServeGaveThem(_ mode: String) throws {
        setenv(Round19.secretVariable, Round19.secret, 1)
        let project = try Round19.Project()
        defer { project.remove() }
        _ = try project.build(["-q"])
        if mode.hasSuffix("changed") {
            for key in Round19.oldKeys {
                let handle = try FileHandle(forWritingTo: project.url("site/" + key))
                try handle.seekToEnd()
                try handle.write(contentsOf: Data("X".utf8))
                try handle.close()
            }
        }
        if mode.hasPrefix("clone") { try FileManager.default.removeItem(at: project.url(".derive")) }
        try project.edit(Round19.renamed)
        let clean = try project.run(["clean"])
        let out = String(decoding: clean.stdout, as: UTF8.self)
        #expect(clean.status == 0, "\(out) \(clean.stderr)")
        let why = mode == "state, changed" ? "changed since Derive wrote it" : "known only from the lock"
        for key in Round19.oldKeys {
            #expect(project.exists("site/" + key), "\(mode): \(key) left in place")
            #expect(out.contains("= site/\(key)  left in place (\(why)"), "\(mode): \(out) \(clean.stderr)")
            #expect(out.contains("kept in derive.lock as a file left private"), "\(mode): \(out)")
        }
        try expectPrivateAfterCleanAndBuild(project, Round19.oldKeys, mode)
    }

    /// Once the left files are gone, `clean` keeps their private lines marked gone (round 21's
    /// N4: a file put back there stays private) and says they are gone, not "left in place";
    /// the file put back after `clean` and a build is still private.
    @Test func cleanKeepsGoneLinesOfPrivateLeftFilesAndSaysSo() throws {
        let project = try projectWithLeftFiles()
        defer { project.remove() }
        var saved: [String: Data] = [:]
        for key in Round19.oldKeys {
            saved[key] = try Data(contentsOf: project.url("site/" + key))
            try FileManager.default.removeItem(at: project.url("site/" + key))
        }
        let clean = try project.run(["clean"])
        let out = String(decoding: clean.stdout, as: UTF8.self)
        #expect(clean.status == 0, "\(out) \(clean.stderr)")
        let lock = try project.read("derive.lock")
        for key in Round19.oldKeys {
            #expect(out.contains("~ site/\(key)  left in place (known only from the lock), gone now: kept in derive.lock as gone (private)"), "\(out)")
            #expect(!out.contains("= site/\(key)  left in place"), "\(out)")
            #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private""#) && lock.contains(#""gone":true"#), "\(lock)")
        }
        #expect(out.contains("derive.lock kept, holding only the \(Round19.oldKeys.count) files left in place (all gone now)"), "\(out)")
        for (key, bytes) in saved { try bytes.write(to: project.url("site/" + key)) }
        try expectPrivateAfterCleanAndBuild(project, Round19.oldKeys, "put back after clean")
    }

    /// N3 (left.sh optim): a fresh clone whose private outputs an optimiser changed (one byte
    /// appended) after the lock was written; the renames; a build. The files are left, and keep
    /// the ACL serve gave their keys before the build (private: the lock listed them, no template
    /// gives them), the build says so.
    @Test func aFreshClonesChangedPrivateOutputStaysPrivateWhenLeft() throws {
        setenv(Round19.secretVariable, Round19.secret, 1)
        let project = try Round19.Project()
        defer { project.remove() }
        _ = try project.build(["-q"])
        for key in Round19.oldKeys {
            let handle = try FileHandle(forWritingTo: project.url("site/" + key))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("X".utf8))
            try handle.close()
        }
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.edit(Round19.renamed)
        do {
            let serve = try ServeSession(in: project.root, environment: [Round19.secretVariable: Round19.secret])
            defer { serve.stop() }
            for key in Round19.oldKeys { try round19.expectPrivate(key, project, serve, "changed, fresh clone: before the build") }
        }
        let build = try project.build()
        let out = String(decoding: build.stdout, as: UTF8.self)
        let lock = try project.read("derive.lock")
        for key in Round19.oldKeys {
            #expect(project.exists("site/" + key), "\(key) left in place")
            #expect(out.contains("= site/\(key)  left in place (known only from the lock, changed since): kept in derive.lock as a file left private"), "\(out)")
            #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private","why":"known only from the lock, changed since"}"#), "\(lock)")
        }
        let serve = try ServeSession(in: project.root, environment: [Round19.secretVariable: Round19.secret])
        defer { serve.stop() }
        for key in Round19.oldKeys { try round19.expectPrivate(key, project, serve, "changed, fresh clone: after the build") }
        try round19.expectPublic("g/lake.webp", project, serve, "the public rule's output")
    }
}
