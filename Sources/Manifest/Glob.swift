import Confinement

/// Glob patterns over object keys: `**` (any number of folders), `*` (within one folder), `?`
/// (one scalar), `{a,b}` (alternatives), `[abc]` / `[a-z]` / `[!a]` (scalar classes).
///
/// Patterns and keys are compared as Unicode scalars, never as Swift `Character`s: a grapheme
/// cluster can swallow a `/` (`/` + U+0301 is one `Character`), which would hide a folder from
/// `secret/**`. Keys that differ in scalars are different keys, as in OSS, even when Swift's `==`
/// (canonical equivalence) says they are equal; U+FF0F (fullwidth solidus) is not a separator.
public struct Glob: Hashable, Sendable, CustomStringConvertible {
    public let pattern: String
    /// The pattern with braces expanded into its alternatives.
    let alternatives: [[Unicode.Scalar]]
    /// The alternatives as loose patterns, for overlap checks.
    let loose: [LoosePattern]
    /// Each alternative's literal scalars before its first and after its last wildcard: a whole
    /// key it matches starts with the one and ends with the other. Checked before the walk, so
    /// `images/**/*.{jpg,JPG,…}` (derive init's 22 alternatives) walks a name only for the
    /// alternative whose extension it has (attack round 25: 20 000 names planned in 5.7 s, where
    /// `images/**/*.jpg` took 1.0 s).
    let literalEnds: [LiteralEnds]
    /// Each alternative that spells a byte outside UTF-8 as the build names it (`\xE9`, a byte
    /// 80–FF): it names a file whose name is not UTF-8, and never matches a UTF-8 key, though one
    /// may hold those four characters (`caf\xE9.jpg` with a backslash: derive init's exclude of
    /// the one silently excluded the other, attack 42c's L-g). A UTF-8 name with a backslash
    /// there is matched with a class: `caf[\]xE9.jpg`.
    let spellsBytes: [Bool]

    /// Whether `alternative` holds `\x` and two upper-case hex digits from 80 to FF.
    static func spellsByte(_ alternative: [Unicode.Scalar]) -> Bool {
        guard alternative.count >= 4 else { return false }
        let high = "89ABCDEF".unicodeScalars, hex = "0123456789ABCDEF".unicodeScalars
        return (0...(alternative.count - 4)).contains { i in
            alternative[i] == "\\" && alternative[i + 1] == "x" && high.contains(alternative[i + 2]) && hex.contains(alternative[i + 3])
        }
    }

    struct LiteralEnds: Sendable {
        let head: [Unicode.Scalar]
        let tail: [Unicode.Scalar]

        init(_ alternative: [Unicode.Scalar]) {
            head = Array(alternative.prefix { !"*?[".unicodeScalars.contains($0) })
            let tail = Array(alternative.reversed().prefix { !"*?]".unicodeScalars.contains($0) }.reversed())
            // A `/` right after `**` is no literal: `**/` also matches no folder at all.
            let before = alternative.dropLast(tail.count).suffix(2)
            self.tail = tail.first == "/" && before.elementsEqual(["*", "*"] as [Unicode.Scalar]) ? Array(tail.dropFirst()) : tail
        }

        /// The tail first: it is where alternatives differ (the extension).
        func admit(_ text: [Unicode.Scalar]) -> Bool {
            guard text.count >= head.count, text.count >= tail.count else { return false }
            let offset = text.count - tail.count
            for k in tail.indices where text[offset + k] != tail[k] { return false }
            for k in head.indices where text[k] != head[k] { return false }
            return true
        }
    }

    public init(_ pattern: String) throws {
        self.pattern = pattern
        self.alternatives = try Glob.expandBraces(Array(pattern.unicodeScalars))
        for alternative in alternatives { try Glob.checkClasses(alternative) }
        self.loose = alternatives.map(LoosePattern.init(glob:))
        self.literalEnds = alternatives.map(LiteralEnds.init)
        self.spellsBytes = alternatives.map(Glob.spellsByte)
    }

    public var description: String { pattern }

    // Hashable by the pattern's scalars, not by String's canonical equivalence.
    public static func == (lhs: Glob, rhs: Glob) -> Bool { lhs.pattern.unicodeScalars.elementsEqual(rhs.pattern.unicodeScalars) }
    public func hash(into hasher: inout Hasher) { for scalar in pattern.unicodeScalars { hasher.combine(scalar.value) } }

    /// Matches a key (UTF-8: an alternative that spells a byte outside UTF-8 never matches it).
    public func matches(_ key: String) -> Bool {
        let text = Array(key.unicodeScalars)
        return alternatives.indices.contains { !spellsBytes[$0] && literalEnds[$0].admit(text) && Glob.match(alternatives[$0], 0, text, 0, WholeKey()) }
    }

    /// Matches the name of a file that is not UTF-8, as the listing spells it (`caf\xE9.jpg`).
    public func matchesNotUTF8(_ name: String) -> Bool {
        let text = Array(name.unicodeScalars)
        return alternatives.indices.contains { literalEnds[$0].admit(text) && Glob.match(alternatives[$0], 0, text, 0, WholeKey()) }
    }

    /// Whether the pattern may have named the entry whose name is not UTF-8, spelled `name` as the
    /// listing spells it (`Caf\xE9`), under the name it had before (`below`: or a key below the
    /// folder so named). Each run of bytes written `\xHH` stands for one or more scalars: a folder
    /// renamed `Café` → `Caf<E9>` (an old archive, a Latin-1 tool) was named by `Café/*.jpg`,
    /// `Caf?/*.jpg` or `Caf[eé]/*.jpg`, which never match the spelling (attack 44a's H1: its
    /// outputs were deleted without a word). An over-approximation, as `mayOverlap` is: when in
    /// doubt, the rule fails on it and nothing of the bucket is deleted.
    public func mayHaveNamedNotUTF8(_ name: String, below: Bool) -> Bool {
        var items: [LoosePattern.Item] = []
        let scalars = Array(name.unicodeScalars)
        let hex = "0123456789ABCDEF".unicodeScalars
        var index = 0, inRun = false
        while index < scalars.count {
            if index + 3 < scalars.count, scalars[index] == "\\", scalars[index + 1] == "x",
               hex.contains(scalars[index + 2]), hex.contains(scalars[index + 3]) {
                if !inRun { items += [.one(.segment), .run(.segment)] }
                inRun = true
                index += 4
                continue
            }
            inRun = false
            items.append(.one(.scalar(scalars[index])))
            index += 1
        }
        if below { items += [.one(.scalar("/")), .run(.any)] }
        let fuzzy = LoosePattern(items)
        return loose.contains { $0.intersects(fuzzy) }
    }

    /// Matches a validated key (its bytes are UTF-8, so its scalars are exact).
    public func matches(_ key: ObjectKey) -> Bool { matches(key.string) }

    static func expandBraces(_ pattern: [Unicode.Scalar]) throws -> [[Unicode.Scalar]] {
        guard let open = pattern.firstIndex(of: "{") else { return [pattern] }
        var depth = 0
        var close: Int?
        var commas: [Int] = []
        for index in open..<pattern.count {
            switch pattern[index] {
            case "{": depth += 1
            case "}":
                depth -= 1
                if depth == 0 { close = index }
            case "," where depth == 1: commas.append(index)
            default: break
            }
            if close != nil { break }
        }
        guard let close else { throw GlobError(message: "unclosed '{' in pattern '\(Glob.text(pattern))'") }
        let head = Array(pattern[..<open]), tail = Array(pattern[(close + 1)...])
        var bounds = [open] + commas + [close]
        var results: [[Unicode.Scalar]] = []
        for index in 0..<(bounds.count - 1) {
            let option = Array(pattern[(bounds[index] + 1)..<bounds[index + 1]])
            for expanded in try expandBraces(head + option + tail) { results.append(expanded) }
            if results.count > 256 { throw GlobError(message: "pattern '\(Glob.text(pattern))' expands to too many alternatives") }
        }
        bounds.removeAll()
        return results
    }

    static func text(_ scalars: [Unicode.Scalar]) -> String {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        return text
    }

    static func checkClasses(_ pattern: [Unicode.Scalar]) throws {
        var index = 0
        while index < pattern.count {
            if pattern[index] == "[" {
                guard let close = pattern[(index + 1)...].firstIndex(of: "]"), close > index + 1 else {
                    throw GlobError(message: "unclosed '[' in pattern '\(Glob.text(pattern))'")
                }
                index = close
            }
            index += 1
        }
    }

    /// Whether the class written `[set]` (`[abc]`, `[a-z]`, `[!a]`, `[^a]`) admits `c`.
    static func classAdmits(_ set: [Unicode.Scalar], _ c: Unicode.Scalar) -> Bool {
        var set = set
        let negate = set.first == "!" || set.first == "^"
        if negate { set.removeFirst() }
        var found = false
        var k = 0
        while k < set.count {
            if k + 2 < set.count, set[k + 1] == "-" {
                if set[k] <= c, c <= set[k + 2] { found = true }
                k += 3
            } else {
                if set[k] == c { found = true }
                k += 1
            }
        }
        return found != negate
    }

    /// Backtracking match of the pattern `p` from `i` against the text `s` from `j`: `**` crosses
    /// `/`, `*`, `?` and classes do not; `**/` also matches no folder. `end` says what the text
    /// is: a whole key (the pattern must end with it), or the beginning of keys (a folder and its
    /// `/`), where the pattern may go on past the text's end and `end` decides on what is left.
    /// `untracked`: how many failed tries are not remembered (tests remember them all).
    static func match<End: TextEnd>(_ p: [Unicode.Scalar], _ i: Int, _ s: [Unicode.Scalar], _ j: Int, _ end: End,
                                    untracked: Int = Failed.untracked) -> Bool {
        var failed = Failed(width: s.count + 1, untracked: untracked)
        return match(p, i, s, j, end, failed: &failed)
    }

    /// The (pattern, text) positions from which a match was tried and failed. The answer from a
    /// pair depends on nothing else, so once remembered each pair is tried once: a match costs at
    /// most (pattern + 1) × (text + 1) tries, each a loop over the text. Without it a pattern of
    /// many `*` tried every way of sharing a long name among them (attack round 24's M2: hours
    /// for one 245-byte name). The first tries are not remembered: the usual match, which
    /// backtracks little, allocates nothing for it.
    struct Failed {
        static let untracked = 64
        let width: Int
        var untracked: Int
        var pairs: Set<Int> = []

        func contains(_ i: Int, _ j: Int) -> Bool { untracked == 0 && pairs.contains(i * width + j) }

        mutating func insert(_ i: Int, _ j: Int) {
            if untracked > 0 { untracked -= 1 } else { pairs.insert(i * width + j) }
        }
    }

    private static func match<End: TextEnd>(_ p: [Unicode.Scalar], _ i: Int, _ s: [Unicode.Scalar], _ j: Int, _ end: End,
                                           failed: inout Failed) -> Bool {
        if failed.contains(i, j) { return false }
        if tryMatch(p, i, s, j, end, failed: &failed) { return true }
        failed.insert(i, j)
        return false
    }

    private static func tryMatch<End: TextEnd>(_ p: [Unicode.Scalar], _ i: Int, _ s: [Unicode.Scalar], _ j: Int, _ end: End,
                                              failed: inout Failed) -> Bool {
        var i = i, j = j
        while i < p.count {
            if End.isBeginning, j == s.count { return end.accepts(i) }
            switch p[i] {
            case "*":
                if i + 1 < p.count, p[i + 1] == "*" {
                    var next = i + 2
                    if next < p.count, p[next] == "/" {
                        // "**/": zero folders, or any prefix ending in "/".
                        next += 1
                        if match(p, next, s, j, end, failed: &failed) { return true }
                        var k = j
                        while k < s.count {
                            if s[k] == "/", match(p, next, s, k + 1, end, failed: &failed) { return true }
                            k += 1
                        }
                        return End.isBeginning && end.accepts(i)   // or goes on past the text
                    }
                    var k = j
                    while k <= s.count {
                        if match(p, next, s, k, end, failed: &failed) { return true }
                        k += 1
                    }
                    return End.isBeginning && end.accepts(i)
                }
                var k = j
                while k <= s.count {
                    if match(p, i + 1, s, k, end, failed: &failed) { return true }
                    if k < s.count, s[k] == "/" { return false }
                    k += 1
                }
                return End.isBeginning && end.accepts(i)
            case "?":
                guard j < s.count, s[j] != "/" else { return false }
                i += 1; j += 1
            case "[":
                guard j < s.count, s[j] != "/", let close = p[(i + 1)...].firstIndex(of: "]") else { return false }
                guard classAdmits(Array(p[(i + 1)..<close]), s[j]) else { return false }
                i = close + 1; j += 1
            default:
                guard j < s.count, p[i] == s[j] else { return false }
                i += 1; j += 1
            }
        }
        return j == s.count && (!End.isBeginning || end.accepts(i))
    }

    /// Whether some key below the folder `folder` (`folder/…`) could match: whether a listing
    /// for this pattern would descend into it. (A folder Derive cannot enter, a link to one, is
    /// then named instead of passed over in silence.)
    public func mayMatchBelow(_ folder: String) -> Bool {
        let text = Array((folder + "/").unicodeScalars)
        return alternatives.contains { p in Glob.match(p, 0, text, 0, SomePatternLeft(count: p.count)) }
    }

    /// Whether every key below the folder `folder` matches (`folder/**`, `**/folder/**`): an
    /// `exclude:` that takes the whole folder away. An alternative that spells a byte outside
    /// UTF-8 takes only a folder whose name is not UTF-8 (`notUTF8`), as `matches` takes no key.
    public func matchesEverythingBelow(_ folder: String, notUTF8: Bool = false) -> Bool {
        let text = Array((folder + "/").unicodeScalars)
        return alternatives.indices.contains { i in
            (notUTF8 || !spellsBytes[i]) && Glob.match(alternatives[i], 0, text, 0, RestTakesAnyKey(pattern: alternatives[i]))
        }
    }

    /// What the text given to `match` is: a whole key, or the beginning of keys, where what is
    /// left of the pattern when the text ends is judged.
    protocol TextEnd {
        /// `false`: the text is a whole key. `true`: it is the beginning of keys, and where it
        /// ends, `accepts` decides.
        static var isBeginning: Bool { get }
        /// With the text used up and the pattern at `i` (or a `*` or `**` at `i` going on into
        /// the rest of the key): whether keys that go on from here are what is asked for.
        func accepts(_ i: Int) -> Bool
    }

    /// The text is a whole key: the pattern must end where it ends.
    struct WholeKey: TextEnd {
        static var isBeginning: Bool { false }
        func accepts(_ i: Int) -> Bool { false }   // never asked: a key has no rest
    }

    /// The text is a folder and its `/`: some key below it may match while some pattern is left.
    struct SomePatternLeft: TextEnd {
        let count: Int
        static var isBeginning: Bool { true }
        func accepts(_ i: Int) -> Bool { i < count }
    }

    /// The text is a folder and its `/`: every key below it matches when what is left is `**`
    /// or `**/*`.
    struct RestTakesAnyKey: TextEnd {
        let pattern: [Unicode.Scalar]
        static var isBeginning: Bool { true }
        func accepts(_ i: Int) -> Bool {
            let rest = pattern[i...]
            return rest.elementsEqual(["*", "*"] as [Unicode.Scalar]) || rest.elementsEqual(["*", "*", "/", "*"] as [Unicode.Scalar])
        }
    }

    /// Whether some key could match both patterns (an over-approximation: classes count as any
    /// scalar but `/`): used to decide whether two rules can see the same source.
    public func mayOverlap(_ other: Glob) -> Bool {
        loose.contains { a in other.loose.contains { b in a.intersects(b) } }
    }

}

public struct GlobError: Error, Sendable { public var message: String }
