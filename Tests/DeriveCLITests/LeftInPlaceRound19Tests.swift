import Foundation
import Manifest
import Planner
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Issues #13 and #9, round 19's V1 and V2 against a running `derive serve`: a file a build leaves
/// in place instead of deleting it (an old output known only from the lock in a fresh clone, one
/// re-created since Derive wrote it, an old index) stays known, with the ACL it was left under,
/// in the lock's `left` lines until the file is gone. Before, once the build rewrote the lock
/// without it and its key matched no template of the manifest any more (a renamed matrix value
/// or style, a moved `to:`, a removed rule, a moved `index:`), it fell to its public bucket's
/// ACL: 200 to anyone, and listed.
@Suite(.ownThreads, .serialized) struct LeftInPlaceRound19Tests {
    static let secretVariable = "DERIVE_R19_LEFT_SECRET"
    static let secret = "r19-left-s3cret"

    /// Round 19's mx.sh manifest: `gallery` public; `internal` (matrix `w`) and `internal2`
    /// (style `small`) private, all into the public bucket `site`, whose index is private by an
    /// `objects:` rule. `edits` rewrite it (the renames of the attack).
    static let manifest = """
        version: 1
        access_keys:
          - id: AKIDR19
            secret_env: \(secretVariable)
        buckets:
          pub: {path: pub, acl: public-read}
          priv: {path: priv, acl: private}
          site:
            path: site
            acl: public-read
            objects: [{match: "index.json", acl: private}]
        styles:
          small: image/resize,w_40/format,webp
        derivatives:
          - name: gallery
            from: pub/*.jpg
            process: image/resize,w_48/format,webp
            to: site/g/{name}.webp
          - name: internal
            from: priv/*.jpg
            matrix: {w: [32, 36]}
            process: image/resize,w_{w}/format,webp
            to: site/internal/{name}-{w}.webp
            acl: private
          - name: internal2
            from: priv/*.jpg
            styles: [small]
            to: site/st/{name}.{style}.{ext}
            acl: private
        index: site/index.json

        """

    /// mx.sh's edit: the matrix value 32 → 30, the style `small` → `tiny`.
    static func renamed(_ text: String) -> String {
        text.replacingOccurrences(of: "w: [32, 36]", with: "w: [30, 36]").replacingOccurrences(of: "  small: ", with: "  tiny: ")
            .replacingOccurrences(of: "styles: [small]", with: "styles: [tiny]")
    }

    struct Project {
        let root: URL
        init(_ manifest: String = LeftInPlaceRound19Tests.manifest) throws {
            root = try CLI.temporaryFolder()
            for folder in ["pub", "priv", "site"] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url("pub/lake.jpg"))
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: url("priv/ceo-passport-scan.jpg"))
            try write("derive.yaml", manifest)
        }
        func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: url(name)) }
        func read(_ name: String) throws -> String { try String(contentsOf: url(name), encoding: .utf8) }
        func edit(_ change: (String) -> String) throws { try write("derive.yaml", change(try read("derive.yaml"))) }
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func run(_ arguments: [String]) throws -> CLI.Result {
            try CLI.run(arguments, in: root, environment: [LeftInPlaceRound19Tests.secretVariable: LeftInPlaceRound19Tests.secret])
        }
        func build(_ arguments: [String] = []) throws -> CLI.Result {
            let result = try run(["build"] + arguments)
            #expect(result.status == 0, "\(String(decoding: result.stdout, as: UTF8.self)) \(result.stderr)")
            return result
        }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: url(path).path) }
        /// A copy renamed over the file: the same bytes under a new inode (a restore, rsync).
        func recreate(_ path: String) throws {
            try? FileManager.default.removeItem(at: url("copy.tmp"))
            try FileManager.default.copyItem(at: url(path), to: url("copy.tmp"))
            #expect(rename(url("copy.tmp").path, url(path).path) == 0)
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
        /// Built, then the files at `keys` of `site/` re-created (no longer the files Derive
        /// wrote) and the manifest changed so that no rule gives them: built again, which leaves
        /// them in place. Returns that build.
        @discardableResult
        func leaveInPlace(_ keys: [String], by change: (String) -> String) throws -> CLI.Result {
            _ = try build(["-q"])
            for key in keys { try recreate("site/" + key) }
            try edit(change)
            return try build()
        }
    }

    /// The public rule's `to:` moved from `site/g/` to `site/gallery/`.
    static func movedGallery(_ text: String) -> String {
        text.replacingOccurrences(of: "to: site/g/{name}.webp", with: "to: site/gallery/{name}.webp")
    }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func request(_ serve: ServeSession, _ target: String) throws -> (status: Int, body: [UInt8]) {
        let connection = try ServeConnectionTests.Connection(port: serve.port)
        connection.send("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let response = try #require(connection.response(head: false))
        return (response.status, response.body)
    }

    func signed(_ project: Project, _ object: String, serve: ServeSession) throws -> String {
        let result = try project.run(["sign", object, "--endpoint", "http://127.0.0.1:\(serve.port)"])
        #expect(result.status == 0, "\(result.stderr)")
        let url = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let components = try #require(URLComponents(string: url))
        return components.percentEncodedPath + "?" + (components.percentEncodedQuery ?? "")
    }

    /// `site/<key>` is there, answers 403 to an anonymous GET, is in no anonymous listing, and a
    /// signed GET answers its bytes.
    func expectPrivate(_ key: String, _ project: Project, _ serve: ServeSession, _ when: String) throws {
        let bytes = try Data(contentsOf: project.url("site/" + key))
        let anonymous = try request(serve, "/site/" + key)
        #expect(anonymous.status == 403, "\(when): anonymous GET site/\(key): \(anonymous.status)")
        #expect(Data(anonymous.body) != bytes)
        for listing in ["/site/?prefix=", "/site/?list-type=2&prefix=", "/site/?max-keys=1000"] {
            let list = try request(serve, listing)
            #expect(list.status == 200 && !text(list.body).contains("<Key>\(key)</Key>"), "\(when): \(listing) lists \(key): \(text(list.body))")
        }
        let signedGet = try request(serve, try signed(project, "site/" + key, serve: serve))
        #expect(signedGet.status == 200 && Data(signedGet.body) == bytes, "\(when): signed GET site/\(key): \(signedGet.status)")
    }

    func expectPublic(_ key: String, _ project: Project, _ serve: ServeSession, _ when: String) throws {
        let bytes = try Data(contentsOf: project.url("site/" + key))
        let anonymous = try request(serve, "/site/" + key)
        #expect(anonymous.status == 200 && Data(anonymous.body) == bytes, "\(when): anonymous GET site/\(key): \(anonymous.status)")
        let list = try request(serve, "/site/?prefix=")
        #expect(text(list.body).contains("<Key>\(key)</Key>"), "\(when): the listing misses \(key): \(text(list.body))")
    }

    static let oldKeys = ["internal/ceo-passport-scan-32.webp", "st/ceo-passport-scan.small.webp"]

    /// mx.sh fresh: built, `.derive/` gone (a fresh clone of a repository that commits its
    /// outputs), the matrix value and the style renamed, built again. The old outputs are left,
    /// known only from the lock; the build that rewrote the lock published them.
    @Test func aFreshClonesOldPrivateOutputsUnderRenamedValuesStayPrivate() throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        _ = try project.build(["-q"])
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.edit(Self.renamed)
        let build = try project.build()
        for key in Self.oldKeys { #expect(project.exists("site/" + key), "\(key) left in place") }
        let lock = try project.read("derive.lock")
        #expect(lock.hasPrefix(#"{"format":"derive.lock/3""#), "\(lock)")
        for key in Self.oldKeys {
            // With the digest of the output line it replaced (attack 46c's t24).
            #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private","why":"known only from the lock","digest":""#), "\(lock)")
        }
        #expect(String(decoding: build.stdout, as: UTF8.self).contains("kept in derive.lock as a file left private"), "\(String(decoding: build.stdout, as: UTF8.self))")

        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        for key in Self.oldKeys { try expectPrivate(key, project, serve, "fresh clone, after the build") }
        try expectPublic("g/lake.webp", project, serve, "the public rule's output")

        // A later build (a state now) keeps them; `check` calls the tree up to date and names them.
        _ = try project.build()
        #expect(try project.read("derive.lock") == lock, "the lock's bytes stay")
        for key in Self.oldKeys { try expectPrivate(key, project, serve, "after a second build") }
        let check = try project.run(["check"])
        let checkText = String(decoding: check.stdout, as: UTF8.self)
        #expect(check.status == 0, "\(checkText) \(check.stderr)")
        for key in Self.oldKeys { #expect(checkText.contains("= site/\(key)  left in place"), "\(checkText)") }
    }

    /// mx.sh recreate: with the state, the two private outputs re-created with the same bytes
    /// (a new inode: "not the file Derive wrote there; left in place"), then the renames.
    @Test func recreatedPrivateOutputsUnderRenamedValuesStayPrivate() throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        let build = try project.leaveInPlace(Self.oldKeys, by: Self.renamed)
        #expect(build.stderr.contains("not the file Derive wrote there"), "\(build.stderr)")
        let out = String(decoding: build.stdout, as: UTF8.self)
        for key in Self.oldKeys {
            #expect(out.contains("= site/\(key)  left in place (not the file Derive wrote there): kept in derive.lock as a file left private"), "\(out)")
        }
        let lock = try project.read("derive.lock")
        for key in Self.oldKeys {
            #expect(lock.contains(#"{"left":"site/\#(key)","acl":"private","why":"not the file Derive wrote there"}"#), "\(lock)")
        }
        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        for key in Self.oldKeys { try expectPrivate(key, project, serve, "re-created, after the build") }
        // A clone of that tree (the lock travels, the state does not): still private.
        try FileManager.default.removeItem(at: project.url(".derive"))
        for key in Self.oldKeys { try expectPrivate(key, project, serve, "re-created, state gone") }
    }

    /// mx.sh keep: with the state and the files untouched, the old outputs are deleted: nothing
    /// is left, the lock holds no `left` line and stays `derive.lock/2`.
    @Test func oldOutputsDerivesOwnAreDeletedAndNothingIsLeft() throws {
        let project = try Project()
        defer { project.remove() }
        _ = try project.build(["-q"])
        try project.edit(Self.renamed)
        _ = try project.build()
        for key in Self.oldKeys { #expect(!project.exists("site/" + key), "\(key) deleted") }
        let lock = try project.read("derive.lock")
        #expect(lock.hasPrefix(#"{"format":"derive.lock/2""#) && !lock.contains(#"{"left":"#), "\(lock)")
    }

    /// mv2.sh: a fresh clone where the private rule's `to:` moved, the rule was removed, or its
    /// source was replaced. Private before the build (the lock lists it) and after it.
    @Test(arguments: ["to", "rm", "src"])
    func aFreshClonesOldPrivateOutputStaysPrivateWhenTheRuleMoves(_ mode: String) throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        try project.edit { $0.replacingOccurrences(of: "to: site/internal/{name}-{w}.webp", with: "to: site/internal/{name}.webp")
            .replacingOccurrences(of: "    matrix: {w: [32, 36]}\n", with: "").replacingOccurrences(of: "w_{w}", with: "w_32") }
        _ = try project.build(["-q"])
        let old = "internal/ceo-passport-scan.webp"
        #expect(project.exists("site/" + old))
        try FileManager.default.removeItem(at: project.url(".derive"))
        switch mode {
        case "to": try project.edit { $0.replacingOccurrences(of: "to: site/internal/{name}.webp", with: "to: site/staff/{name}.webp") }
        case "rm":
            try project.edit { text in
                let start = try! #require(text.range(of: "  - name: internal\n"))
                let end = try! #require(text.range(of: "  - name: internal2\n"))
                return text.replacingCharacters(in: start.lowerBound..<end.lowerBound, with: "")
            }
        default:
            try FileManager.default.removeItem(at: project.url("priv/ceo-passport-scan.jpg"))
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("cmyk.jpg"), to: project.url("priv/other.jpg"))
        }
        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        try expectPrivate(old, project, serve, "\(mode): before the build")
        _ = try project.build()
        #expect(project.exists("site/" + old), "\(mode): left in place")
        try expectPrivate(old, project, serve, "\(mode): after the build")
    }

    /// f2.sh: `index:` moves (with its `objects:` rule). With a state, the old index re-created
    /// (same bytes, new inode: "changed since Derive wrote it as the index … left in place"); and
    /// in a fresh clone ("named as the old index by derive.lock … kept"). It lists a private
    /// source's name and placeholder: private, before and after the build.
    @Test(arguments: [false, true])
    func anOldPrivateIndexLeftInPlaceStaysPrivate(_ freshClone: Bool) throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        try project.edit { $0.replacingOccurrences(of: "    acl: private\n  - name: internal2", with: "    acl: private\n    placeholder: true\n  - name: internal2") }
        _ = try project.build(["-q"])
        #expect(try project.read("site/index.json").contains("priv/ceo-passport-scan.jpg"))
        if freshClone {
            try FileManager.default.removeItem(at: project.url(".derive"))
        } else {
            try project.recreate("site/index.json")
        }
        try project.edit { $0.replacingOccurrences(of: #"match: "index.json""#, with: #"match: "data/index.json""#)
            .replacingOccurrences(of: "index: site/index.json", with: "index: site/data/index.json") }
        let build = try project.build()
        #expect(project.exists("site/index.json") && project.exists("site/data/index.json"), "\(build.stderr)")
        let lock = try project.read("derive.lock")
        #expect(lock.contains(#"{"left":"site/index.json","acl":"private","why":"old index"}"#), "\(lock)")
        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        try expectPrivate("index.json", project, serve, freshClone ? "fresh clone" : "re-created old index")
        try expectPrivate("data/index.json", project, serve, "the new index")
        if !freshClone {
            try FileManager.default.removeItem(at: project.url(".derive"))
            try expectPrivate("index.json", project, serve, "re-created old index, state gone")
        }
    }

    /// Never make a user's public file private by accident: a public rule's output left in place
    /// (re-created, then its rule's `to:` moved) keeps the public ACL it was left under.
    @Test func aPublicRulesLeftFileStaysPublic() throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        try project.leaveInPlace(["g/lake.webp"], by: Self.movedGallery)
        let lock = try project.read("derive.lock")
        #expect(lock.contains(#"{"left":"site/g/lake.webp","acl":"public-read","why":"not the file Derive wrote there"}"#), "\(lock)")
        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        try expectPublic("g/lake.webp", project, serve, "a public rule's left file")
        try expectPublic("gallery/lake.webp", project, serve, "its new output")
    }

    /// Once its file is gone a private left file's line is kept, marked gone (round 21's N4: a
    /// file put back there is answered privately); `check` names it and is not failed by it.
    @Test func aPrivateLeftLineIsMarkedGoneOnceItsFileIsGone() throws {
        let project = try Project()
        defer { project.remove() }
        try project.leaveInPlace(Self.oldKeys, by: Self.renamed)
        try FileManager.default.removeItem(at: project.url("site/" + Self.oldKeys[0]))
        let check = try project.run(["check"])
        let checkText = String(decoding: check.stdout, as: UTF8.self)
        #expect(check.status == 0, "\(checkText) \(check.stderr)")
        #expect(checkText.contains("~ site/\(Self.oldKeys[0])  left in place"), "\(checkText)")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("cmyk.jpg"), to: project.url("pub/other.jpg"))
        let build = try project.build()
        let out = String(decoding: build.stdout, as: UTF8.self)
        #expect(out.contains("~ site/\(Self.oldKeys[0])  left in place (not the file Derive wrote there), gone now"), "\(out)")
        let lock = try project.read("derive.lock")
        // Since when it is gone, in the lock too (round 22's V5: `clean` removes the state).
        #expect(lock.contains(#"{"left":"site/\#(Self.oldKeys[0])","acl":"private","why":"not the file Derive wrote there","gone":true,"goneSince":"#), "\(lock)")
        #expect(lock.contains(#"{"left":"site/\#(Self.oldKeys[1])","acl":"private","why":"not the file Derive wrote there"}"#), "\(lock)")
        try FileManager.default.removeItem(at: project.url("site/" + Self.oldKeys[1]))
        try FileManager.default.removeItem(at: project.url("pub/other.jpg"))
        _ = try project.build()
        let gone = try project.read("derive.lock")
        #expect(gone.components(separatedBy: #""gone":true"#).count == 3, "both kept, gone: \(gone)")
        #expect(try project.run(["check"]).status == 0)
    }

    /// A public rule's left file's line goes once the file is gone: it narrows nothing.
    @Test func aPublicLeftLineIsDroppedOnceItsFileIsGone() throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        try project.leaveInPlace(["g/lake.webp"], by: Self.movedGallery)
        #expect(try project.read("derive.lock").contains(#"{"left":"site/g/lake.webp""#))
        try FileManager.default.removeItem(at: project.url("site/g/lake.webp"))
        let build = try project.build()
        let out = String(decoding: build.stdout, as: UTF8.self)
        #expect(out.contains("- site/g/lake.webp  no longer left in place: the file is gone"), "\(out)")
        let plain = try project.read("derive.lock")
        #expect(plain.hasPrefix(#"{"format":"derive.lock/2""#) && !plain.contains(#"{"left":"#), "the lock is /2 again: \(plain)")
        #expect(try project.run(["check"]).status == 0)
    }
}
