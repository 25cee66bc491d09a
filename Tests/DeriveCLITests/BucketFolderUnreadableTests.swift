import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 18's S5: a source *bucket's own* folder that Derive cannot read (mode 000, a mount not
/// ready) was listed as empty, so every output was planned "to delete" and deleted, exit 0, and
/// the lock and index were rewritten empty. The folders below a bucket were already named (N3);
/// the bucket's folder now is too: the rule fails naming it (exit 1) and its outputs are kept.
/// Root reads any folder, so under root (CI) the commands run as `nobody` through setpriv(1).
@Suite(.ownThreads, .serialized) struct BucketFolderUnreadableTests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: pic
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}

        """

    @Test(.enabled(if: UnprivilegedDerive.isPossible))
    func aBucketFolderThatCannotBeReadIsNamedAndItsOutputsAreKept() throws {
        let root = try CLI.temporaryFolder()
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        defer { chmod(url("src").path, 0o755); try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: url("src"), withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: url("src/" + name))
        }
        try Data(Self.manifest.utf8).write(to: url("derive.yaml"))
        let derive = try UnprivilegedDerive(in: root)
        defer { derive.remove() }
        func run(_ arguments: [String]) throws -> (status: Int32, text: String) { try derive.run(arguments) }
        let first = try run(["build", "-q"])
        #expect(first.status == 0, "\(first.text)")
        let lock = try Data(contentsOf: url("derive.lock"))
        #expect(chmod(url("src").path, 0) == 0)
        for command in ["plan", "build", "check"] {
            let result = try run([command])
            #expect(result.status == 1, "\(command): \(result.text)")
            #expect(result.text.contains("src: is a folder Derive cannot read (Permission denied); its files are not sources"), "\(command): \(result.text)")
            #expect(!result.text.contains("no longer produced") && !result.text.contains(", deleted "), "\(command): \(result.text)")
            for name in ["landscape.jpg", "portrait.jpg"] { #expect(FileManager.default.fileExists(atPath: url("out/" + name).path), "\(command): \(result.text)") }
        }
        #expect(try Data(contentsOf: url("derive.lock")) == lock, "the lock was rewritten while the folder could not be read")
        #expect(chmod(url("src").path, 0o755) == 0)
        let back = try run(["build"])
        #expect(back.status == 0 && back.text.contains("Nothing to do"), "\(back.text)")
        #expect(try run(["check"]).status == 0)
    }
}
