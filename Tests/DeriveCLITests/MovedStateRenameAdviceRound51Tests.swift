import Foundation
import Testing
import TestSupport

/// Issue #9, attack 50c's M2: a project renamed by hand (`mv derive.yaml site.yaml; mv derive.lock
/// site.lock; mv .derive/derive .derive/site`) is refused with the advice "set 'lock: site.lock'
/// and 'state: .derive/site' in it to carry on from its records". Done literally, the build said
/// the state "is not bound to this user at this path (… planted in the project)", moved it aside,
/// adopted every output again unverified, and `clean` then left Derive's folders. The state this
/// user's Derive sealed at the gone manifest's default state folder, moved here with nothing left
/// there, is that manifest's own state moved: taken over, as a project moved with its state is.
@Suite(.ownThreads) struct MovedStateRenameAdviceRound51Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: a}\n  out: {path: out}\nderivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/t/{name}.jpg\n"

    /// The two lines the refusal advises, as it words them.
    func advice(_ text: String) -> String? {
        guard let set = text.range(of: "set 'lock: "), let end = text.range(of: "' in it", range: set.upperBound..<text.endIndex) else { return nil }
        let lines = text[set.upperBound..<end.lowerBound].components(separatedBy: "' and '")
        guard lines.count == 2, lines[1].hasPrefix("state: ") else { return nil }
        return "lock: " + lines[0] + "\n" + lines[1] + "\n"
    }

    func inode(_ url: URL) throws -> Int { try #require(FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int) }

    /// Follows the refusal's advice literally and expects the state carried on: nothing set aside,
    /// nothing adopted again, and `clean` then removes everything Derive made.
    /// `cleaned`: what clean must leave no trace of (a moved project's state folder is one Derive did not make, as far as its notes go).
    func followAdvice(in folder: URL, cleaned: [String] = ["out/t", ".derive"]) throws {
        let refused = try CLI.run(["build", "site.yaml"], in: folder)
        #expect(refused.status == 1, "\(said(refused))")
        let lines = try #require(advice(said(refused)), "\(said(refused))")
        let manifest = folder.appendingPathComponent("site.yaml")
        try Data((try String(contentsOf: manifest, encoding: .utf8) + lines).utf8).write(to: manifest)
        let output = folder.appendingPathComponent("out/t/a.jpg")
        let before = try inode(output)
        let build = try CLI.run(["build", "site.yaml"], in: folder)
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("not bound to this user") && !said(build).contains("foreign"), "\(said(build))")
        #expect(!said(build).contains("unverified") && !said(build).contains("adopted"), "\(said(build))")
        #expect(try inode(output) == before)
        let check = try CLI.run(["check", "site.yaml"], in: folder)
        #expect(check.status == 0 && !said(check).contains("unverified"), "\(said(check))")
        let clean = try CLI.run(["clean", "site.yaml"], in: folder)
        #expect(clean.status == 0, "\(said(clean))")
        for left in cleaned {
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(left).path), "\(left) left: \(said(clean))")
        }
    }

    @Test func theAdviceForALockAndStateMovedByHandCarriesOnFromThem() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("a/a.jpg"))
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        for (from, to) in [("derive.yaml", "site.yaml"), ("derive.lock", "site.lock"), (".derive/derive", ".derive/site")] {
            try FileManager.default.moveItem(at: folder.appendingPathComponent(from), to: folder.appendingPathComponent(to))
        }
        try followAdvice(in: folder)
    }

    /// The project folder moved and the manifest renamed before any build there (the state keeps its folder name).
    @Test func theAdviceAfterTheProjectMovedAndTheManifestWasRenamedCarriesOn() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = root.appendingPathComponent("proj"), folder = root.appendingPathComponent("proj2")
        try FileManager.default.createDirectory(at: first, withIntermediateDirectories: true)
        try Data(Self.manifest.utf8).write(to: first.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: first.appendingPathComponent("a/a.jpg"))
        let built = try CLI.run(["build", "-q"], in: first)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.moveItem(at: first, to: folder)
        try FileManager.default.moveItem(at: folder.appendingPathComponent("derive.yaml"), to: folder.appendingPathComponent("site.yaml"))
        try followAdvice(in: folder, cleaned: ["out/t", ".derive/derive/state.sqlite"])
    }
}
