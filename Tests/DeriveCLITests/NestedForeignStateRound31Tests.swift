import Foundation
import Testing
import TestSupport

/// Attack round 31's F3: round 29 refused a bucket, lock or index inside another manifest's
/// state folder, but not a rule whose outputs land there: `a/derive.yaml` with a bucket at
/// `../b/.derive` and `to: out/derive/{name}.jpg` validated, and a's build wrote into b's state
/// folder (`b/.derive/derive`). Any bucket, lock, index or rule output folder whose real path lies
/// inside another manifest's state folder, at any depth, made yet or not, is a validation error at
/// its line, naming that manifest.
@Suite(.ownThreads, .serialized) struct NestedForeignStateRound31Tests {
    typealias Round29 = ForeignStateFolderRound29Tests

    static func manifest(out: String, to: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(out)}
        derivatives:
          - {name: t, from: "src/*.jpg", process: "image/resize,w_40", to: "\(to)"}

        """
    }

    /// a's bucket and rule output, and b's `state:` (nil: the default `.derive/derive`).
    static let intrusions: [String: (out: String, to: String, state: String?)] = [
        "a rule writing into b's state folder": ("../b/.derive", "out/derive/{name}.jpg", nil),
        "a rule writing below it, folders not made yet": ("../b/.derive", "out/derive/new/deeper/{name}.jpg", nil),
        "a rule writing into it through a link": ("lnk", "out/derive/{name}.jpg", nil),
        "a rule writing into b's own state: folder": ("../b", "out/st/x/{name}.jpg", "st"),
    ]

    func projects(bState: String?) throws -> URL {
        let root = try CLI.temporaryFolder()
        for project in ["a", "b"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(project + "/src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent(project + "/src/x.jpg"))
        }
        try Data((Round29.manifest(out: "out") + (bState.map { "state: \($0)\n" } ?? "")).utf8).write(to: root.appendingPathComponent("b/derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: root.appendingPathComponent("b"))
        #expect(build.status == 0, "\(said(build))")
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("a/lnk").path, withDestinationPath: "../b/.derive")
        return root
    }

    func contents(_ folder: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            result[name] = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) ?? Data()
        }
        return result
    }

    @Test(arguments: ["a rule writing into b's state folder", "a rule writing below it, folders not made yet",
                      "a rule writing into it through a link", "a rule writing into b's own state: folder"])
    func aRuleWritingInsideANeighboursStateFolderIsRefused(intrusion: String) throws {
        let (out, to, state) = Self.intrusions[intrusion]!
        let root = try projects(bState: state)
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        try Data(Self.manifest(out: out, to: to).utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let stateFolder = b.appendingPathComponent(state ?? ".derive/derive")
        let before = contents(stateFolder)
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status != 0, "\(intrusion): \(said(validate))")
        #expect(said(validate).contains("derive.yaml:6:"), "\(intrusion): at the rule's line: \(said(validate))")
        #expect(said(validate).contains("another manifest's Derive build state") && said(validate).contains(b.path + "/derive.yaml"),
                "\(intrusion): names b's manifest: \(said(validate))")
        let build = try CLI.run(["build"], in: a)
        #expect(build.status != 0, "\(intrusion): \(said(build))")
        #expect(contents(stateFolder) == before, "\(intrusion): a wrote into b's state folder: \(contents(stateFolder).keys.sorted())")
        let again = try CLI.run(["build"], in: b)
        #expect(again.status == 0, "\(intrusion): b: \(said(again))")
    }

    /// Round 29's refusals of a bucket there now name the manifest whose state it is.
    @Test func aBucketDeepInsideANeighboursStateFolderNamesItsManifest() throws {
        let root = try projects(bState: nil)
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a")
        try Data(Self.manifest(out: "../b/.derive/derive/no/such", to: "out/{name}.jpg").utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status != 0 && said(validate).contains("derive.yaml:4:"), "\(said(validate))")
        #expect(said(validate).contains(root.appendingPathComponent("b/derive.yaml").path), "\(said(validate))")
    }

    /// A rule writing beside the neighbour's state folder (in its project, in `.derive` but not
    /// in its state) was valid here until attack 48c's F3: a bucket whose folder has a part named
    /// `.derive` (declared, or through a link) writes where Derive keeps build states and serve
    /// answers nothing (`.derive/x` is the state folder of any `x.yaml`), as a `to:` with such a
    /// part would, which validate refuses. It is refused now at the bucket's line; a bucket or rule
    /// inside the neighbour's very state folder is still said as that, naming its manifest (above).
    @Test(arguments: ["../b/.derive", "lnk"])
    func aBucketBesideANeighboursStateFolderIsRefusedForItsDotDerivePart(out: String) throws {
        let root = try projects(bState: nil)
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a")
        try Data(Self.manifest(out: out, to: "out/site/{name}.jpg").utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let validate = try CLI.run(["validate"], in: a)
        #expect(validate.status == 1 && said(validate).contains("derive.yaml:4:") && said(validate).contains("has a part named '.derive'"), "\(out): \(said(validate))")
        let build = try CLI.run(["build"], in: a)
        #expect(build.status != 0, "\(out): \(said(build))")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("b/.derive/site").path), "\(out): built into b's .derive")
    }
}
