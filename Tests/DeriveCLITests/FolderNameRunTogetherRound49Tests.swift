import Foundation
import Testing
import TestSupport

/// Attack 49c's finding 3: `{dir}` ends with no '/', so `to: out/{dir}{name}.webp` runs a folder
/// and a file name together, and `src/d0/a.jpg` and `src/d0a.jpg` both give `out/d0a.webp`. Both
/// fail, rightly, but the message blamed what 'to' leaves out "such as the extension, which {name}
/// drops". It now names the missing '/' after {dir}.
@Suite(.ownThreads) struct FolderNameRunTogetherRound49Tests {
    @Test func theCollisionNamesTheSlashMissingAfterDir() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("""
            version: 1
            buckets:
              src: {path: src, acl: private}
              out: {path: out, acl: private}
            derivatives:
              - name: r
                from: src/**/*.jpg
                process: image/resize,w_16/format,webp
                to: out/{dir}{name}.webp
            state: .derive

            """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("src/d0/a.jpg"))
        try copySample("portrait.jpg", to: folder.appendingPathComponent("src/d0a.jpg"))
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 1, "\(said(plan))")
        #expect(said(plan).contains("out/d0a.webp"), "\(said(plan))")
        #expect(said(plan).contains("'to' puts the file name right after {dir}, which ends with no '/'"), "\(said(plan))")
        #expect(said(plan).contains("write {dir}/ in 'to'"), "\(said(plan))")
        #expect(!said(plan).contains("which {name} drops"), "\(said(plan))")
    }

    @Test func twoExtensionsStillBlameTheExtension() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("""
            version: 1
            buckets:
              src: {path: src, acl: private}
              out: {path: out, acl: private}
            derivatives:
              - name: r
                from: src/**/*.jp*g
                process: image/resize,w_16/format,webp
                to: out/{dir}/{name}.webp
            state: .derive

            """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("src/d0/a.jpg"))
        try copySample("portrait.jpg", to: folder.appendingPathComponent("src/d0/a.jpeg"))
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 1, "\(said(plan))")
        #expect(said(plan).contains("which {name} drops") && !said(plan).contains("right after {dir}"), "\(said(plan))")
    }
}
