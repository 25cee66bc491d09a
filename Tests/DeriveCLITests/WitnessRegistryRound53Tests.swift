import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 53c's F1: a project found only by the registry of built projects (far away, its
/// private outputs inside this manifest's public bucket) is weighed by `validate` and by the full
/// plan, but the no-op witness covered neither the registry nor that project's files: once a
/// witness was saved, a far project built (or its manifest made private) after it left `build`
/// saying "Nothing to do" and `check` exiting 0 while `validate` and a fresh plan refused. The
/// witness now stamps what a running serve watches of those projects, so the full plan runs.
@Suite(.ownThreads, .serialized) struct WitnessRegistryRound53Tests {
    static func farManifest(_ root: URL, acl: String) -> Data {
        Data("""
            version: 1
            buckets:
              gbk: {path: \(root.path)/pub/g, acl: \(acl)}
            derivatives:
              - {name: t, from: gbk/*.jpg, process: "image/resize,w_40", to: "gbk/o/{name}.jpg"}

            """.utf8)
    }

    @Test(arguments: ["a far project built after the witness", "a far project's manifest made private after the witness"])
    func aRegisteredProjectChangedAfterTheWitnessIsWeighedByTheNoOp(change: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("st").path]
        let files = FileManager.default
        for folder in ["A", "src", "pub/g", "far/G"] {
            try files.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for copy in ["src/landscape.jpg", "pub/g/landscape.jpg"] {
            try files.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent(copy))
        }
        let site = root.appendingPathComponent("A/derive.yaml")
        try Data("""
            version: 1
            buckets:
              src: {path: ../src, acl: private}
              pub: {path: ../pub, acl: public-read}
            derivatives:
              - {name: t, from: src/*.jpg, process: "image/resize,w_100/format,webp", to: "pub/a/{name}.webp", acl: public-read}

            """.utf8).write(to: site)
        let far = root.appendingPathComponent("far/G/g.yaml")
        let builtFirst = change.contains("made private")
        try Self.farManifest(root, acl: builtFirst ? "public-read" : "private").write(to: far)
        if builtFirst {
            let farBuild = try CLI.run(["build", far.path], in: root, environment: environment)
            #expect(farBuild.status == 0, "\(farBuild.stderr)")
        }
        let first = try CLI.run(["build", site.path], in: root, environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        usleep(1_200_000)
        _ = try CLI.run(["build", site.path], in: root, environment: environment)
        usleep(1_200_000)
        let witnessed = try CLI.run(["build", site.path], in: root, environment: environment)
        #expect(witnessed.status == 0 && String(decoding: witnessed.stdout, as: UTF8.self).contains("Nothing to do"), "\(witnessed.stderr)")

        if builtFirst {
            try Self.farManifest(root, acl: "private").write(to: far)
        } else {
            let farBuild = try CLI.run(["build", far.path], in: root, environment: environment)
            #expect(farBuild.status == 0, "\(farBuild.stderr)")
        }
        let validate = try CLI.run(["validate", site.path], in: root, environment: environment)
        #expect(validate.status != 0, "validate accepts the layout: the test proves nothing")
        for command in ["check", "plan", "build"] {
            let answer = try CLI.run([command, site.path], in: root, environment: environment)
            #expect(answer.status != 0, "\(command) answered from the witness: \(String(decoding: answer.stdout, as: UTF8.self)) \(answer.stderr)")
            #expect(answer.stderr.contains("far/G/g.yaml"), "\(command): \(answer.stderr)")
        }
    }
}
