import Foundation
import Testing
import TestSupport

/// Attack 20's M4 through the executable: a 4 GB file a rule's glob takes was hashed whole by
/// every plan (26–43 s), and again after every touch. `plan` refuses a file over the byte limit
/// from its size, with the build's own message, and a file that is not an image from its first
/// bytes; the photo beside them plans as before.
@Suite(.ownThreads, .serialized) struct RefusedSourceCLITests {
    @Test func filesOverTheLimitOrNotImagesAreRefusedUnread() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("lake.jpg"))
        // Sparse: no disk space, but 8 GiB of zeros to whoever reads them (minutes of hashing).
        for (name, head) in [("huge.jpg", Data([0xFF, 0xD8, 0xFF, 0xE0])), ("disk.jpg", Data("not an image".utf8))] {
            let url = photos.appendingPathComponent(name)
            try head.write(to: url)
            let handle = try FileHandle(forWritingTo: url)
            try handle.truncate(atOffset: 8 << 30)
            try handle.close()
        }
        try Data("small text, not an image".utf8).write(to: photos.appendingPathComponent("notes.jpg"))
        try Data("""
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        derivatives:
          - from: photos/*.jpg
            process: image/resize,w_100/format,webp
            to: site/{name}.webp

        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        for round in 0..<2 {
            let plan = try CLI.run(["plan"], in: folder)
            let lines = plan.stderr.split(separator: "\n")
            for name in ["huge.jpg", "disk.jpg"] {
                #expect(lines.contains { $0.contains("photos/\(name)") && $0.contains("ImageTooLarge") && $0.contains("the source is 8589934592 bytes; the limit is 20971520 bytes") },
                        "round \(round), \(name): \(plan.stderr)")
            }
            #expect(lines.contains { $0.contains("photos/notes.jpg") && $0.contains("the source is not an image in a supported format") }, "round \(round): \(plan.stderr)")
            #expect(String(decoding: plan.stdout, as: UTF8.self).contains(round == 0 ? "site/lake.webp" : "1 up to date"), "round \(round): \(plan.stdout)")
            let build = try CLI.run(["build", "--quiet"], in: folder)
            #expect(build.status == 1 && build.stderr.contains("the source is 8589934592 bytes; the limit is 20971520 bytes"), "\(build.stderr)")
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("site/lake.webp").path))
            // Touched: refused the same way, still unread.
            for name in ["huge.jpg", "disk.jpg", "notes.jpg"] {
                try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: photos.appendingPathComponent(name).path)
            }
        }
    }
}
