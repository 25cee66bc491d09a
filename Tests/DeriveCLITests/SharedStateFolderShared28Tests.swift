import Foundation
import Testing
import TestSupport

/// Attack 27w's findings 3b and 11: two manifests in one folder whose `state:` folders are the
/// same folder (`site.yaml` with `state: .derive/derive` beside `derive.yaml`) both validated,
/// and each build moved the other's state aside as foreign, for ever; and a `lock:` (or `index:`,
/// or a bucket) inside a neighbour's state folder (`lock: .derive/derive/state.sqlite-journal`)
/// validated, and broke the neighbour's every command. Both are validation errors at the line
/// that says so, naming the neighbour.
@Suite(.ownThreads) struct SharedStateFolderShared28Tests {
    static let rule = "derivatives:\n  - name: r\n    from: src/*.jpg\n    process: image/resize,w_60/format,webp\n    to: OUT/{name}.webp\n"

    static func manifest(out: String, extra: String = "") -> String {
        "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: \(out)}\n" + rule.replacingOccurrences(of: "OUT", with: "out") + extra
    }

    static func project(derive: String, site: String) throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        try Data(derive.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try Data(site.utf8).write(to: folder.appendingPathComponent("site.yaml"))
        return folder
    }

    /// The line of `key:` in `text` (1-based), as the diagnostic names it.
    static func line(of key: String, in text: String) -> Int {
        (text.components(separatedBy: "\n").firstIndex { $0.hasPrefix(key) } ?? -1) + 1
    }

    /// A neighbour's default state folder, spelt several ways, or both naming one folder.
    static let sharedStates: [(derive: String, site: String)] = [
        ("", "state: .derive/derive\n"),
        ("", "state: ./.derive/../.derive/derive\n"),
        ("state: common\n", "state: common\n"),
        ("state: .\n", "state: .\n"),
    ]

    @Test(arguments: 0..<sharedStates.count)
    func aSharedStateFolderIsAnErrorAtTheStateLine(_ index: Int) throws {
        let (deriveExtra, siteExtra) = Self.sharedStates[index]
        let site = Self.manifest(out: "out2", extra: siteExtra + "lock: site.lock\n")
        let folder = try Self.project(derive: Self.manifest(out: "out", extra: deriveExtra), site: site)
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(result.status == 1, "\(siteExtra): \(text(result.stdout))")
        let line = Self.line(of: "state:", in: site)
        #expect(result.stderr.contains("site.yaml:\(line):8: error:"), "\(result.stderr)")
        #expect(result.stderr.contains("derive.yaml") && result.stderr.contains("state folder"), "\(result.stderr)")
        if deriveExtra.isEmpty {
            // Nothing is built with it: the neighbour's state is never moved aside.
            #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
            #expect(try CLI.run(["build", "-q", "site.yaml"], in: folder).status == 1)
            #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        } else {
            // Both name it: each is refused at its own line, naming the other.
            let other = try CLI.run(["validate"], in: folder)
            #expect(other.status == 1)
            #expect(other.stderr.contains("derive.yaml:\(Self.line(of: "state:", in: Self.manifest(out: "out", extra: deriveExtra))):8: error:")
                    && other.stderr.contains("site.yaml"), "\(other.stderr)")
        }
        let states = (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(".derive/derive").path)) ?? []
        #expect(!states.contains { $0.contains("foreign") }, "\(states)")
    }

    /// A state folder reached through a symbolic link is the same folder.
    @Test func aStateFolderThroughALinkIsTheSameFolder() throws {
        let site = Self.manifest(out: "out2", extra: "state: link/derive\nlock: site.lock\n")
        let folder = try Self.project(derive: Self.manifest(out: "out"), site: site)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("link").path, withDestinationPath: ".derive")
        let result = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(result.status == 1)
        #expect(result.stderr.contains("site.yaml:\(Self.line(of: "state:", in: site)):8: error:"), "\(result.stderr)")
    }

    /// Each its own: no error.
    @Test func stateFoldersOfTheirOwnAreAccepted() throws {
        let site = Self.manifest(out: "out2", extra: "state: .derive/site-own\nlock: site.lock\n")
        let folder = try Self.project(derive: Self.manifest(out: "out"), site: site)
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try CLI.run(["validate"], in: folder).status == 0)
    }

    /// The lock, the index or a bucket inside the neighbour's state folder (finding 11).
    static let intoTheirState: [(extra: String, key: String, column: Int)] = [
        ("lock: .derive/derive/state.sqlite-journal\n", "lock:", 7),
        ("lock: .derive/derive/mine.lock\n", "lock:", 7),
        ("lock: .derive/derive/build-renders/x.lock\n", "lock:", 7),
    ]

    @Test(arguments: 0..<intoTheirState.count)
    func aControlFileInsideANeighboursStateFolderIsAnErrorAtItsLine(_ index: Int) throws {
        let (extra, key, column) = Self.intoTheirState[index]
        let site = Self.manifest(out: "out2", extra: extra)
        let folder = try Self.project(derive: Self.manifest(out: "out"), site: site)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let result = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(result.status == 1, "\(extra)")
        #expect(result.stderr.contains("site.yaml:\(Self.line(of: key, in: site)):\(column): error:"), "\(extra): \(result.stderr)")
        #expect(result.stderr.contains("derive.yaml"), "\(result.stderr)")
        // The neighbour still builds.
        _ = try CLI.run(["build", "-q", "site.yaml"], in: folder)
        #expect(try CLI.run(["build"], in: folder).status == 0)
    }

    /// A bucket inside it, or holding it (its outputs could land there), and an index there.
    @Test(arguments: [".derive/derive/pub", ".derive"])
    func aBucketInsideOrHoldingANeighboursStateFolderIsAnErrorAtItsPath(_ path: String) throws {
        let site = Self.manifest(out: path, extra: "lock: site.lock\nindex: out/\(path == ".derive" ? "derive/" : "")idx.json\n")
        let folder = try Self.project(derive: Self.manifest(out: "out"), site: site)
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(result.status == 1)
        #expect(result.stderr.contains("site.yaml:\(Self.line(of: "  out:", in: site)):"), "\(result.stderr)")
        #expect(result.stderr.contains("site.yaml:\(Self.line(of: "index:", in: site)):8: error:"), "\(result.stderr)")
        #expect(result.stderr.contains("derive.yaml"), "\(result.stderr)")
    }

    /// With `state: .` the neighbour's state folder is the project folder: only Derive's names
    /// in it are its state, so a lock beside the manifests is fine, one at its database's name is not.
    @Test func aNeighbourWithStateDotReservesOnlyItsNames() throws {
        let fine = Self.manifest(out: "out2", extra: "lock: site.lock\n")
        let folder = try Self.project(derive: Self.manifest(out: "out", extra: "state: .\n"), site: fine)
        defer { try? FileManager.default.removeItem(at: folder) }
        let accepted = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let taken = Self.manifest(out: "out2", extra: "lock: state.sqlite-wal\n")
        try Data(taken.utf8).write(to: folder.appendingPathComponent("site.yaml"))
        let refused = try CLI.run(["validate", "site.yaml"], in: folder)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("site.yaml:\(Self.line(of: "lock:", in: taken)):7: error:"), "\(refused.stderr)")
    }
}
