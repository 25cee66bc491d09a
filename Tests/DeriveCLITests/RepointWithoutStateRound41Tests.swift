import Foundation
import Testing
import TestSupport

/// Attack 40a's A4: bucket `out` re-pointed (`path: outA` → `path: userB`, with a restyle) while
/// the build state is corrupt or deleted. The plan listed only creates, the build wrote userB and
/// a new lock, and Derive's old outputs and old index in outA (the lock this user's Derive last
/// wrote places them in the folder it was written for, bytes equal to its digests) were never
/// named: the new lock had no line for them and `clean` left them unnamed. With the state intact
/// the same edit deletes them. Without it, the lock Derive last wrote is the record: the plan
/// names them, the build deletes each while it holds the lock's bytes (checked on the open file),
/// and a file of the user's at one of those paths (other bytes) is named and never touched.
@Suite(.ownThreads, .serialized) struct RepointWithoutStateRound41Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(folder: String, width: Int, lock: Bool = false, index: Bool = true) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(folder)}
        \(lock ? "lock: meta/l.lock\n" : "")\(index ? "index: out/index.json\n" : "")derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: out/t/{name}.jpg

        """
    }

    static let outputs = ["t/a1.jpg", "t/a2.jpg", "t/a3.jpg"]

    /// Built into outA, with a file of the user's in userB.
    func site(lock: Bool = false, index: Bool = true) throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg", "src/a3.jpg": "cmyk.jpg"],
                            manifest: Self.manifest(folder: "outA", width: 32, lock: lock, index: index))
        try FileManager.default.createDirectory(at: site.url("userB"), withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: site.url("userB/notes.txt"))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        return site
    }

    enum Loss { case corrupt, deleted }

    /// The state lost as `loss` says.
    func lose(_ site: Site, _ loss: Loss) throws {
        switch loss {
        case .deleted:
            try FileManager.default.removeItem(at: site.url(".derive"))
        case .corrupt:
            let state = site.url(".derive/derive/state.sqlite")
            var bytes = try Data(contentsOf: state).prefix(100)
            bytes.append(Data((0..<131_072).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }))
            try bytes.write(to: state)
        }
    }

    /// Every file (hidden ones too) under `folder`, relative to it.
    func files(_ site: Site, _ folder: String) -> [String] {
        guard let walk = FileManager.default.enumerator(atPath: site.url(folder).path) else { return [] }
        return walk.compactMap { $0 as? String }.filter { name in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: site.url(folder + "/" + name).path, isDirectory: &isFolder) && !isFolder.boolValue
        }.sorted()
    }

    /// The re-point with the state lost: plan names the old copies, build deletes them and the
    /// old index, check and plan agree afterwards, and clean leaves only the user's file.
    @Test(arguments: [(Loss.corrupt, false), (Loss.deleted, false), (Loss.corrupt, true), (Loss.deleted, true)])
    func aRepointWithoutTheStateDeletesDerivesOldCopies(loss: Loss, lock: Bool) throws {
        let site = try site(lock: lock)
        defer { site.remove() }
        #expect(files(site, "outA") == ["index.json"] + Self.outputs)
        try lose(site, loss)
        try site.write(Self.manifest(folder: "userB", width: 30, lock: lock))
        let plan = try site.run(["plan", "--detailed-exitcode"])
        let planned = said(plan)
        #expect(plan.status == 2, "\(loss) lock:\(lock): \(planned)")
        for name in Self.outputs {
            #expect(planned.contains("- outA/\(name)  delete: old copy where the bucket folder used to be"), "\(loss) lock:\(lock): \(name) not named: \(planned)")
        }
        #expect(planned.contains("- outA/index.json  remove: Derive's old index"), "\(loss) lock:\(lock): \(planned)")
        #expect(planned.contains("3 old copies to delete where the bucket folder used to be"), "\(loss) lock:\(lock): \(planned)")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(loss) lock:\(lock): \(said(build))")
        #expect(text(build.stdout).contains("deleted 3 old copies where the bucket folder used to be"), "\(loss) lock:\(lock): \(said(build))")
        #expect(text(build.stdout).contains("removed outA/index.json"), "\(loss) lock:\(lock): \(said(build))")
        #expect(files(site, "outA").isEmpty, "\(loss) lock:\(lock): left \(files(site, "outA")): \(said(build))")
        #expect(files(site, "userB") == ["index.json", "notes.txt"] + Self.outputs, "\(loss) lock:\(lock): \(files(site, "userB"))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(loss) lock:\(lock): \(said(check))")
        let again = try site.run(["plan", "--detailed-exitcode"])
        #expect(again.status == 0, "\(loss) lock:\(lock): \(said(again))")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(loss) lock:\(lock): \(said(clean))")
        #expect(files(site, "outA").isEmpty && files(site, "userB") == ["notes.txt"], "\(loss) lock:\(lock): \(files(site, "outA")) \(files(site, "userB")): \(said(clean))")
        #expect(try String(contentsOf: site.url("userB/notes.txt"), encoding: .utf8) == "mine\n")
    }

    /// A file of the user's at an old copy's path (other bytes than the lock's line) is named by
    /// plan and build and never touched; Derive's other old copies go.
    @Test(arguments: [Loss.corrupt, Loss.deleted]) func aUsersFileAtAnOldCopysPathIsKept(loss: Loss) throws {
        let site = try site()
        defer { site.remove() }
        try Data("my own a2\n".utf8).write(to: site.url("outA/t/a2.jpg"))
        try lose(site, loss)
        try site.write(Self.manifest(folder: "userB", width: 30))
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(loss): \(said(plan))")
        #expect(said(plan).contains("= outA/t/a2.jpg  left:"), "\(loss): \(said(plan))")
        #expect(said(plan).contains("- outA/t/a1.jpg  delete: old copy where the bucket folder used to be"), "\(loss): \(said(plan))")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(loss): \(said(build))")
        #expect(said(build).contains("outA/t/a2.jpg"), "\(loss): the file left is named: \(said(build))")
        #expect(text(build.stdout).contains("deleted 2 old copies where the bucket folder used to be"), "\(loss): \(said(build))")
        #expect(try String(contentsOf: site.url("outA/t/a2.jpg"), encoding: .utf8) == "my own a2\n")
        #expect(files(site, "outA") == ["t/a2.jpg"], "\(loss): \(files(site, "outA"))")
        #expect(try site.run(["check"]).status == 0)
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(loss): \(said(clean))")
        #expect(try String(contentsOf: site.url("outA/t/a2.jpg"), encoding: .utf8) == "my own a2\n")
        #expect(files(site, "userB") == ["notes.txt"], "\(loss): \(files(site, "userB"))")
    }

    /// With the state intact the same edit deletes the old copies (the records' way): the words
    /// without a state are the same.
    @Test func withTheStateTheSameEditSaysTheSame() throws {
        let site = try site()
        defer { site.remove() }
        try site.write(Self.manifest(folder: "userB", width: 30))
        let build = try site.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains("deleted 3 old copies where the bucket folder used to be"), "\(said(build))")
        #expect(files(site, "outA").isEmpty)
    }

    /// A fresh clone (the project copied elsewhere: no state, and no lock this user's Derive wrote
    /// there) re-pointed before its first build: nothing proves outA's files Derive's, so nothing
    /// there is touched; the build creates userB's outputs and check agrees.
    @Test func aFreshCloneRepointedBeforeItsFirstBuildTouchesNothingInTheOldFolder() throws {
        let site = try site()
        defer { site.remove() }
        let clone = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: clone) }
        for name in ["src", "outA", "userB", "derive.yaml", "derive.lock"] {
            try FileManager.default.copyItem(at: site.url(name), to: clone.appendingPathComponent(name))
        }
        let before = files(site, "outA").map { FileManager.default.contents(atPath: clone.appendingPathComponent("outA/" + $0).path) }
        try Data(Self.manifest(folder: "userB", width: 30).utf8).write(to: clone.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: clone)
        #expect(build.status == 0, "\(said(build))")
        let after = files(site, "outA").map { FileManager.default.contents(atPath: clone.appendingPathComponent("outA/" + $0).path) }
        #expect(before == after && before.count == 4, "outA's files were changed or removed: \(said(build))")
        #expect(try CLI.run(["check"], in: clone).status == 0)
    }

    /// The recovering build killed while it deletes the old copies (at its `when`th `unlinkat`,
    /// with `strace`'s fault injection): it had moved the corrupt state aside and recorded nothing,
    /// so the next build still takes the lock as the record, deletes the old copies left and sweeps
    /// the temporary the killed deletion left; check and plan agree afterwards.
    @Test(.enabled(if: SystemCallTrace.isPossible), arguments: [1, 2, 4])
    func aBuildKilledWhileDeletingTheOldCopiesIsFinishedByTheNext(when: Int) throws {
        let site = try site()
        defer { site.remove() }
        try lose(site, .corrupt)
        try site.write(Self.manifest(folder: "userB", width: 30))
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=unlinkat", "-e", "inject=unlinkat:signal=KILL:when=\(when)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "#\(when): \(said(killed))")
        #expect(!files(site, "outA").isEmpty, "#\(when): the kill left nothing in outA (the test no longer kills where it means to)")
        let next = try site.run(["build"])
        #expect(next.status == 0, "#\(when): \(said(next))")
        #expect(files(site, "outA").isEmpty, "#\(when): left \(files(site, "outA")): \(said(next))")
        #expect(files(site, "userB") == ["index.json", "notes.txt"] + Self.outputs, "#\(when): \(files(site, "userB"))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "#\(when): \(said(check))")
        #expect(try site.run(["plan", "--detailed-exitcode"]).status == 0)
    }

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
}
