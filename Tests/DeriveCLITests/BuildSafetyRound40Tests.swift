import Foundation
import Testing
import TestSupport

/// Attack 40a's A5: two output buckets swap folders in the manifest (out1: AAA → BBB, out2:
/// BBB → AAA) and the build is killed (`kill -9`, injected by `strace`; skipped where strace is
/// missing or cannot trace) while it replaces `AAA/t/a1.jpg`, Derive's old out1 file, whose
/// record it had already moved to BBB: only its note of the file it was displacing still said the
/// file was Derive's, and every later plan, build and check refused it as "not written by Derive".
@Suite(.ownThreads, .serialized, .enabled(if: SystemCallTrace.isPossible)) struct BuildSafetyRound40Tests {
    typealias Site = SiteRound11Tests.Site

    /// Two output buckets at AAA and BBB (their paths swapped when `swap`), with the index in out1
    /// unless `index` is false (FolderRecreatedRound40Tests swaps the folders on disk without one).
    static func swapped(_ swap: Bool, index: Bool = true) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out1: {path: \(swap ? "BBB" : "AAA")}
          out2: {path: \(swap ? "AAA" : "BBB")}
        \(index ? "index: out1/index.json" : "")
        derivatives:
          - name: t1
            from: src/*.jpg
            process: image/resize,w_32
            to: out1/t/{name}.jpg
          - name: t2
            from: src/*.jpg
            process: image/resize,w_16
            to: out2/t/{name}.jpg

        """
    }

    /// Every file (hidden ones too) below `folder`, relative to the site.
    func files(_ site: Site, _ folder: String) -> [String] {
        guard let walk = FileManager.default.enumerator(atPath: site.url(folder).path) else { return [] }
        return walk.compactMap { $0 as? String }.filter { name in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: site.url(folder + "/" + name).path, isDirectory: &isFolder) && !isFolder.boolValue
        }.map { folder + "/" + $0 }.sorted()
    }

    @Test(arguments: [("renameat2", 4), ("fsync", 3)])
    func aBuildKilledWhileSwappingBucketsLeavesDerivesFilesDerives(call: String, when: Int) throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.swapped(false))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try site.write(Self.swapped(true))
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=\(call)", "-e", "inject=\(call):signal=KILL:when=\(when)",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "\(call) #\(when): \(said(killed))")
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(call) #\(when): \(said(plan))")
        let next = try site.run(["build"])
        #expect(next.status == 0, "\(call) #\(when): \(said(next))")
        let all = files(site, "AAA") + files(site, "BBB")
        #expect(all == ["AAA/t/a1.jpg", "AAA/t/a2.jpg", "BBB/index.json", "BBB/t/a1.jpg", "BBB/t/a2.jpg"], "\(call) #\(when): \(all)")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(call) #\(when): \(said(check))")
    }

    /// The same with the folders swapped on disk (`mv AAA TTT; mv BBB AAA; mv TTT BBB`) and
    /// out1 restyled: killed while replacing the old out1 copy BBB now holds, whose record the
    /// build had already replaced by out1's new file in AAA ("was changed since Derive wrote it").
    @Test func aBuildKilledAfterFoldersSwappedOnDiskLeavesDerivesFilesDerives() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.swapped(false))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        let move = FileManager.default
        try move.moveItem(at: site.url("AAA"), to: site.url("TTT"))
        try move.moveItem(at: site.url("BBB"), to: site.url("AAA"))
        try move.moveItem(at: site.url("TTT"), to: site.url("BBB"))
        try site.write(Self.swapped(false).replacingOccurrences(of: "w_32", with: "w_30"))
        let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:signal=KILL:when=4",
                                  CLI.executable.path, "build", "-q"], in: site.root, executable: SystemCallTrace.strace)
        #expect(killed.status != 0, "\(said(killed))")
        let next = try site.run(["build"])
        #expect(next.status == 0, "\(said(next))")
        let left = (files(site, "AAA") + files(site, "BBB")).filter { $0.hasSuffix(".derive-tmp") }
        #expect(left.isEmpty, "\(left)")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }
}
