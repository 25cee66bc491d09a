import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Whether a bind mount can be made here, in a mount namespace of its own (`unshare -m`): it
/// needs root and CAP_SYS_ADMIN, which a container or an unprivileged run may lack.
enum BindMounts {
    static let unshare = "/usr/bin/unshare"
    static let isPossible: Bool = {
        guard FileManager.default.isExecutableFile(atPath: unshare), let folder = try? CLI.temporaryFolder() else { return false }
        defer { try? FileManager.default.removeItem(at: folder) }
        let from = folder.appendingPathComponent("a"), at = folder.appendingPathComponent("b")
        guard (try? FileManager.default.createDirectory(at: from, withIntermediateDirectories: true)) != nil,
              (try? FileManager.default.createDirectory(at: at, withIntermediateDirectories: true)) != nil,
              let result = try? CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", "mount --bind \"$0\" \"$1\"", from.path, at.path],
                                        executable: unshare) else { return false }
        return result.status == 0
    }()

    /// Runs derive with `arguments` in `folder`, with the folder `from` bind-mounted at `at`
    /// (relative to `folder`) in a mount namespace of the run's own: the mount goes with the
    /// namespace when derive exits, however it exits, so nothing outlives the test (no umount
    /// to forget, and no other process ever sees it).
    static func run(_ arguments: [String], in folder: URL, mounting from: String, at: String) throws -> CLI.Result {
        let script = "mount --bind \"$1\" \"$2\" || exit 99; shift 2; exec \"$@\""
        return try CLI.run(["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", from, at, CLI.executable.path] + arguments,
                           in: folder, executable: unshare)
    }
}

/// Attack 36's finding 1: `O_NOFOLLOW` stops at a symbolic link but not at a mount point, so a
/// folder below a bucket where another folder is mounted led outputs into the source bucket or
/// out of the project, and sources out of theirs. Such a folder is treated as a link: nothing is
/// written, read or deleted through it. Skipped where no bind mount can be made.
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct MountPointRound36Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// Every regular file below `folder`, relative path → bytes.
    func files(_ folder: URL) -> [String: Data] {
        var found: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: folder.path)
        while let name = enumerator?.nextObject() as? String {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) { found[name] = data }
        }
        return found
    }

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    func manifest(from: String = "src/*.jpg", to: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: thumbs
            from: \(from)
            process: image/resize,w_32
            to: \(to)

        """
    }

    /// a29: `out/sub` is the source bucket, or a user's folder, bind-mounted: the build writes
    /// nothing there, names the mount point, and with the mount gone builds into `out/sub`.
    @Test func outputsAreNeverWrittenThroughAMountPointBelowTheirBucket() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(to: "out/sub/{name}-s.{ext}"))
        try FileManager.default.createDirectory(at: project.url("out/sub"), withIntermediateDirectories: true)
        let victim = project.root.deletingLastPathComponent().appendingPathComponent("victim-" + project.root.lastPathComponent)
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: victim) }
        try Data("the user's notes\n".utf8).write(to: victim.appendingPathComponent("notes.txt"))

        // The source bucket there is the buckets sharing files (validate says so); a user's
        // folder there is refused at the write.
        let cases = [(project.url("src"), "out/sub is a mount point (another folder is mounted there) showing the files of bucket 'src'"),
                     (victim, "'sub' is a mount point (another folder is mounted there); Derive does not write, read or delete through mount points")]
        for (mounted, message) in cases {
            let before = files(mounted)
            let build = try BindMounts.run(["build"], in: project.root, mounting: mounted.path, at: "out/sub")
            #expect(build.status == 1, "\(build.stderr)")
            #expect(build.stderr.contains(message), "\(build.stderr)")
            #expect(files(mounted) == before, "files written through the mount point into \(mounted.path)")
        }
        // Without the mount, the same build writes into the bucket's own folder.
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(files(project.url("out/sub")).count == project.outputs.count)
    }

    /// Orphans Derive wrote in `out/sub`, with a user's folder holding copies of them mounted
    /// there since: nothing is deleted or recorded through the mount (the copies keep their
    /// bytes, no `left` line takes them), the records and lock lines stay, and once the mount is
    /// gone the next build deletes Derive's own files.
    @Test func orphansBehindAMountPointAreKeptUntilItIsGone() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(to: "out/sub/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let copies = project.root.deletingLastPathComponent().appendingPathComponent("copies-" + project.root.lastPathComponent)
        try FileManager.default.copyItem(at: project.url("out/sub"), to: copies)
        defer { try? FileManager.default.removeItem(at: copies) }
        let before = files(copies)
        try project.write("derive.yaml", manifest(to: "out/{name}.{ext}"))

        let build = try BindMounts.run(["build"], in: project.root, mounting: copies.path, at: "out/sub")
        #expect(build.status == 0, "\(build.stderr)")
        #expect(files(copies) == before, "the user's copies were changed through the mount point")
        #expect(text(build.stdout).contains("out/sub/landscape.jpg is behind a mount point (out/sub), which Derive does not cross"), "\(text(build.stdout))")
        #expect(!text(build.stdout).contains("left private"), "a user's file behind the mount point taken as a left output: \(text(build.stdout))")

        let after = try project.run(["build"])
        #expect(after.status == 0, "\(after.stderr)")
        #expect(text(after.stdout).contains("deleted \(project.outputs.count)"), "\(text(after.stdout))")
        #expect(files(project.url("out/sub")).isEmpty)
    }

    /// `find -xdev`: a folder of the source bucket where another folder is mounted is not
    /// walked into; the rule that would descend into it fails naming it, nothing of it is built.
    @Test func sourcesBelowAMountPointAreNeitherListedNorBuilt() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(from: "src/**/*.jpg", to: "out/{name}.{ext}"))
        try FileManager.default.createDirectory(at: project.url("src/more"), withIntermediateDirectories: true)
        let elsewhere = project.root.deletingLastPathComponent().appendingPathComponent("elsewhere-" + project.root.lastPathComponent)
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try FileManager.default.copyItem(at: project.url("src/landscape.jpg"), to: elsewhere.appendingPathComponent("extra.jpg"))

        let build = try BindMounts.run(["build"], in: project.root, mounting: elsewhere.path, at: "src/more")
        #expect(build.status == 1, "\(build.stderr)")
        #expect(build.stderr.contains("src/more: is a mount point (another folder is mounted there)"), "\(build.stderr)")
        #expect(!files(project.url("out")).keys.contains { $0.contains("extra") }, "a source below the mount point was built")
        #expect(files(project.url("out")).count == project.outputs.count, "the other sources are built")
    }

    /// a68: the output bucket bind-mounted inside the source bucket passed validate, then every
    /// build refused its own outputs as sources. Validate names it.
    @Test func validateNamesAnotherBucketMountedInsideABucket() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(from: "src/**/*.jpg", to: "out/{name}-x.{ext}"))
        try FileManager.default.createDirectory(at: project.url("src/gen"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: project.url("out"), withIntermediateDirectories: true)
        let validate = try BindMounts.run(["validate"], in: project.root, mounting: project.url("out").path, at: "src/gen")
        #expect(validate.status != 0, "\(validate.stderr)")
        #expect(validate.stderr.contains("src/gen is a mount point (another folder is mounted there) showing the files of bucket 'out'"), "\(validate.stderr)")
        let build = try BindMounts.run(["build"], in: project.root, mounting: project.url("out").path, at: "src/gen")
        #expect(build.status != 0, "\(build.stderr)")
        #expect(files(project.url("out")).isEmpty, "a build ran with the buckets sharing files")
    }

    /// Attack 36c's H1: a bucket folder that is a bind mount of a folder INSIDE another bucket
    /// (`other` = `src/sub`; private `raw` = `out/sub` of the public `out`). Neither real path
    /// holds the other, yet the files are one: one object would have two ACLs, and serve gave a
    /// private file to anyone. Validate names the buckets sharing files; the build writes nothing.
    @Test func aBucketMountedFromAFolderInsideAnotherBucketSharesItsFiles() throws {
        let cases = [(first: "src", second: "other", mounted: "src/sub", at: "other", from: "src/*.jpg", to: "other/{name}-o.jpg"),
                     (first: "out", second: "raw", mounted: "out/sub", at: "raw", from: "src/*.jpg", to: "raw/{name}-r.jpg")]
        for test in cases {
            let project = try Project(index: false)
            defer { project.remove() }
            try project.write("derive.yaml", """
                version: 1
                buckets:
                  src: {path: src, acl: private}
                  out: {path: out, acl: public-read}
                  \(test.second): {path: \(test.at), acl: \(test.second == "raw" ? "private" : "public-read")}
                derivatives:
                  - name: copies
                    from: \(test.from)
                    process: image/resize,w_32/format,jpg
                    to: \(test.to)
                    acl: \(test.second == "raw" ? "private" : "public-read")

                """)
            for folder in [test.mounted, test.at, "out"] {
                try FileManager.default.createDirectory(at: project.url(folder), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: project.url("src/landscape.jpg"), to: project.url(test.mounted + "/secret.jpg"))
            let before = files(project.url(test.first))

            let validate = try BindMounts.run(["validate"], in: project.root, mounting: project.url(test.mounted).path, at: test.at)
            #expect(validate.status == 1, "\(test.second): \(validate.stderr)")
            #expect(validate.stderr.contains("buckets '\(test.first)' (\(test.first)) and '\(test.second)' (\(test.at)) share files"), "\(validate.stderr)")
            let build = try BindMounts.run(["build"], in: project.root, mounting: project.url(test.mounted).path, at: test.at)
            #expect(build.status == 1, "\(test.second): \(build.stderr)")
            #expect(files(project.url(test.first)) == before, "outputs of '\(test.second)' written into bucket '\(test.first)'")
        }
    }

    /// The honest neighbour: a bucket folder that is a bind mount of a folder beside the other
    /// bucket, whose name merely starts with the other's (`src2` beside `src`), shares nothing.
    @Test func aBucketMountedFromAFolderBesideAnotherBucketIsValid() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(to: "out/{name}.{ext}"))
        for folder in ["src2", "out"] {
            try FileManager.default.createDirectory(at: project.url(folder), withIntermediateDirectories: true)
        }
        let validate = try BindMounts.run(["validate"], in: project.root, mounting: project.url("src2").path, at: "out")
        #expect(validate.status == 0, "\(validate.stderr)")
        let build = try BindMounts.run(["build", "-q"], in: project.root, mounting: project.url("src2").path, at: "out")
        #expect(build.status == 0, "\(build.stderr)")
        #expect(files(project.url("src2")).count == project.outputs.count, "the outputs go through the mount into src2")
    }
}
