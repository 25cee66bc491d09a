import Foundation
import Testing
import TestSupport
import Imaging

/// `derive diff` over a temporary git repository with two commits of a manifest: a style change,
/// a new rule, a removed rule, and a refactor (a style string rewritten as a list) that compiles
/// to the same canonical pipeline and must show no change.
struct DiffRepository {
    let folder: URL
    var path: String { folder.path }

    static let gitFound = FileManager.default.isExecutableFile(atPath: "/usr/bin/git")

    static let manifestOne = """
    version: 1
    include: [styles.yaml]
    buckets:
      photos: {path: src, acl: public-read}
      site: {path: out, acl: public-read}
    derivatives:
      - name: gallery
        from: photos/*.jpg
        styles: [thumb, hero]
        to: site/{name}.{style}.{ext}
      - name: old
        from: photos/*.png
        process: image/resize,w_50
        to: site/old/{name}.png

    """
    static let stylesOne = """
    styles:
      thumb: image/resize,m_fill,w_120,h_80/quality,q_80
      hero: image/resize,w_200

    """
    static let manifestTwo = manifestOne.replacingOccurrences(of: """
      - name: old
        from: photos/*.png
        process: image/resize,w_50
        to: site/old/{name}.png
    """, with: """
      - name: new
        from: photos/*.png
        process: image/resize,w_60/format,webp
        to: site/new/{name}.webp
    """)
    static let stylesTwo = """
    styles:
      thumb: image/resize,m_fill,w_120,h_80/quality,q_95
      hero:
        - resize: {w: 200}

    """

    init() throws {
        folder = try CLI.temporaryFolder()
        let src = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg", "logo-alpha.png"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: src.appendingPathComponent(name))
        }
        try write("derive.yaml", Self.manifestOne)
        try write("styles.yaml", Self.stylesOne)
        try git("init", "-q", ".")
        try git("add", "-A")
        try git("commit", "-qm", "one")
    }

    /// A repository at a folder another test made (its `git` only).
    init(existing folder: URL) { self.folder = folder }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: folder.appendingPathComponent(name))
    }

    /// The second commit's manifest in the working tree (committed when `commit`).
    func change(commit: Bool) throws {
        try write("derive.yaml", Self.manifestTwo)
        try write("styles.yaml", Self.stylesTwo)
        if commit {
            try git("add", "-A")
            try git("commit", "-qm", "two")
        }
    }

    @discardableResult
    func git(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-c", "user.name=test", "-c", "user.email=test@example.com"] + arguments
        process.currentDirectoryURL = folder
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw DiffTestError("git \(arguments) failed") }
        return String(decoding: data, as: UTF8.self)
    }

    func size(_ relative: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(relative).path))?[.size] as? NSNumber)?.intValue ?? -1
    }

    func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: folder) }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

struct DiffTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct DiffCLITests {
    /// Without a build nothing is known of the old bytes; the text is exact, and nothing is written.
    @Test func textReportIsExactAndWritesNothing() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        let result = try repository.run(["diff"])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = """
        derive diff derive.yaml: HEAD → working tree
        Styles:
          ~ thumb: quality,q_80 → quality,q_95
        Rules:
          + rule 'new' added
              acl: inherited
              from: photos/*.png
              process: image/resize,m_lfit,w_60,limit_1,color_FFFFFF/format,webp
              to: site/new/{name}.webp
          - rule 'old' removed
              acl: inherited
              from: photos/*.png
              process: image/resize,m_lfit,w_50,limit_1,color_FFFFFF
              to: site/old/{name}.png
        Outputs:
          rule 'gallery', style 'thumb': 2 rebuilt; bytes unknown
            ~ site/landscape.thumb.jpg  quality,q_80 → quality,q_95  bytes unknown → not rendered
            ~ site/portrait.thumb.jpg  quality,q_80 → quality,q_95  bytes unknown → not rendered
          rule 'new': 1 created; bytes 0
            + site/new/logo-alpha.webp  image/resize,m_lfit,w_60,limit_1,color_FFFFFF/format,webp  bytes none → not rendered
          rule 'old': 1 deleted; bytes unknown
            - site/old/logo-alpha.png  image/resize,m_lfit,w_50,limit_1,color_FFFFFF  bytes unknown → none
        Total: 1 created, 2 rebuilt, 1 deleted; bytes unknown → not rendered.

        """
        #expect(String(decoding: result.stdout, as: UTF8.self) == expected)
        // Read-only: no state folder, no bucket folder, no lock.
        let names = try FileManager.default.contentsOfDirectory(atPath: repository.path).sorted()
        #expect(names == [".git", "derive.yaml", "src", "styles.yaml"])
    }

    /// Built at the first commit: the old bytes come from the state; REV1..REV2 says the same as
    /// the working tree did.
    @Test func bytesBeforeFromTheStateAndRevisionRange() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let build = try repository.run(["build", "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        try repository.change(commit: true)
        let result = try repository.run(["diff", "HEAD~1..HEAD", "derive.yaml", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let landscape = repository.size("out/landscape.thumb.jpg"), portrait = repository.size("out/portrait.thumb.jpg")
        let logo = repository.size("out/old/logo-alpha.png")
        let expected = """
        {
          "after" : "HEAD",
          "before" : "HEAD~1",
          "buckets" : [

          ],
          "groups" : [
            {
              "entries" : [
                {
                  "after" : "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_95",
                  "before" : "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_80",
                  "bytesBefore" : \(landscape),
                  "gateFailures" : [

                  ],
                  "kind" : "rebuilt",
                  "output" : "site/landscape.thumb.jpg",
                  "sizeBefore" : {
                    "height" : 80,
                    "width" : 120
                  },
                  "source" : "photos/landscape.jpg"
                },
                {
                  "after" : "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_95",
                  "before" : "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_80",
                  "bytesBefore" : \(portrait),
                  "gateFailures" : [

                  ],
                  "kind" : "rebuilt",
                  "output" : "site/portrait.thumb.jpg",
                  "sizeBefore" : {
                    "height" : 80,
                    "width" : 120
                  },
                  "source" : "photos/portrait.jpg"
                }
              ],
              "rule" : "gallery",
              "style" : "style 'thumb'"
            },
            {
              "entries" : [
                {
                  "after" : "image/resize,m_lfit,w_60,limit_1,color_FFFFFF/format,webp",
                  "gateFailures" : [

                  ],
                  "kind" : "created",
                  "output" : "site/new/logo-alpha.webp",
                  "source" : "photos/logo-alpha.png"
                }
              ],
              "rule" : "new"
            },
            {
              "entries" : [
                {
                  "before" : "image/resize,m_lfit,w_50,limit_1,color_FFFFFF",
                  "bytesBefore" : \(logo),
                  "gateFailures" : [

                  ],
                  "kind" : "deleted",
                  "output" : "site/old/logo-alpha.png",
                  "sizeBefore" : {
                    "height" : 50,
                    "width" : 50
                  },
                  "source" : "photos/logo-alpha.png"
                }
              ],
              "rule" : "old"
            }
          ],
          "manifest" : "derive.yaml",
          "rendered" : false,
          "rules" : [
            {
              "changes" : [
                "acl: inherited",
                "from: photos/*.png",
                "process: image/resize,m_lfit,w_60,limit_1,color_FFFFFF/format,webp",
                "to: site/new/{name}.webp"
              ],
              "kind" : "added",
              "name" : "new"
            },
            {
              "changes" : [
                "acl: inherited",
                "from: photos/*.png",
                "process: image/resize,m_lfit,w_50,limit_1,color_FFFFFF",
                "to: site/old/{name}.png"
              ],
              "kind" : "removed",
              "name" : "old"
            }
          ],
          "styles" : [
            {
              "after" : "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_95",
              "before" : "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_80",
              "kind" : "changed",
              "name" : "thumb"
            }
          ],
          "totals" : {
            "budget" : 0,
            "bytesBefore" : \(landscape + portrait + logo),
            "created" : 1,
            "deleted" : 1,
            "estimated" : false,
            "failed" : 0,
            "rebuilt" : 2
          }
        }

        """
        #expect(String(decoding: result.stdout, as: UTF8.self) == expected)
        #expect(landscape > 0 && portrait > 0 && logo > 0)
    }

    /// A style rewritten from a string to a list of actions compiles to the same pipeline: no change.
    @Test func engineNeutralRefactorShowsNoChanges() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("styles.yaml", """
        styles:
          thumb:
            - resize: {m: fill, w: 120, h: 80}
            - quality: {q: 80}
          hero: image/resize,w_200,m_lfit

        """)
        let result = try repository.run(["diff", "HEAD"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self) == "derive diff derive.yaml: HEAD → working tree\nNo changes: the two revisions render the same outputs.\n")
        let json = try repository.run(["diff", "--json"])
        let object = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        #expect((object?["groups"] as? [Any])?.isEmpty == true)
        #expect((object?["styles"] as? [Any])?.isEmpty == true)
    }

    /// Renders: old from the built output, new from the worker; SSIM below 1 for the quality
    /// change, the heat map a real PNG of the compared size; nothing written into the buckets.
    @Test func rendersCompareAndGate() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        let outBefore = try treeContents(repository.folder.appendingPathComponent("out"))
        try repository.change(commit: false)
        let report = repository.folder.appendingPathComponent("report").path
        let result = try repository.run(["diff", "--renders", report, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        let groups = object?["groups"] as? [[String: Any]] ?? []
        let thumbs = groups.first { $0["style"] as? String == "style 'thumb'" }?["entries"] as? [[String: Any]] ?? []
        #expect(thumbs.count == 2)
        var ssims: [Double] = []
        for entry in thumbs {
            let ssim = try #require(entry["ssim"] as? Double)
            ssims.append(ssim)
            #expect(ssim > 0.5 && ssim < 1.0)
            let new = try Data(contentsOf: URL(fileURLWithPath: report + "/" + (entry["newImage"] as? String ?? "")))
            let raster = try Raster.decode(new)
            #expect(raster.width == 120 && raster.height == 80)
            #expect(Int64(new.count) == (entry["bytesAfter"] as? NSNumber)?.int64Value)
            let heat = try Raster.decode(Data(contentsOf: URL(fileURLWithPath: report + "/" + (entry["heatMap"] as? String ?? ""))))
            #expect(heat.width == 120 && heat.height == 80)
        }
        // Worst first.
        #expect(ssims == ssims.sorted())
        // The buckets are as the build left them.
        #expect(try treeContents(repository.folder.appendingPathComponent("out")) == outBefore)

        // Gates: at the measured SSIM nothing fails; just above it, the output fails (exit 1).
        let worst = ssims[0]
        let pass = try repository.run(["diff", "--fail-on", String(format: "ssim<%.6f", worst - 0.0005)])
        #expect(pass.status == 0, "\(pass.stderr)")
        let junit = repository.folder.appendingPathComponent("junit.xml").path
        let fail = try repository.run(["diff", "--fail-on", String(format: "ssim<%.6f", worst + 0.0005), "--junit", junit])
        #expect(fail.status == 1)
        #expect(fail.stderr.contains("1 output crossed --fail-on"))
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("failures=\"1\""))
        #expect(xml.contains("<failure message=\"ssim "))

        // Bytes: q_80 → q_95 grows each thumbnail by some percentage g.
        let growths = thumbs.map { entry -> Double in
            let before = (entry["bytesBefore"] as? NSNumber)?.doubleValue ?? 0, after = (entry["bytesAfter"] as? NSNumber)?.doubleValue ?? 0
            return (after - before) / before * 100
        }
        let most = growths.max() ?? 0
        #expect(most > 1)
        #expect(try repository.run(["diff", "--fail-on", String(format: "bytes>+%.1f%%", most + 0.5)]).status == 0)
        let bytesFail = try repository.run(["diff", "--fail-on", String(format: "bytes>+%.1f%%", most - 0.5)])
        #expect(bytesFail.status == 1)
        #expect(String(decoding: bytesFail.stdout, as: UTF8.self).contains("FAIL bytes +"))
    }

    /// A pipeline change that draws the same pixels (an explicit `format,png` on a PNG) is a
    /// rebuild whose SSIM is exactly 1.
    @Test func identicalPixelsScoreOne() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("derive.yaml", DiffRepository.manifestOne.replacingOccurrences(of: "process: image/resize,w_50", with: "process: image/resize,w_50/format,png"))
        let report = repository.folder.appendingPathComponent("report").path
        let result = try repository.run(["diff", "--renders", report])
        #expect(result.status == 0, "\(result.stderr)")
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(text.contains("~ site/old/logo-alpha.png  resize,m_lfit,w_50,limit_1,color_FFFFFF → resize,m_lfit,w_50,limit_1,color_FFFFFF/format,png  bytes"))
        #expect(text.contains("(+0.0%)  50x50  SSIM 1.0000"))
        let json = try repository.run(["diff", "--renders", report, "--json"])
        let object = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        let entry = ((object?["groups"] as? [[String: Any]])?.first?["entries"] as? [[String: Any]])?.first
        #expect(entry?["ssim"] as? Double == 1.0)
        // The totals agree with the outputs: the old bytes came from the old render.
        let totals = object?["totals"] as? [String: Any]
        #expect((totals?["bytesBefore"] as? NSNumber)?.intValue == (entry?["bytesBefore"] as? NSNumber)?.intValue)
    }

    /// `--sample 1`: one output per group, the same one on every run; totals over those only.
    @Test func sampleIsDeterministicPerGroup() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        func sampled() throws -> (rendered: [String], totals: [String: Any]) {
            let result = try repository.run(["diff", "--renders", repository.folder.appendingPathComponent("report").path, "--sample", "1", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
            let entries = (object?["groups"] as? [[String: Any]] ?? []).flatMap { $0["entries"] as? [[String: Any]] ?? [] }
            #expect(entries.count == 4)
            let rendered = entries.filter { $0["newImage"] != nil || $0["oldImage"] != nil }.compactMap { $0["output"] as? String }.sorted()
            return (rendered, object?["totals"] as? [String: Any] ?? [:])
        }
        let first = try sampled(), second = try sampled()
        #expect(first.rendered.count == 3)   // thumb: 1 of 2; new: 1; old: 1
        #expect(first.rendered == second.rendered)
        #expect(first.totals["sampledOutputs"] as? Int == 3)
        let bad = try repository.run(["diff", "--sample", "0"])
        #expect(bad.status == 64)
    }

    @Test func reportFolderInsideABucketIsRefused() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        let result = try repository.run(["diff", "--html", "src/report"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("is inside bucket 'photos'"))
        #expect(!FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("src/report").path))
        // Through a link to the bucket, to a folder not made yet.
        try FileManager.default.createSymbolicLink(atPath: repository.folder.appendingPathComponent("photolink").path, withDestinationPath: "src")
        let linked = try repository.run(["diff", "--renders", "photolink/new/report"])
        #expect(linked.status == 1)
        #expect(linked.stderr.contains("is inside bucket 'photos'"))
        #expect(!FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("src/new").path))
        // An `images` link in the report folder that leads into the bucket.
        let report = repository.folder.appendingPathComponent("report")
        try FileManager.default.createDirectory(at: report, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: report.appendingPathComponent("images").path, withDestinationPath: "../src")
        let imagesLink = try repository.run(["diff", "--renders", "report"])
        #expect(imagesLink.status == 1)
        #expect(imagesLink.stderr.contains("images is a symbolic link (to ../src), not a folder"), "\(imagesLink.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: repository.folder.appendingPathComponent("src").path).sorted()
                == ["landscape.jpg", "logo-alpha.png", "portrait.jpg"])
    }

    @Test func badRevisionsAreClearErrors() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let missing = try repository.run(["diff", "no-such-branch"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("'no-such-branch' is not a commit in the git repository"))
        let option = try repository.run(["diff", "--", "--output=/tmp/x"])
        #expect(option.status == 1)
        #expect(option.stderr.contains("is not a git revision Derive accepts"))
        let outside = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outside) }
        try Data(DiffRepository.manifestOne.utf8).write(to: outside.appendingPathComponent("derive.yaml"))
        let notRepository = try CLI.run(["diff"], in: outside)
        #expect(notRepository.status == 1)
        #expect(notRepository.stderr.contains("is not a commit"))
    }

    /// An include that is a symbolic link in the revision is refused, as on disk.
    @Test func includeThatIsALinkInTheRevisionIsRefused() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try FileManager.default.removeItem(at: repository.folder.appendingPathComponent("styles.yaml"))
        try FileManager.default.createSymbolicLink(atPath: repository.folder.appendingPathComponent("styles.yaml").path, withDestinationPath: "/etc/hostname")
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "link")
        let result = try repository.run(["diff", "HEAD"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("styles.yaml is a symbolic link at HEAD"))
    }

    /// A manifest at the revision larger than the manifest limit is refused, not read whole.
    @Test func oversizedManifestAtTheRevisionIsRefused() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("styles.yaml", "# " + String(repeating: "x", count: 9 << 20) + "\nstyles: {}\n")
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "big")
        let result = try repository.run(["diff", "HEAD"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("larger than"))
    }
}
