import Foundation
import Testing
import TestSupport

/// Attack 51c's 2 (issue #9/#13): 64 trivial manifests below the project's folder use up the
/// bound on the projects looked at, and one beyond it (writing private outputs into this
/// manifest's public bucket) is not checked. Only validate said so: `check` (what gates CI),
/// `build` and `serve` (what publishes) said nothing. Each says it now, once.
@Suite(.ownThreads, .serialized) struct NeighbourBoundSaidRound52Tests {
    static let warning = "hold more than Derive looks through for other projects"

    func crowded() throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www, acl: public-read}\nderivatives: []\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        for number in 0..<64 {
            let folder = root.appendingPathComponent(String(format: "a%02d", number))
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data("version: 1\nbuckets:\n  src: {path: ../src}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        }
        try fm.createDirectory(at: root.appendingPathComponent("zz"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: ../www/zz, acl: private}\nderivatives:\n  - {from: src/*.jpg, process: \"image/resize,w_10\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("zz/derive.yaml"))
        return root
    }

    @Test func checkBuildAndServeSayTheBoundWasReached() throws {
        let root = try crowded()
        defer { try? FileManager.default.removeItem(at: root) }
        let validate = try CLI.run(["validate"], in: root)
        #expect(validate.stderr.contains(Self.warning) || String(decoding: validate.stdout, as: UTF8.self).contains(Self.warning), "\(said(validate))")
        let build = try CLI.run(["build"], in: root)
        #expect(build.status == 0, "\(said(build))")
        #expect(build.stderr.components(separatedBy: Self.warning).count == 2, "said once: \(said(build))")
        // A no-op check (the witness answers) says it too.
        let check = try CLI.run(["check"], in: root)
        #expect(check.status == 0, "\(said(check))")
        #expect(check.stderr.components(separatedBy: Self.warning).count == 2, "said once: \(said(check))")
        let log = root.appendingPathComponent("serve.log")
        let serve = try ServeSession(in: root, errors: log)
        serve.stop()
        let logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(logged.contains(Self.warning), "\(logged)")
    }
}
