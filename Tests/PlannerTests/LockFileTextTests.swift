import Foundation
import Confinement
@testable import Planner
import Testing
import TestSupport

/// Issue 15: the lock is written into one byte buffer (`LockFile.data`) instead of line by line;
/// its bytes equal the line-by-line text (`linesText`, the code before) for every kind of entry
/// and `left` line, escapes included.
@Suite(.ownThreads) struct LockFileTextTests {
    static let texts = ["a.jpg", "photos/2024/ünïcödé é.webp", "quote\"d", "back\\slash", "tab\there", "new\nline", "cr\r", "bell\u{7}",
                        "del\u{7F}", "nul\u{0}", "emoji 🖼️", "", String(repeating: "k", count: 300)]

    @Test(arguments: [1, 2, 3]) func theBufferEqualsTheLineByLineText(seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        func some() -> String { Self.texts[random.below(Self.texts.count)] }
        for round in 0..<40 {
            let entries = (0..<random.below(30)).map { index in
                LockFile.Entry(path: "out/\(index)/" + some(), actionKey: some(), digest: String(repeating: "ab", count: 32),
                               width: random.below(5000) - 1, height: random.below(5000), bytes: Int64(random.below(1 << 30)) * 3, format: some())
            }
            let left = (0..<random.below(4)).map { index in
                LockFile.Left(path: "out/left\(index)" + some(), acl: ["private", "public-read", "default"][random.below(3)], why: some(),
                              file: random.below(2) == 0 ? nil : "site/" + some(), gone: random.below(2) == 0,
                              goneSince: random.below(2) == 0 ? 0 : Int64(1_796_310_103 + random.below(1000)))
            }
            let manifest: String? = random.below(3) == 0 ? nil : "derive" + some() + ".yaml"
            let index: LockFile.Index? = random.below(2) == 0 ? nil : LockFile.Index(path: "site/index" + some() + ".json", digest: some())
            let data = LockFile.data(sorted: entries, manifest: manifest, index: index, left: left)
            let lines = LockFile.linesText(sorted: entries, manifest: manifest, index: index, left: left)
            #expect(data == Data(lines.utf8), "round \(round)")
            #expect(LockFile.text(sorted: entries, manifest: manifest, index: index, left: left) == lines)
        }
    }
}
