import Foundation
import Testing
import TestSupport

/// Attack 41c's C1 and C4: another project was found only by a manifest in the written file's
/// folder or a folder above it. A project beside this one (A/derive.yaml reading `../shared`, or
/// `photos` linked to `../shared`), or reached through a bucket that is a link into its source
/// folder, lost its sources to `--overwrite`; and its recorded outputs in a shared folder were
/// called "not written by Derive" instead of naming it.
@Suite(.ownThreads, .serialized) struct ForeignProjectRound42Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(_ buckets: String, process: String = "image/resize,w_8") -> String {
        """
        version: 1
        buckets:
        \(buckets)
        derivatives:
          - {name: t, from: "src/*.jpg", process: "\(process)", to: "out/{name}.jpg"}

        """
    }

    /// A/derive.yaml reads `shared/` (through `sources`, relative to A) and writes `pub/`, built;
    /// B/derive.yaml writes `out:` to `writes` (relative to B), source B/src/a1.jpg.
    static func siblings(sources: String = "../shared", writes: String) throws -> Site {
        let site = try Site(["shared/a1.jpg": "landscape.jpg", "B/src/a1.jpg": "portrait.jpg"], manifest: nil)
        try FileManager.default.createDirectory(at: site.url("A"), withIntermediateDirectories: true)
        if sources != "../shared" { try FileManager.default.createSymbolicLink(atPath: site.url("A/" + sources).path, withDestinationPath: "../shared") }
        try Data(manifest("  src: {path: \(sources)}\n  out: {path: ../pub}", process: "image/resize,w_32").utf8).write(to: site.url("A/derive.yaml"))
        try Data(manifest("  src: {path: src}\n  out: {path: \(writes)}").utf8).write(to: site.url("B/derive.yaml"))
        let built = try site.run(["build", "-q", "A/derive.yaml"])
        #expect(built.status == 0, "\(said(built))")
        return site
    }

    static func refusedWithOrWithoutOverwrite(_ site: Site, _ manifest: String, file: String) throws {
        let before = try Data(contentsOf: site.url(file))
        for arguments in [["build", manifest], ["build", "--overwrite", manifest], ["build", "--verify", manifest]] {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(said(refused).contains("another project") && said(refused).contains("with or without --overwrite"), "\(arguments): \(said(refused))")
            #expect(!said(refused).contains("pass --overwrite"), "\(arguments): offers --overwrite: \(said(refused))")
        }
        #expect(try Data(contentsOf: site.url(file)) == before, "\(file) was written over")
    }

    /// C1: A's source bucket lies outside A's folder, reached directly or through a link in A.
    @Test(arguments: ["../shared", "photos"])
    func aSiblingsSourcesOutsideItsFolderAreNeverWrittenOver(sources: String) throws {
        let site = try Self.siblings(sources: sources, writes: "../shared")
        defer { site.remove() }
        try Self.refusedWithOrWithoutOverwrite(site, "B/derive.yaml", file: "shared/a1.jpg")
        let check = try site.run(["check", "A/derive.yaml"])
        #expect(check.status == 0, "A is untouched: \(said(check))")
    }

    /// C1: B's bucket is a link into A's source folder (`alink -> ../A/src`).
    @Test func aBucketLinkedIntoAnotherProjectsSourcesWritesNothingThere() throws {
        let site = try Site(["A/src/a1.jpg": "landscape.jpg", "B/src/a1.jpg": "portrait.jpg"], manifest: nil)
        defer { site.remove() }
        try Data(Self.manifest("  src: {path: src}\n  out: {path: out}").utf8).write(to: site.url("A/derive.yaml"))
        #expect(try site.run(["build", "-q", "A/derive.yaml"]).status == 0)
        try FileManager.default.createSymbolicLink(atPath: site.url("B/alink").path, withDestinationPath: "../A/src")
        try Data(Self.manifest("  src: {path: src}\n  out: {path: alink}").utf8).write(to: site.url("B/derive.yaml"))
        try Self.refusedWithOrWithoutOverwrite(site, "B/derive.yaml", file: "A/src/a1.jpg")
    }

    /// Without its lock (`lock` deleted), A's own build state says the same.
    @Test func anotherProjectsOutputIsNamedFromItsStateWithoutItsLock() throws {
        let site = try Self.siblings(writes: "../pub")
        defer { site.remove() }
        try FileManager.default.removeItem(at: site.url("A/derive.lock"))
        let refused = try site.run(["plan", "B/derive.yaml"])
        #expect(refused.status == 1, "\(said(refused))")
        #expect(said(refused).contains("pub/a1.jpg is an output of " + site.root.resolvingSymlinksInPath().path + "/A/derive.yaml (its build state says so)"), "\(said(refused))")
    }

    /// A project nearby whose source bucket holds this project's whole folder (C/derive.yaml
    /// reading `..` or `../B`) does not make a user's file in this project's bucket a source of
    /// its: only a project above may claim that wide; `--overwrite` still takes the file.
    @Test(arguments: ["..", "../B"])
    func aNearbyProjectReadingThisWholeFolderClaimsNothingHere(sources: String) throws {
        let site = try Site(["B/src/a1.jpg": "portrait.jpg", "C/src/a1.jpg": "landscape.jpg"], manifest: nil)
        defer { site.remove() }
        try Data(Self.manifest("  src: {path: \(sources)}\n  out: {path: out}").utf8).write(to: site.url("C/derive.yaml"))
        try Data(Self.manifest("  src: {path: src}\n  out: {path: out}").utf8).write(to: site.url("B/derive.yaml"))
        try FileManager.default.createDirectory(at: site.url("B/out"), withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: site.url("B/out/a1.jpg"))
        let refused = try site.run(["plan", "B/derive.yaml"])
        #expect(refused.status == 1 && said(refused).contains("pass --overwrite") && !said(refused).contains("another project"), "\(said(refused))")
        let taken = try site.run(["build", "-q", "--overwrite", "B/derive.yaml"])
        #expect(taken.status == 0, "\(said(taken))")
    }

    /// C4: another project's recorded output in a folder both write to is named with its owner
    /// (its lock records these bytes), beside (`../pub`) or above (`../out` of the project the
    /// folder above holds); `--overwrite` still takes it, as the README allows.
    @Test(arguments: [false, true])
    func anotherProjectsOutputIsNamedWithItsOwner(above: Bool) throws {
        let site: Site
        let manifest: String, owner: String, file: String
        if above {
            site = try Site(["photos/a1.jpg": "landscape.jpg", "web/src/a1.jpg": "portrait.jpg"], manifest: nil)
            try Data(Self.manifest("  src: {path: photos}\n  out: {path: out}", process: "image/resize,w_32").utf8).write(to: site.url("derive.yaml"))
            #expect(try site.run(["build", "-q"]).status == 0)
            try Data(Self.manifest("  src: {path: src}\n  out: {path: ../out}").utf8).write(to: site.url("web/derive.yaml"))
            (manifest, owner, file) = ("web/derive.yaml", "derive.yaml", "out/a1.jpg")
        } else {
            site = try Self.siblings(writes: "../pub")
            (manifest, owner, file) = ("B/derive.yaml", "A/derive.yaml", "pub/a1.jpg")
        }
        defer { site.remove() }
        let named = "is an output of " + site.root.resolvingSymlinksInPath().path + "/" + owner
        for arguments in [["plan", manifest], ["build", manifest], ["build", "--verify", manifest]] {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(said(refused).contains(named) && said(refused).contains("its lock"), "\(arguments): names the owner: \(said(refused))")
            #expect(!said(refused).contains("was not written by Derive"), "\(arguments): \(said(refused))")
        }
        let before = try Data(contentsOf: site.url(file))
        let taken = try site.run(["build", "-q", "--overwrite", manifest])
        #expect(taken.status == 0, "--overwrite takes another manifest's output: \(said(taken))")
        #expect(try Data(contentsOf: site.url(file)) != before)
    }

    /// Attack 42a's H3: a nested project whose manifest parses but loads with errors (an include
    /// gone, a process cut short, an unknown key) lost the rule the error dropped, and with it the
    /// protection of that rule's sources and outputs: `--overwrite` wrote over both.
    @Test(arguments: ["include: [inc/gone.yaml]\n", "process: image/resize,w_\n", "stylez: {}\n"])
    func aProjectThatLoadsWithErrorsKeepsItsFiles(breakage: String) throws {
        let (site, _, source) = try ForeignProjectRound41Tests.nested(to: "top/src/{name}.jpg")
        defer { site.remove() }
        let inner = try site.run(["build", "-q", "sub/derive.yaml"])
        #expect(inner.status == 0, "\(said(inner))")
        let output = try Data(contentsOf: site.url("sub/out/t/derive.jpg"))
        var manifest = try String(contentsOf: site.url("sub/derive.yaml"), encoding: .utf8)
        if breakage.hasPrefix("process") {
            manifest = manifest.replacingOccurrences(of: "process: image/resize,w_32\n", with: breakage)
        } else {
            manifest += breakage
        }
        try Data(manifest.utf8).write(to: site.url("sub/derive.yaml"))
        #expect(try site.run(["validate", "sub/derive.yaml"]).status != 0, "the breakage is an error")
        for to in ["top/src/{name}.jpg", "top/out/t/{name}.jpg"] {
            var writer = try String(contentsOf: site.url("site.yaml"), encoding: .utf8)
            writer = writer.replacingOccurrences(of: "top/src/{name}.jpg", with: to)
            try Data(writer.utf8).write(to: site.url("site.yaml"))
            let refused = try site.run(["build", "--overwrite", "site.yaml"])
            #expect(refused.status == 1, "\(to): \(said(refused))")
            #expect(said(refused).contains("with or without --overwrite"), "\(to): \(said(refused))")
            #expect(said(refused).contains("another project whose manifest does not load"), "\(to): \(said(refused))")
        }
        #expect(try Data(contentsOf: site.url("sub/src/derive.jpg")) == source)
        #expect(try Data(contentsOf: site.url("sub/out/t/derive.jpg")) == output)
    }
}
