import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Setup and inspection the build-safety, lock, site and watch suites share: one copy each, so a fix to
// how a test edits a lock or finds a user's file reaches every suite that does it.

/// What a command printed, as text.
func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

/// Every regular file below `folder` whose bytes are `wanted`, by relative path, sorted.
func files(holding wanted: Data, below folder: URL) -> [String] {
    let walker = FileManager.default.enumerator(atPath: folder.path)
    var found: [String] = []
    while let name = walker?.nextObject() as? String {
        if (try? Data(contentsOf: folder.appendingPathComponent(name))) == wanted { found.append(name) }
    }
    return found.sorted()
}

/// A project built once, with its bucket outside its tree (`../shared-out`), and a copy of it
/// made with `cp -a`: the copy's state is the original's (not yet moved aside by any build).
func copiedProject() throws -> (outer: URL, original: URL, copy: URL) {
    let outer = try CLI.temporaryFolder()
    let project = try BuildSafetyAttackTests.Project(outPath: "../shared-out")
    let original = outer.appendingPathComponent("proj")
    try FileManager.default.moveItem(at: project.root, to: original)
    #expect(try CLI.run(["build", "-q"], in: original).status == 0)
    let copy = outer.appendingPathComponent("copy")
    let cp = Process()
    cp.executableURL = URL(fileURLWithPath: "/bin/cp")
    cp.arguments = ["-a", original.path, copy.path]
    try cp.run(); cp.waitUntilExit()
    return (outer, original, copy)
}

/// Rewrites the lock's first line to name `path` as the old index, with that file's digest.
func pointLockHeader(_ project: BuildSafetyAttackTests.Project, at path: String) throws {
    let digest = SHA256Hex.of(try Data(contentsOf: project.url(path)))
    let header = try rewriteLockHeader(project, index: path, digest: digest)
    #expect(header.contains(digest), "\(header)")
}

/// Rewrites the lock's first line to name `path` as the old index with `digest` (not checked).
func pointLockHeader(_ project: BuildSafetyAttackTests.Project, at path: String, digest: String) throws {
    let header = try rewriteLockHeader(project, index: path, digest: digest)
    #expect(header.contains(path), "\(header)")
}

/// Sets the lock header's `index` and `indexDigest`; returns the new first line.
private func rewriteLockHeader(_ project: BuildSafetyAttackTests.Project, index path: String, digest: String) throws -> String {
    var lines = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).components(separatedBy: "\n")
    // Keys keep their order: a lock's first line starts with its format.
    lines[0] = lines[0].replacingOccurrences(of: #""index":"[^"]*","indexDigest":"[0-9a-f]*""#,
                                             with: #""index":"\#(path)","indexDigest":"\#(digest)""#, options: .regularExpression)
    try lines.joined(separator: "\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
    return lines[0]
}

/// Copies the sample `name` to `url`, making the folders on the way (a watch test's new source).
/// The copy is made in the scratch root and renamed in whole: a copy in place creates the file,
/// then writes it, and a loaded machine can pause between the two for longer than a watch's quiet
/// time (0.2 s), so the watch built the empty file first. Like a copy, it refuses any entry at `url`.
func copySample(_ name: String, to url: URL) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    var info = stat()
    guard lstat(url.path, &info) != 0 else { throw CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: url.path]) }
    let sample = CLI.samples.appendingPathComponent(name)
    let aside = FileManager.default.temporaryDirectory.appendingPathComponent("derive-sample-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: sample, to: aside)
    guard rename(aside.path, url.path) == 0 else {
        // Another file system than the scratch root's: copied in place.
        try? FileManager.default.removeItem(at: aside)
        try FileManager.default.copyItem(at: sample, to: url)
        return
    }
}

extension BuildSafetyAttackTests.Project {
    /// Attack 15's F8 shape: built into `outA`; Derive's `outA` moved away (to `outA.old`) and a
    /// new `outA` of copies made by the user; the bucket then moved to `outB` in the manifest.
    static func withCopiesAtItsOldBucketPath() throws -> Self {
        let project = try Self(index: false, outPath: "outA")
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.moveItem(at: project.url("outA"), to: project.url("outA.old"))
        try FileManager.default.createDirectory(at: project.url("outA"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("outA.old/\(name)"), to: project.url("outA/\(name)")) }
        try project.write("derive.yaml", Self.manifest(outPath: "outB", index: false))
        return project
    }
}

// MARK: Another user: nobody

/// `nobody` (65534), the other user of the tests about permissions and ownership: root reads any
/// folder and owns what it makes, so such a test run as root (as CI runs it) acts as nobody
/// through setpriv(1).
enum Nobody {
    static let uid: uid_t = 65534
    static let setpriv = "/usr/bin/setpriv"
    /// Whether this process can act as nobody: root, with setpriv.
    static var canActAs: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: setpriv) }
}

/// Runs derive as nobody in `folder`, keeping its build states' tokens in `stateHome` (a folder
/// of nobody's: nobody cannot write the test run's own, and a state bound to another runner
/// starts afresh).
func runAsNobody(_ arguments: [String], in folder: URL, stateHome: URL) throws -> CLI.Result {
    try CLI.run(["--reuid=\(Nobody.uid)", "--regid=\(Nobody.uid)", "--clear-groups", "/usr/bin/env", "XDG_STATE_HOME=\(stateHome.path)",
                 CLI.executable.path] + arguments,
                in: folder, executable: Nobody.setpriv)
}

/// Gives `url` and everything below it to nobody (a link itself, not what it names); returns
/// the paths, relative to `url` ("" for itself), that could not be given.
@discardableResult
func giveToNobody(_ url: URL) -> [String] {
    var refused: [String] = []
    for path in [""] + (FileManager.default.subpaths(atPath: url.path) ?? []) {
        if lchown(path.isEmpty ? url.path : url.appendingPathComponent(path).path, Nobody.uid, Nobody.uid) != 0 { refused.append(path) }
    }
    return refused
}

/// Derive run by a user who cannot read what a test makes unreadable (mode 000): this user, or
/// under root, nobody, with `folder` and a state home of its own given to nobody.
struct UnprivilegedDerive {
    /// Whether there is such a user here: not root, or root that can act as nobody.
    static var isPossible: Bool { geteuid() != 0 || Nobody.canActAs }

    let folder: URL
    /// Nobody's state home; nil when this user runs derive.
    let stateHome: URL?

    /// Under root, gives `folder` (and all it holds now) to nobody.
    init(in folder: URL) throws {
        self.folder = folder
        guard geteuid() == 0 else { stateHome = nil; return }
        let home = (try ScratchFolder.make("derive-nobody-state"))
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        stateHome = home
        #expect(giveToNobody(home).isEmpty)
        let refused = giveToNobody(folder)
        #expect(refused.isEmpty, "\(refused)")
    }

    /// Runs derive in `folder`; `text` is what it printed, stdout then stderr.
    func run(_ arguments: [String]) throws -> (status: Int32, text: String) {
        let result = try stateHome.map { try runAsNobody(arguments, in: folder, stateHome: $0) } ?? CLI.run(arguments, in: folder)
        return (result.status, String(decoding: result.stdout, as: UTF8.self) + result.stderr)
    }

    func remove() {
        if let stateHome { try? FileManager.default.removeItem(at: stateHome) }
    }
}
