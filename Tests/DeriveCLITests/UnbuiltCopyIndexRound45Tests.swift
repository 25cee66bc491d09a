import Foundation
import Testing
import TestSupport

/// Attack 45a's M2: a copy of the manifest made to try another setting (`other.yaml` beside
/// `derive.yaml`, the same `index:`), never built, made the built derive.yaml invalid ("the index
/// … is the index of other.yaml, another project"): its check, plan and builds failed, and its
/// serve answered 503. By path alone neither owns the index; the records decide, and derive.yaml's
/// lock records it: the unbuilt copy is the one refused, when it builds.
@Suite(.ownThreads) struct UnbuiltCopyIndexRound45Tests {
    static func manifest(quality: Int) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: _site, acl: public-read}
        index: site/derive-index.json
        derivatives:
          - name: thumbs
            from: images/*.jpg
            process: image/resize,w_40/quality,q_\(quality)
            acl: public-read
            to: site/{name}.jpg

        """
    }

    @Test func anUnbuiltCopyBesideTheManifestDoesNotTakeItsIndex() throws {
        let site = try SiteRound11Tests.Site(["images/a.jpg": "landscape.jpg"], manifest: Self.manifest(quality: 80))
        defer { try? FileManager.default.removeItem(at: site.root) }
        let first = try CLI.run(["build"], in: site.root)
        #expect(first.status == 0, "\(said(first))")
        let index = try Data(contentsOf: site.url("_site/derive-index.json"))
        try Data(Self.manifest(quality: 50).utf8).write(to: site.url("other.yaml"))

        for command in [["validate"], ["plan"], ["check"]] {
            let result = try CLI.run(command, in: site.root)
            #expect(result.status == 0, "\(command): \(said(result))")
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("images/b.jpg"))
        let build = try CLI.run(["build"], in: site.root)
        #expect(build.status == 0 && said(build).contains("built 1"), "\(said(build))")
        let rebuilt = try Data(contentsOf: site.url("_site/derive-index.json"))
        #expect(rebuilt != index && String(decoding: rebuilt, as: UTF8.self).contains("b.jpg"))

        // The copy is the one refused, and the index stays derive.yaml's.
        let copy = try CLI.run(["build", "other.yaml"], in: site.root)
        #expect(copy.status != 0, "\(said(copy))")
        #expect(try Data(contentsOf: site.url("_site/derive-index.json")) == rebuilt)
    }

    /// Attack 45c's sv2: `serve other.yaml` of that unbuilt copy told its user to run `derive
    /// build`, which refuses to write derive.yaml's index; it says so and names the way out.
    @Test func servingTheUnbuiltCopyDoesNotAdviseABuildThatIsRefused() throws {
        let website = { (quality: Int) in
            Self.manifest(quality: quality).replacingOccurrences(of: "site: {path: _site, acl: public-read}",
                                                                 with: "site: {path: _site, acl: public-read, website: {index: index.html}}")
        }
        let site = try SiteRound11Tests.Site(["images/a.jpg": "landscape.jpg"], manifest: website(80))
        defer { try? FileManager.default.removeItem(at: site.root) }
        let first = try CLI.run(["build"], in: site.root)
        #expect(first.status == 0, "\(said(first))")
        try Data("<p>gallery</p>".utf8).write(to: site.url("_site/index.html"))
        try Data(website(50).utf8).write(to: site.url("other.yaml"))
        let serve = try ServeStartRound41Tests.run(["serve", "other.yaml", "--port", "0"], in: site.root, until: "Website site:")
        let line = serve.stdout.split(separator: "\n").first { $0.hasPrefix("Website site:") }.map(String.init) ?? ""
        #expect(line.contains("`derive build` of this manifest would not make one: its index site/derive-index.json is the index of derive.yaml, another project")
                    && line.contains("serve that project (derive serve derive.yaml)") && !line.contains("run `derive build`"),
                "\(serve.stdout) \(serve.stderr)")
        // derive.yaml's own serve has no such line: its index is its own.
        let own = try ServeStartRound41Tests.run(["serve", "--port", "0"], in: site.root, until: "Website site:")
        #expect(!own.stdout.contains("another project"), "\(own.stdout) \(own.stderr)")
    }
}
