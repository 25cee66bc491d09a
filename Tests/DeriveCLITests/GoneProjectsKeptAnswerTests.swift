import Foundation
import Manifest
import Testing
import TestSupport

/// `ForeignProjectFiles.goneProjects(around:)` keeps its answer for every file looked at from the
/// same folders (restored copies in bulk asked it per file, each time sorting and asking every
/// folder known: 200 copies beside 3 400 folders planned in 1.2 s of CPU instead of 0.14 s). The
/// kept answers must be the ones a fresh instance gives for each file alone, whatever the order
/// the files are asked in and however many folders earlier questions made known.
@Suite(.ownThreads) struct GoneProjectsKeptAnswerTests {
    @Test func keptAnswersEqualAFreshLookForEachFile() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let manager = FileManager.default
        try manager.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try manager.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        // Two gone projects: one beside the site's bucket (`www/g`, its lock and state moved deep),
        // one in a sibling folder (`other/n`, default names).
        for (folder, controls) in [("www/g", "lock: x/y/z/g.lock\nstate: p/q/st\n"), ("other/n", "")] {
            let project = root.appendingPathComponent(folder)
            try manager.createDirectory(at: project, withIntermediateDirectories: true)
            let name = (folder as NSString).lastPathComponent
            try Data("version: 1\nbuckets:\n  src: {path: ../../src}\n  out: {path: out, acl: private}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n\(controls)".utf8)
                .write(to: project.appendingPathComponent(name + ".yaml"))
            let built = try CLI.run(["build", "-q", name + ".yaml"], in: project)
            #expect(built.status == 0, "\(built.stderr)")
            try manager.removeItem(at: project.appendingPathComponent(name + ".yaml"))
        }
        let site = root.appendingPathComponent("site.yaml").path
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www}\nderivatives: []\n".utf8).write(to: URL(fileURLWithPath: site))
        let files = ["www/g/out/a.jpg", "other/n/out/a.jpg", "www/g/out/b.jpg", "src/a.jpg", "www/new/c.jpg", "other/n/out/a.jpg", "www/g/out/a.jpg"]
            .map { root.appendingPathComponent($0).path }
        let fresh = files.map { ForeignProjectFiles(besides: site).goneProjects(around: $0) }
        #expect(fresh.contains { $0.contains { $0.manifest.hasSuffix("/www/g/g.yaml") } }, "\(fresh)")
        #expect(fresh.contains { $0.contains { $0.manifest.hasSuffix("/other/n/n.yaml") } }, "\(fresh)")
        for order in [Array(files.indices), Array(files.indices.reversed())] {
            let shared = ForeignProjectFiles(besides: site)
            for index in order {
                #expect(shared.goneProjects(around: files[index]) == fresh[index], "\(files[index])")
                #expect(shared.goneProjects(around: files[index]) == fresh[index], "asked again: \(files[index])")
            }
        }
    }
}
