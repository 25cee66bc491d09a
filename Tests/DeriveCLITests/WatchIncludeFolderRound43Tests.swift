import Foundation
import Testing
import TestSupport

/// Attack 42c's L1: an include's folder replaced during a watch (`cp -a inc inc3; rm -rf inc;
/// mv inc3 inc`) was seen once, but the watch went on following the old folder's inode, so
/// every later edit of the include was found only by the periodic no-op check; `inc` replaced by
/// a link (which validation refuses) was found only by that check, and undoing it only by the
/// failed build's retry. A folder on the way to an include is followed as a source root's
/// folders are: replaced, it is watched again at once.
@Suite(.ownThreads, .serialized) struct WatchIncludeFolderRound43Tests {
    /// Round 42's watch manifest, its include in a folder.
    static let manifest = WatchIncludeBackRound42Tests.manifest.replacingOccurrences(of: "include: [styles.yaml]", with: "include: [inc/more.yaml]")

    static func styles(_ width: Int) -> Data { Data("styles:\n  small: image/resize,w_\(width)\n".utf8) }

    static func start() throws -> WatchSession {
        try WatchSession(manifestText: manifest) { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("inc"), withIntermediateDirectories: true)
            try styles(60).write(to: root.appendingPathComponent("inc/more.yaml"))
        }
    }

    /// The next line after `before` lines: an edit of the include, named, not found by the check.
    static func expectEditSeen(_ watch: WatchSession, width: Int, at file: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = watch.lines.count
        try styles(width).write(to: file)
        #expect(watch.wait { watch.lines.count > before }, "\(watch.lines) \(watch.standardError)", sourceLocation: sourceLocation)
        let next = watch.lines.dropFirst(before).first ?? ""
        #expect(next.contains("more.yaml changed") && next.contains("built 1") && !next.contains("no-op check"), "\(watch.lines)", sourceLocation: sourceLocation)
        #expect(watch.wait { watch.size("a.jpg")?.width == width }, "\(watch.lines)", sourceLocation: sourceLocation)
    }

    @Test func aReplacedIncludeFolderIsWatchedAgain() throws {
        let watch = try Self.start()
        defer { watch.remove() }
        let inc = watch.root.appendingPathComponent("inc"), copy = watch.root.appendingPathComponent("inc3")
        #expect(watch.wait { watch.lines.contains { $0.contains("built 1") } }, "\(watch.lines) \(watch.standardError)")
        let before = watch.lines.count
        try FileManager.default.copyItem(at: inc, to: copy)
        try FileManager.default.removeItem(at: inc)
        try FileManager.default.moveItem(at: copy, to: inc)
        #expect(watch.wait { watch.lines.count > before }, "\(watch.lines)")
        for width in [59, 58] { try Self.expectEditSeen(watch, width: width, at: inc.appendingPathComponent("more.yaml")) }
    }

    @Test func anIncludeFolderReplacedByALinkAndBackIsSeen() throws {
        let watch = try Self.start()
        defer { watch.remove() }
        let inc = watch.root.appendingPathComponent("inc"), aside = watch.root.appendingPathComponent("inc3")
        #expect(watch.wait { watch.lines.contains { $0.contains("built 1") } }, "\(watch.lines) \(watch.standardError)")
        var before = watch.lines.count
        try FileManager.default.moveItem(at: inc, to: aside)
        #expect(symlink("inc3", inc.path) == 0)
        #expect(watch.wait { watch.lines.count > before }, "\(watch.lines)")
        // An include is never a link: the manifest is refused at once, not at the next check.
        var next = watch.lines.dropFirst(before).first ?? ""
        #expect(next.contains("changed: not built") && !next.contains("no-op check"), "\(watch.lines)")
        // Undone: the link removed, the folder moved back.
        before = watch.lines.count
        #expect(unlink(inc.path) == 0)
        try FileManager.default.moveItem(at: aside, to: inc)
        #expect(watch.wait { watch.lines.contains { $0.contains("built") } && watch.lines.count > before && !watch.lines.last!.contains("not built") },
                "\(watch.lines) \(watch.standardError)")
        next = watch.lines.last ?? ""
        #expect(!next.contains("no change seen") && !next.contains("no-op check"), "\(watch.lines)")
        try Self.expectEditSeen(watch, width: 57, at: inc.appendingPathComponent("more.yaml"))
    }
}
