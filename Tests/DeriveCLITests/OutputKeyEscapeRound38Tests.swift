import Foundation
import Testing
import TestSupport

/// Attack 38a's H1 and M3 (issue #9): an output key is checked after its variables are filled in,
/// not only as the `to:` template. A style named `..` (or a source whose name without its
/// extension is `..`) made `out/{style}/{style}/victimdir/{name}` climb out of the bucket: plan said
/// create, and `build --overwrite` replaced a user's file outside the project. An output name part
/// longer than a file name may be (255 bytes) was planned as a create and failed only in the build.
@Suite(.ownThreads) struct OutputKeyEscapeRound38Tests {
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// `top/proj/src/<sources>` and a user's file at `top/victimdir/notes`.
    struct Project {
        let top: URL
        var folder: URL { top.appendingPathComponent("proj") }
        var victim: URL { top.appendingPathComponent("victimdir/notes") }
        static let notes = Data("user's precious notes\n".utf8)

        init(sources: [String], manifest: String) throws {
            top = try CLI.temporaryFolder()
            let src = top.appendingPathComponent("proj/src")
            try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: top.appendingPathComponent("victimdir"), withIntermediateDirectories: true)
            try Self.notes.write(to: top.appendingPathComponent("victimdir/notes"))
            for name in sources {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: src.appendingPathComponent(name))
            }
            try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        }

        func remove() { try? FileManager.default.removeItem(at: top) }

        /// Every file below `top` but the sources, the manifest and the victim, relative to `top`.
        func strays() -> [String] {
            let all = (FileManager.default.enumerator(atPath: top.path)?.allObjects as? [String]) ?? []
            return all.filter { path in
                var isFolder: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: top.appendingPathComponent(path).path, isDirectory: &isFolder)
                return !isFolder.boolValue && !path.hasPrefix("proj/src/") && !path.hasPrefix("proj/out/") && !path.hasPrefix("proj/.derive/")
                    && !["proj/derive.yaml", "proj/derive.lock", "victimdir/notes"].contains(path)
            }.sorted()
        }
    }

    static func manifest(styles: String, from: String, to: String) -> String {
        """
        version: 1
        styles:
        \(styles)
        buckets:
          src: {path: src, acl: public-read}
          out: {path: out, acl: public-read}
        derivatives:
          - name: thumb
            from: \(from)
            styles: [small]
            to: \(to)
        index: out/index.json

        """
    }

    /// H1: a style named `..` (or `.`) is refused where it is defined, with its line and column.
    @Test(arguments: ["..", "."]) func aStyleNamedLikeADotSegmentIsRefusedAtItsLine(_ name: String) throws {
        let manifest = Self.manifest(styles: "  \"\(name)\": image/resize,w_100/format,jpg\n  small: image/resize,w_80/format,jpg",
                                     from: "src/notes.jpg", to: "out/{style}/{style}/victimdir/{name}")
            .replacingOccurrences(of: "styles: [small]", with: "styles: [\"\(name)\", small]")
        let project = try Project(sources: ["notes.jpg"], manifest: manifest)
        defer { project.remove() }
        let validate = try CLI.run(["validate"], in: project.folder)
        #expect(validate.status != 0)
        #expect(validate.stderr.contains("derive.yaml:3:3:"), "\(validate.stderr)")
        #expect(validate.stderr.contains("'\(name)'") && validate.stderr.contains("path segment"), "\(validate.stderr)")
        for arguments in [["plan"], ["build"], ["build", "--overwrite"]] {
            let result = try CLI.run(arguments, in: project.folder)
            #expect(result.status != 0, "\(arguments) \(text(result.stdout))")
        }
        #expect(try Data(contentsOf: project.victim) == Project.notes)
        #expect(project.strays().isEmpty, "\(project.strays())")
    }

    /// H1 through a source's name: `...jpg` would be `..` without its extension, so `{name}` as a
    /// folder would climb out of the bucket. Such a name starts with a dot: it is a hidden file,
    /// never a source (the key check after filling in, `KeyPlaceProblemTests`, stands behind it).
    /// The other source builds; nothing is written outside the bucket, with or without `--overwrite`.
    @Test func aSourceNameThatWouldFillInAsADotSegmentWritesNothingOutside() throws {
        let manifest = Self.manifest(styles: "  small: image/resize,w_80/format,jpg", from: "src/*.jpg", to: "out/{name}/{name}/victimdir/notes")
        let project = try Project(sources: ["...jpg", "ok.jpg"], manifest: manifest)
        defer { project.remove() }
        #expect(try CLI.run(["validate"], in: project.folder).status == 0)
        let plan = try CLI.run(["plan", "--json"], in: project.folder)
        let json = try JSONSerialization.jsonObject(with: plan.stdout) as? [String: Any]
        let items = json?["items"] as? [[String: Any]] ?? []
        #expect(items.map { $0["output"] as? String } == ["out/ok/ok/victimdir/notes"], "\(text(plan.stdout))")
        for arguments in [["build"], ["build", "--overwrite"]] {
            let build = try CLI.run(arguments, in: project.folder)
            #expect(build.status == 0, "\(build.stderr)")
        }
        #expect(FileManager.default.fileExists(atPath: project.folder.appendingPathComponent("out/ok/ok/victimdir/notes").path))
        #expect(try Data(contentsOf: project.victim) == Project.notes)
        #expect(project.strays().isEmpty, "\(project.strays())")
    }

    /// M3: an output whose name is longer than a file name may be (255 bytes) is a plan failure,
    /// as the build finds it; the other source's output is planned and built.
    @Test func anOutputNameLongerThanAFileNameMayBeIsAPlanFailure() throws {
        let long = String(repeating: "n", count: 251) + ".jpg"   // 255 bytes: its output is 256
        let manifest = Self.manifest(styles: "  small: image/resize,w_80/format,webp", from: "src/*.jpg", to: "out/{name}.webp")
        let project = try Project(sources: [long, "ok.jpg"], manifest: manifest)
        defer { project.remove() }
        let plan = try CLI.run(["plan", "--json"], in: project.folder)
        let json = try JSONSerialization.jsonObject(with: plan.stdout) as? [String: Any]
        let failures = json?["failures"] as? [[String: Any]] ?? []
        #expect(failures.count == 1, "\(text(plan.stdout))")
        let message = (failures.first?["message"] as? String) ?? ""
        #expect(message.contains("255 bytes"), "\(text(plan.stdout))")
        let items = json?["items"] as? [[String: Any]] ?? []
        #expect(items.filter { ($0["kind"] as? String) == "create" }.count == 1, "\(text(plan.stdout))")
        let build = try CLI.run(["build"], in: project.folder)
        #expect(build.status == 1)
        #expect(build.stderr.contains("255 bytes") && !build.stderr.contains("File name too long"), "\(build.stderr)")
        #expect(FileManager.default.fileExists(atPath: project.folder.appendingPathComponent("out/ok.webp").path))
    }
}
