import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Issue 15: the validator lists every folder above each bucket (`foreignStateFolder`), `/tmp`
/// with its thousands of names included, and asks each name whether it has a manifest's
/// extension. `hasManifestExtension` answers with a byte test first; it must answer exactly as
/// the definition (`NSString.pathExtension`, lowered, among `manifestExtensions`) for every name.
@Suite(.ownThreads) struct ManifestExtensionTests {
    static func definition(_ name: String) -> Bool {
        ControlFiles.manifestExtensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// Names at the edges: case, hidden files, bare extensions, doubled and trailing dots, a
    /// Kelvin sign and a dotted capital I (non-ASCII letters whose lower case is ASCII), a
    /// control byte one bit away from `.`, decomposed accents.
    static let edges = ["derive.yaml", "derive.YAML", "derive.Yml", "derive.json", "d.JsOn", ".yaml", ".yml", "..yaml", "a..yaml",
                        "yaml", "yml", "json", "a.yaml.", "a.yaml.bak", "a.tar.yaml", "a.yamll", "a.ymal", "a.yam", "a.\u{212A}", "a.\u{130}",
                        "a\u{0E}yaml", "a.y\u{0E}ml", "é.yaml", "e\u{301}.yml", "a.YAM\u{4C}", "a.ya\u{300}ml", "a. yaml", "a.yaml ", ""]

    @Test func theByteTestAnswersAsPathExtensionForEdgeNames() {
        for name in Self.edges {
            #expect(ControlFiles.hasManifestExtension(name) == Self.definition(name), "\(name.debugDescription)")
            #expect(Self.indexedByteTest(name) == Self.byteTest(name), "\(name.debugDescription)")
        }
    }

    /// The byte test as `hasManifestExtension` writes it (`zip` over the reversed bytes).
    static func byteTest(_ name: String) -> Bool {
        let bytes = name.utf8
        return ControlFiles.manifestSuffixes.contains { suffix in
            bytes.count >= suffix.count && zip(bytes.reversed(), suffix.reversed()).allSatisfy { $0 | 0x20 == $1 }
        }
    }

    /// `endsLikeManifest`, the same test by index on raw bytes (`manifestNames` reads with it).
    static func indexedByteTest(_ name: String) -> Bool {
        Array(name.utf8).withUnsafeBufferPointer(ControlFiles.endsLikeManifest)
    }

    /// Seeded random names over an alphabet of dots, the extensions' letters in both cases and
    /// their look-alikes: the two answers agree on each, and both answers occur.
    @Test(arguments: [1, 2, 3]) func theByteTestAnswersAsPathExtensionForRandomNames(seed: UInt64) {
        let alphabet: [String] = [".", ".", "y", "Y", "a", "A", "m", "M", "l", "L", "j", "J", "s", "S", "o", "O", "n", "N", "x", "é",
                                  "\u{212A}", "\u{0E}", "\u{301}", " ", "-"]
        var state = seed
        func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
        var answers: Set<Bool> = []
        for _ in 0..<4000 {
            var name = (0..<next(4)).map { _ in alphabet[next(alphabet.count)] }.joined()
            // Most names end like an extension, so the interesting half is often reached.
            if next(2) == 0 { name += "." + ["yaml", "YmL", "JSON", "yam", "jsonn", "ya\u{212A}l"][next(6)] }
            let answer = ControlFiles.hasManifestExtension(name)
            answers.insert(answer)
            #expect(answer == Self.definition(name), "\(name.debugDescription)")
            #expect(Self.indexedByteTest(name) == Self.byteTest(name), "\(name.debugDescription)")
        }
        #expect(answers == [true, false])
    }

    /// A folder's manifests are those files, by the definition, that parse as manifests.
    @Test func aFoldersManifestsAreThoseTheDefinitionNames() throws {
        let workspace = try Workspace()
        let manifest = "version: 1\nbuckets:\n  a: {path: a}\n"
        let names = ["one.yaml", "Two.YML", "three.json", ".yaml", "four.yaml.bak", "five.yamll", "six", "seven.Yaml"]
        for name in names { try workspace.write(name, manifest) }
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let folder = workspace.folder.path
        let expected = names.filter(Self.definition).sorted().map { folder + "/" + $0 }
        #expect(expected.count >= 4, "\(expected)")   // (".yaml" too, if its extension is "yaml")
        #expect(ControlFiles.manifests(in: folder) == expected)
    }

    /// `manifestNames` reads the folder with `readdir` and makes strings only of names ending like
    /// a manifest's extension: it names exactly what Foundation's listing, filtered by
    /// `hasManifestExtension`, names (files, folders, links, hidden and non-ASCII names, the edge
    /// names above, and many names that are no manifest's); a folder that cannot be listed has none.
    @Test func readdirNamesAsTheFoundationListingFiltered() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let folder = workspace.folder.path
        for name in Self.edges where !name.isEmpty { try workspace.write(name, "x") }
        for i in 0..<300 { try workspace.write("photo\(i).jpg", "x") }
        for name in ["album.yaml", "ALBUM.JSON", "plain", ".derive"] {
            try FileManager.default.createDirectory(atPath: folder + "/dirs-" + name, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: folder + "/" + name + ".yml", withIntermediateDirectories: true)
        }
        try FileManager.default.createSymbolicLink(atPath: folder + "/link.Yaml", withDestinationPath: "nowhere")
        let expected = try FileManager.default.contentsOfDirectory(atPath: folder).filter(ControlFiles.hasManifestExtension).sorted()
        #expect(expected.count >= 12, "\(expected)")
        #expect(ControlFiles.manifestNames(in: folder).sorted() == expected)
        #expect(ControlFiles.manifestNames(in: folder + "/missing").isEmpty)
        #expect(ControlFiles.manifestNames(in: folder + "/derive.yaml").isEmpty)   // a file, not a folder
    }
}

/// Issue 15: a validation walks from each target (lock, buckets, rules' output folders) up to
/// `/`, judging each folder for another manifest's state; folders judged clear once are not
/// judged again (`passed`). The answers and strays are those of walks made afresh, and a
/// neighbour's state found by one target is found by the next one inside it too.
@Suite(.ownThreads) struct ForeignStateWalkTests {
    @Test func walksSharingWhatIsJudgedAnswerAsWalksAfresh() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let root = workspace.folder.resolvingSymlinksInPath().path
        try workspace.write("b.yaml", "version: 1\nbuckets:\n  a: {path: a}\n")   // b's default state: .derive/b
        for folder in [".derive/b/x", ".derive/b/y", "mine/out", "mine/src", "mine/.derive/mine"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        let own = FileSystemPath(manifest: root + "/mine/.derive/mine")
        let targets = ["mine/out", ".derive/b/x", "mine/src", ".derive/b/y/new", "mine/out/deeper"].map { root + "/" + $0 }
        var strays: [String] = []
        var passed: Set<String> = []
        var shared: [String?] = []
        for target in targets {
            shared.append(ControlFiles.foreignStateFolder(holding: target, own: own, strays: &strays, passed: &passed)?.folder)
        }
        var afresh: [String?] = []
        var freshStrays: [String] = []
        for target in targets {
            var alone: Set<String> = []
            afresh.append(ControlFiles.foreignStateFolder(holding: target, own: own, strays: &freshStrays, passed: &alone)?.folder)
        }
        #expect(shared == afresh)
        #expect(shared == [nil, root + "/.derive/b", nil, root + "/.derive/b", nil])
        #expect(Set(strays) == Set(freshStrays))
        // The project's folder and those above it were judged once, for the first target.
        #expect(passed.contains(root) && passed.contains("/"))
        #expect(!passed.contains(root + "/.derive/b"))
    }
}
