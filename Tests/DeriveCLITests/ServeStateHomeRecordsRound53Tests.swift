import Access
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import DeriveServer
@testable import derive

/// Attack 52b's 4 (High): serve hid Derive's state home only by its path (`XDG_STATE_HOME`
/// inside a bucket is refused), so its files hard-linked into a public bucket (`cp -al`, `rsync
/// --link-dest`), copied there (`cp -a state/derive pub/.st/`) or another project's state home
/// inside the bucket were answered and listed to anyone: the secret that seals build states, the
/// registry naming every project. They are known by what they are (`StateHomeRecord`): a current
/// token's very file, or a file starting as a token does, whatever its name. Never answered
/// (GET, HEAD, an x-oss-process source or watermark), listed or written, signed or not; a user's
/// file that merely starts with the same word is answered.
@Suite(.ownThreads) struct ServeStateHomeRecordsRound53Tests {
    static let hex = String(repeating: "a7", count: 32)
    /// Each record as its writer writes it (`StateBinding`, `ReportSeal`, build-17's token,
    /// `LockProvenance`, `StateFolderMade`, `ProjectRegistry` and its mark), under names no state home uses.
    static let records: [(key: String, text: String)] = [
        ("notes.txt", "secret \(hex)\nstate \"/home/u/p/.derive/p/state.sqlite\"\n"),
        ("keys/reports.txt", "secret \(hex)\nreport folders\n"),
        ("old/legacy", "token \(hex)\n"),
        (".st/derive/states/\(hex).lock", "lock \(hex)\npath \"/p/p.lock\"\nbucket 1 2 [\"www\",\"/p/pub\"]\n"),
        ("backup/judged", "not \(hex)\npath \"/p/p.lock\"\n"),
        (".st/derive/states/\(hex).folders", "made 2049 1234 1700000000 \"/p/.derive/p\"\n"),
        ("list.txt", "derive-projects 2\n{\"buckets\":{},\"lock\":\"/p/p.lock\",\"manifest\":\"/p/p.yaml\",\"state\":\"/p/.derive/p\"}\n"),
        ("older/projects", "derive-projects 1\n"),
        ("taken.txt", "derive-takeovers 1\ntook 2049 1234 1700000000 [\"/p/pub/a.jpg\",\"/q/derive.yaml\"]\n"),
        ("mark.txt", "derive: the registry of built projects may lack a project; the next build that records one writes it whole\n"),
    ]

    @Test func derivesPerUserRecordsInABucketAreNeverAnsweredListedOrWritten() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        func put(_ path: String, _ data: Data) throws {
            let url = root.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        try put("pub/index.html", Data("<p>hello</p>\n".utf8))
        try put("pub/secret-recipe.txt", Data("secret sauce: more butter, and it is a secret of 40 years\n".utf8))
        try put("pub/made.txt", Data("made by hand in 2024, \"with care\"\n".utf8))
        try put("pub/pic.jpg", try Data(contentsOf: CLI.samples.appendingPathComponent("landscape.jpg")))
        for record in Self.records { try put("pub/" + record.key, Data(record.text.utf8)) }
        // A current token of the state home (whatever it holds), hard-linked into the bucket.
        let tokens = CLI.userStateHome.appendingPathComponent("derive/states")
        try fm.createDirectory(at: tokens, withIntermediateDirectories: true)
        let token = tokens.appendingPathComponent("round53-\(UUID().uuidString).tmp")
        try Data("not a record's first bytes, yet a token's file\n".utf8).write(to: token)
        defer { try? fm.removeItem(at: token) }
        try fm.linkItem(at: token, to: root.appendingPathComponent("pub/linked.txt"))
        try put("site.yaml", Data("version: 1\nbuckets:\n  www: {path: pub, acl: public-read-write}\nderivatives: []\n".utf8))
        let manifest = try #require(ManifestLoader().load(root.appendingPathComponent("site.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent("cache").path,
                                        recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest), clock: { ProjectMarkerWritesRound44Tests.now })
        func send(_ method: String, _ key: String, query: [(String, String?)] = [], body: String = "", signed: Bool) -> (status: Int, text: String, etag: String?) {
            ServeHiddenFilesRound51Tests.send(service, method, "www", key, query: query, body: body, signed: signed)
        }
        for key in ["index.html", "secret-recipe.txt", "made.txt", "pic.jpg"] {
            #expect(send("GET", key, signed: false).status == 200, "\(key)")
        }
        let hidden = Self.records.map { ($0.key, String($0.text.split(separator: "\n")[0])) } + [("linked.txt", "not a record's first bytes")]
        for (key, first) in hidden {
            for signed in [false, true] {
                for method in ["GET", "HEAD"] {
                    let answer = send(method, key, signed: signed)
                    #expect(answer.status == 404 && !answer.text.contains(first), "\(method) \(key) signed \(signed): \(answer.status) \(answer.text)")
                }
                let processed = send("GET", key, query: [("x-oss-process", "image/info")], signed: signed)
                #expect(processed.status == 404 && !processed.text.contains(first), "\(key) processed, signed \(signed): \(processed.status) \(processed.text)")
                let put = send("PUT", key, body: "x", signed: signed)
                #expect(put.status >= 400, "\(key) signed \(signed): PUT \(put.status) \(put.text)")
            }
        }
        #expect((try? String(contentsOf: root.appendingPathComponent("pub/notes.txt"), encoding: .utf8))?.hasPrefix("secret \(Self.hex)") == true)
        #expect((try? String(contentsOf: token, encoding: .utf8))?.hasPrefix("not a record's first bytes") == true)
        // As a watermark's image: no pixel of it is drawn (the user's picture is, as the control).
        let marked = send("GET", "pic.jpg", query: [("x-oss-process", "image/watermark,image_bm90ZXMudHh0")], signed: true)
        #expect(marked.status >= 400 && marked.status < 500, "\(marked.status) \(marked.text)")
        let control = send("GET", "pic.jpg", query: [("x-oss-process", "image/watermark,image_cGljLmpwZw")], signed: true)
        #expect(control.status == 200, "\(control.status) \(control.text)")
        for signed in [false, true] {
            let listed = send("GET", "", signed: signed)
            #expect(listed.status == 200 && listed.text.contains("<Key>index.html</Key>") && listed.text.contains("<Key>made.txt</Key>")
                        && listed.text.contains("<Key>secret-recipe.txt</Key>"), "\(listed.text)")
            for (key, _) in hidden { #expect(!listed.text.contains("<Key>\(key)</Key>"), "signed \(signed): \(key) listed") }
            let two = send("GET", "", query: [("list-type", "2"), ("prefix", ".st/")], signed: signed)
            #expect(two.status == 200 && !two.text.contains("<Key>"), "\(two.text)")
        }
    }

    /// The signatures are a record's first bytes, exactly: a user's text starting with the same
    /// word, or a record's word without what follows it in a record, is no record.
    @Test func onlyARecordsFirstBytesMakeARecord() {
        for text in Self.records.map(\.text) { #expect(StateHomeRecord.matches(Array(text.utf8)), "\(text)") }
        for text in ["secret sauce\n", "secret \(Self.hex)\n", "secret abc\nstate \"x\"\n", "token of thanks\n", "lock \(Self.hex) path\n",
                     "made by hand \"x\"\n", "made 1 2 x \"p\"\n", "derive-projects 3\n", "derive-projects 2", "not \(Self.hex)\nstate \"x\"\n"] {
            #expect(!StateHomeRecord.matches(Array(text.utf8)), "\(text)")
        }
    }
}
