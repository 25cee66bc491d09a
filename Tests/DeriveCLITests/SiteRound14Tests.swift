import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, what attack 14 left: a source that cannot be read says how many derivatives it
/// cost, over every rule that takes it (L1); a source whose outputs' names would hold a control
/// character fails at plan time instead of building outputs `derive serve` refuses (L2).
@Suite(.ownThreads, .serialized) struct SiteRound14Tests {
    typealias Site = SiteRound11Tests.Site

    /// Two rules over one folder: three WebP widths and a JPEG thumbnail, four derivatives a source.
    static let twoRules = """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: _site, acl: public-read}
        derivatives:
          - {name: r, from: "photos/*.jpg", process: "image/resize,w_{w}/format,webp", matrix: {w: [10, 20, 30]}, to: "site/{name}-{w}.webp", acl: public-read}
          - {name: t, from: "photos/*.jpg", process: "image/resize,w_16", to: "site/{name}.thumb.jpg", acl: public-read}
        """

    // MARK: L1: the count of derivatives an unreadable source cost

    /// Tests run as root, so a mode-000 file is still read: a FIFO, a folder at the name, a link
    /// (never followed in a bucket) and a dangling link are what root cannot read as a source;
    /// a non-image is the planner's other refusal. Each is one line with all four derivatives.
    @Test func anUnreadableSourceCountsTheDerivativesOfEveryRule() throws {
        let site = try Site(["photos/good.jpg": "orientation-1.jpg"], manifest: Self.twoRules)
        defer { site.remove() }
        #expect(mkfifo(site.url("photos/pipe.jpg").path, 0o644) == 0)
        try FileManager.default.createDirectory(at: site.url("photos/album.jpg"), withIntermediateDirectories: true)
        try Data("a folder".utf8).write(to: site.url("photos/album.jpg/readme.txt"))
        try FileManager.default.createSymbolicLink(atPath: site.url("photos/link.jpg").path, withDestinationPath: site.url("photos/good.jpg").path)
        try FileManager.default.createSymbolicLink(atPath: site.url("photos/dangling.jpg").path, withDestinationPath: "nowhere.jpg")
        try Data("not a jpeg".utf8).write(to: site.url("photos/bad.jpg"))
        let bad = ["photos/pipe.jpg", "photos/album.jpg", "photos/link.jpg", "photos/dangling.jpg", "photos/bad.jpg"]
        for command in [["plan"], ["build"]] {
            let run = try site.run(command)
            #expect(run.status == 1, "\(command): \(run.stderr)")
            let lines = run.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("derive: failure: ") }
            #expect(lines.count == bad.count, "\(command): one line a source: \(run.stderr)")
            for subject in bad {
                let line = lines.filter { $0.hasPrefix("derive: failure: \(subject): ") }
                #expect(line.count == 1 && line[0].contains(", 4 derivatives not built: ")
                        && line[0].components(separatedBy: "not built").count == 2, "\(command) \(subject): \(run.stderr)")
            }
        }
        #expect(site.files("_site") == ["good-10.webp", "good-20.webp", "good-30.webp", "good.thumb.jpg"], "\(site.files("_site"))")
    }

    /// One rule: the same count as the planner's other refusals (it had none for a FIFO).
    @Test func aFIFOUnderOneRuleSaysWhatItCost() throws {
        let site = try Site(["photos/good.jpg": "orientation-1.jpg"], manifest: SiteRound11Tests.widths("10, 20").replacingOccurrences(of: "images", with: "photos"))
        defer { site.remove() }
        #expect(mkfifo(site.url("photos/pipe.jpg").path, 0o644) == 0)
        let build = try site.run(["build"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("derive: failure: photos/pipe.jpg: cannot read the source: not a regular file (a FIFO); move it, or exclude it in 'exclude:', 2 derivatives not built: "),
                "\(build.stderr)")
    }

    // MARK: L2: names serve refuses are not built

    /// A tab or a newline in a source's name would be in its outputs' names, which `derive serve`
    /// (ObjectKey) refuses: its derivatives fail at plan time naming the character; the others build.
    @Test func aSourceWhoseOutputsServeWouldRefuseFailsAtPlanTime() throws {
        let site = try Site(["photos/good.jpg": "orientation-1.jpg", "photos/tab\there.jpg": "orientation-1.jpg",
                             "photos/new\nline.jpg": "orientation-1.jpg"], manifest: Self.twoRules)
        defer { site.remove() }
        let plan = try site.run(["plan"])
        #expect(plan.status == 1)
        #expect(text(plan.stdout).contains("4 to create"), "\(text(plan.stdout))")
        let build = try site.run(["build"])
        #expect(build.status == 1, "\(build.stderr)")
        // The source's name is printed escaped, as the output's is (round 27b's finding 10).
        for (name, character) in [(#"tab\u{9}here"#, "a tab (U+0009)"), (#"new\u{A}line"#, "a line feed (U+000A)")] {
            for run in [plan, build] {
                #expect(run.stderr.contains("derive: failure: photos/\(name).jpg: its outputs' names would hold \(character), as in site/"), "\(run.stderr)")
            }
        }
        #expect(build.stderr.contains("derive serve refuses keys with control characters") && build.stderr.contains("rename the source, or exclude it in 'exclude:', 4 derivatives not built"),
                "\(build.stderr)")
        #expect(build.stderr.contains(#"as in site/tab\u{9}here-10.webp"#), "the example output is printed escaped: \(build.stderr)")
        #expect(site.files("_site") == ["good-10.webp", "good-20.webp", "good-30.webp", "good.thumb.jpg"], "\(site.files("_site"))")
        // Excluded, the build is clean.
        try site.write(Self.twoRules.replacingOccurrences(of: #"to: "site/{name}.thumb.jpg", acl: public-read}"#,
                                                         with: #"to: "site/{name}.thumb.jpg", acl: public-read, exclude: ["photos/tab*", "photos/new*"]}"#)
                                       .replacingOccurrences(of: #"to: "site/{name}-{w}.webp", acl: public-read}"#,
                                                             with: #"to: "site/{name}-{w}.webp", acl: public-read, exclude: ["photos/tab*", "photos/new*"]}"#))
        let clean = try site.run(["build"])
        #expect(clean.status == 0, "\(clean.stderr)")
    }

    /// Only the names count: a `{hash}` name made without the source's name is served, so built.
    /// (`from` names the one source: `{hash}` alone under a pattern is refused at load.)
    @Test func aControlCharacterOnlyInTheSourceNameIsNotRefusedWhenNoOutputNameHoldsIt() throws {
        let manifest = """
            version: 1
            buckets:
              photos: {path: photos}
              site: {path: _site, acl: public-read}
            derivatives:
              - {name: h, from: "photos/tab\\there.jpg", process: "image/resize,w_10/format,webp", to: "site/img-{hash}.webp", acl: public-read}
            """
        let site = try Site(["photos/tab\there.jpg": "orientation-1.jpg"], manifest: manifest)
        defer { site.remove() }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(site.files("_site").count == 1, "\(site.files("_site"))")
    }
}
