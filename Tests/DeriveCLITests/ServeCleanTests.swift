import Foundation
import Testing
import TestSupport

/// `derive clean` removes what `derive serve` wrote in the state folder (uploads in progress,
/// render cache, appendable record), only in the shapes serve writes, never through a link or
/// into a file serve did not write; `serve-metadata.sqlite` is kept (it describes uploaded
/// objects, which stay).
@Suite(.ownThreads, .serialized) struct ServeCleanTests {
    @Test func cleanRemovesServeFilesOnlyInTheirOwnShapes() throws {
        let project = try BuildSafetyAttackTests.Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let state = project.url(".derive/derive")
        let fm = FileManager.default
        func put(_ path: String, _ text: String) throws {
            let url = state.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let upload = "0123456789ABCDEF0123456789ABCDEF", shared = "FEDCBA9876543210FEDCBA9876543210", linked = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        let record = "{\"bucket\":\"b\",\"key\":\"k\",\"initiated\":1}"
        try put("serve-uploads/\(upload)/upload.json", record)
        try put("serve-uploads/\(upload)/part-00001", "part")
        try put("serve-uploads/\(upload)/.part-00002.123.456.derive-tmp", "tmp")
        try put("serve-uploads/append-0011223344556677", "staged")
        try put("serve-uploads/\(shared)/upload.json", record)
        try put("serve-uploads/\(shared)/notes.txt", "a user's file")
        let cacheKey = "ab" + String(repeating: "0", count: 62)
        try put("serve-cache/ab/\(cacheKey)", "image/png d41d8cd98f00b204e9800998ecf8427e\n")   // serve's shape: the MD5 of its (empty) body
        try put("serve-appendable.json", "{\"b\\u0000k\":{\"inode\":1,\"size\":2}}")
        try put("serve-metadata.sqlite", "kept")
        // A link where an upload folder would be: never followed.
        let outside = project.url("outside")
        try fm.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: outside.appendingPathComponent("upload.json"))
        try Data("mine".utf8).write(to: outside.appendingPathComponent("part-00001"))
        try fm.createSymbolicLink(atPath: state.appendingPathComponent("serve-uploads/\(linked)").path, withDestinationPath: outside.path)

        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        func exists(_ path: String) -> Bool { fm.fileExists(atPath: state.appendingPathComponent(path).path) }
        #expect(!exists("serve-uploads/\(upload)"))
        #expect(!exists("serve-uploads/append-0011223344556677"))
        #expect(!exists("serve-uploads/\(shared)/upload.json") && exists("serve-uploads/\(shared)/notes.txt"))
        #expect(!exists("serve-cache"))
        #expect(!exists("serve-appendable.json"))
        #expect(exists("serve-metadata.sqlite"))
        #expect(fm.fileExists(atPath: outside.appendingPathComponent("upload.json").path))
        #expect(fm.fileExists(atPath: outside.appendingPathComponent("part-00001").path))
        #expect(clean.stderr.contains(shared) || String(decoding: clean.stdout, as: UTF8.self).contains(shared), "\(clean.stderr)")
    }

    @Test func anAppendableRecordNotInServesFormatIsKept() throws {
        let project = try BuildSafetyAttackTests.Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let file = project.url(".derive/derive/serve-appendable.json")
        try Data("a user's notes".utf8).write(to: file)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(FileManager.default.contents(atPath: file.path) == Data("a user's notes".utf8))
    }

    /// Attack 8 finding 4: a file with only serve's name is not serve's. An upload.json that does
    /// not parse as serve's record keeps its folder; a staged append or part with a second link
    /// (someone's hard link) is kept; each is named.
    @Test func filesWithOnlyServesNamesAreKept() throws {
        let project = try BuildSafetyAttackTests.Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let state = project.url(".derive/derive")
        let fm = FileManager.default
        let uploads = state.appendingPathComponent("serve-uploads")
        let notAnUpload = "0123456789ABCDEF0123456789ABCDEF"
        try fm.createDirectory(at: uploads.appendingPathComponent(notAnUpload), withIntermediateDirectories: true)
        try Data("user".utf8).write(to: uploads.appendingPathComponent("\(notAnUpload)/upload.json"))
        try Data("mine".utf8).write(to: uploads.appendingPathComponent("\(notAnUpload)/part-00001"))
        let mine = project.url("mine.txt")
        try Data("a user's file".utf8).write(to: mine)
        try fm.linkItem(at: mine, to: uploads.appendingPathComponent("append-abc"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        let said = clean.stderr + String(decoding: clean.stdout, as: UTF8.self)
        #expect(fm.contents(atPath: uploads.appendingPathComponent("\(notAnUpload)/upload.json").path) == Data("user".utf8))
        #expect(fm.contents(atPath: uploads.appendingPathComponent("\(notAnUpload)/part-00001").path) == Data("mine".utf8))
        #expect(fm.contents(atPath: uploads.appendingPathComponent("append-abc").path) == Data("a user's file".utf8))
        #expect(said.contains(notAnUpload) && said.contains("append-abc"), "\(said)")
    }

    /// Attack 9, finding 1: `serve-cache` or `serve-uploads` a symbolic link to another folder
    /// (a cache two projects share): clean deleted serve-shaped files there. Now each is opened
    /// from the state folder without following links; the link is kept and named as a link.
    @Test func aLinkAtServeCacheOrServeUploadsIsNeverFollowed() throws {
        let project = try BuildSafetyAttackTests.Project()
        defer { project.remove() }
        let fm = FileManager.default
        let state = project.url(".derive/derive")
        try fm.createDirectory(at: state, withIntermediateDirectories: true)
        let cacheKey = "ab" + String(repeating: "0", count: 62)
        let victim = project.url("victim")
        try fm.createDirectory(at: victim.appendingPathComponent("ab"), withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: victim.appendingPathComponent("ab/\(cacheKey)"))
        try fm.createSymbolicLink(atPath: state.appendingPathComponent("serve-cache").path, withDestinationPath: victim.path)
        let upload = "ABCDEF0123456789ABCDEF0123456789"
        let outsideUploads = project.url("outside-up")
        try fm.createDirectory(at: outsideUploads.appendingPathComponent(upload), withIntermediateDirectories: true)
        try Data("{\"bucket\":\"b\",\"key\":\"k\",\"initiated\":1}".utf8).write(to: outsideUploads.appendingPathComponent("\(upload)/upload.json"))
        try Data("part".utf8).write(to: outsideUploads.appendingPathComponent("\(upload)/part-00001"))
        try Data("staged".utf8).write(to: outsideUploads.appendingPathComponent("append-00ff"))
        try fm.createSymbolicLink(atPath: state.appendingPathComponent("serve-uploads").path, withDestinationPath: outsideUploads.path)

        for round in 0..<2 {   // with no build state, then after a build
            if round == 1 { #expect(try project.run(["build", "-q"]).status == 0) }
            let clean = try project.run(["clean"])
            #expect(clean.status == 0, "\(clean.stderr)")
            let said = clean.stderr + String(decoding: clean.stdout, as: UTF8.self)
            #expect(fm.contents(atPath: victim.appendingPathComponent("ab/\(cacheKey)").path) == Data("precious".utf8), "round \(round)")
            #expect(fm.fileExists(atPath: outsideUploads.appendingPathComponent("\(upload)/upload.json").path), "round \(round)")
            #expect(fm.fileExists(atPath: outsideUploads.appendingPathComponent("\(upload)/part-00001").path), "round \(round)")
            #expect(fm.fileExists(atPath: outsideUploads.appendingPathComponent("append-00ff").path), "round \(round)")
            #expect((try? fm.destinationOfSymbolicLink(atPath: state.appendingPathComponent("serve-cache").path)) == victim.path)
            #expect((try? fm.destinationOfSymbolicLink(atPath: state.appendingPathComponent("serve-uploads").path)) == outsideUploads.path)
            #expect(said.contains("serve-cache is kept: it is a symbolic link") && said.contains("serve-uploads is kept: it is a symbolic link"), "\(said)")
        }
    }

    /// Attack 9, finding 9: every entry clean keeps is named: a folder that is not an upload,
    /// a link named like a staged append, a link inside an upload folder or the cache.
    @Test func everyKeptEntryIsNamed() throws {
        let project = try BuildSafetyAttackTests.Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let fm = FileManager.default
        let state = project.url(".derive/derive")
        let uploads = state.appendingPathComponent("serve-uploads")
        try fm.createDirectory(at: uploads.appendingPathComponent("MYUPLOAD"), withIntermediateDirectories: true)
        try Data("{\"my\":\"data\"}".utf8).write(to: uploads.appendingPathComponent("MYUPLOAD/upload.json"))
        let mine = project.url("mine.txt")
        try Data("a user's file".utf8).write(to: mine)
        try fm.createSymbolicLink(atPath: uploads.appendingPathComponent("append-00ff").path, withDestinationPath: mine.path)
        let upload = "0123456789ABCDEF0123456789ABCDEF"
        try fm.createDirectory(at: uploads.appendingPathComponent(upload), withIntermediateDirectories: true)
        try Data("{\"bucket\":\"b\",\"key\":\"k\",\"initiated\":1}".utf8).write(to: uploads.appendingPathComponent("\(upload)/upload.json"))
        try fm.createSymbolicLink(atPath: uploads.appendingPathComponent("\(upload)/part-00001").path, withDestinationPath: mine.path)
        try fm.createDirectory(at: state.appendingPathComponent("serve-cache/ab"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: state.appendingPathComponent("serve-cache/ab/ab" + String(repeating: "1", count: 62)).path, withDestinationPath: mine.path)
        try fm.createSymbolicLink(atPath: state.appendingPathComponent("serve-appendable.json").path, withDestinationPath: mine.path)

        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        let said = clean.stderr + String(decoding: clean.stdout, as: UTF8.self)
        #expect(said.contains("serve-uploads/MYUPLOAD is kept"), "\(said)")
        #expect(said.contains("serve-uploads/append-00ff is kept: it is a symbolic link"), "\(said)")
        #expect(said.contains("serve-uploads/\(upload) is kept: it holds part-00001 (a symbolic link)"), "\(said)")
        #expect(said.contains("serve-cache/ab is kept: it holds ab111"), "\(said)")
        #expect(said.contains("serve-appendable.json is kept: it is a symbolic link"), "\(said)")
        #expect(fm.contents(atPath: mine.path) == Data("a user's file".utf8))
        #expect(fm.fileExists(atPath: uploads.appendingPathComponent("MYUPLOAD/upload.json").path))
    }
}
