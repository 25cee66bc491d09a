import Testing
import TestSupport
@testable import Manifest

/// `Glob.matches` (a whole key) and `mayMatchBelow` / `matchesEverythingBelow` (a folder, the
/// beginning of keys) are two uses of one matcher. These run both on generated patterns and keys
/// (random ones and the edges: `**` at the start, middle and end, `*` next to `/`, classes, empty
/// folder names, dots, non-ASCII scalars, long keys) and pin how they relate:
/// - a key that matches has every folder it is in descended into (`mayMatchBelow`), else a
///   listing would pass over keys the pattern takes;
/// - a folder said to be wholly matched (`matchesEverythingBelow`, an `exclude:` that skips the
///   folder) has every key below it matching, else a skipped folder would hide sources;
/// and check `matches` and `mayMatchBelow` against a plain state-set matcher written here.
@Suite(.ownThreads) struct GlobPrefixEquivalenceTests {
    /// The pattern's pieces, as the matcher reads them after braces are expanded.
    enum Token: Equatable {
        case scalar(Unicode.Scalar), one, set([Unicode.Scalar]), star, anyFolders, anyFoldersSlash
    }

    static func tokens(_ p: [Unicode.Scalar]) -> [Token] {
        var tokens: [Token] = [], i = 0
        while i < p.count {
            switch p[i] {
            case "*" where i + 2 < p.count && p[i + 1] == "*" && p[i + 2] == "/": tokens.append(.anyFoldersSlash); i += 3
            case "*" where i + 1 < p.count && p[i + 1] == "*": tokens.append(.anyFolders); i += 2
            case "*": tokens.append(.star); i += 1
            case "?": tokens.append(.one); i += 1
            case "[":
                let close = p[(i + 1)...].firstIndex(of: "]")!
                tokens.append(.set(Array(p[(i + 1)..<close]))); i = close + 1
            default: tokens.append(.scalar(p[i])); i += 1
            }
        }
        return tokens
    }

    /// Where a run of the pattern can be: before the token `at` (past the last one: a whole
    /// match), or `inside` the `**/` at `at`, having read some of the folders it stands for.
    struct State: Hashable { let at: Int, inside: Bool }

    /// Where a run of the pattern can be after reading `text`. `*` stays on any scalar but `/`,
    /// `**` on any; `**/` goes inside on any scalar, stays inside on any, and moves on after a
    /// `/`. `*`, `**` and (from before it, not from inside) `**/` may also match nothing.
    static func reachable(_ tokens: [Token], after text: [Unicode.Scalar]) -> Set<State> {
        func closed(_ states: Set<State>) -> Set<State> {
            var states = states, added = true
            while added {
                added = false
                for state in states where !state.inside && state.at < tokens.count {
                    switch tokens[state.at] {
                    case .star, .anyFolders, .anyFoldersSlash: if states.insert(State(at: state.at + 1, inside: false)).inserted { added = true }
                    default: break
                    }
                }
            }
            return states
        }
        var states = closed([State(at: 0, inside: false)])
        for c in text {
            var next: Set<State> = []
            func go(_ at: Int, inside: Bool = false) { next.insert(State(at: at, inside: inside)) }
            for state in states where state.at < tokens.count {
                let t = state.at
                if state.inside {   // inside `**/`
                    go(t, inside: true)
                    if c == "/" { go(t + 1) }
                    continue
                }
                switch tokens[t] {
                case .scalar(let s): if s == c { go(t + 1) }
                case .one: if c != "/" { go(t + 1) }
                case .set(let set): if c != "/", Glob.classAdmits(set, c) { go(t + 1) }
                case .star: if c != "/" { go(t) }
                case .anyFolders: go(t)
                case .anyFoldersSlash:
                    go(t, inside: true)
                    if c == "/" { go(t + 1) }
                }
            }
            states = closed(next)
        }
        return states
    }

    // MARK: generated patterns and keys

    /// SplitMix64: the same cases on every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let acute = "\u{301}"
    static let patternPieces = ["a", "b", "ab", ".", "..", ".jpg", "é", "e\(acute)", "日本", "/", "//", "*", "**", "**/", "/**",
                                "/**/", "?", "[ab]", "[!a]", "[a-c]", "[é日]", "[^.]", "{a,b}", "{x/,}", "*.jpg", "x"]
    static let keyPieces = ["a", "b", "ab", ".", "..", ".jpg", "é", "e\(acute)", "日本", "/", "/", "/", "x", "jpg", "c", ""]
    static let edgePatterns = ["", "/", "**", "**/", "/**", "**/*", "*", "*/*", "a/**", "**/a", "a/**/b", "a*/**", "**/**", "***",
                               "a/***", "x/**/**", "**/x/**", "**/*/**", "?/**", "[!/]*/**", "a//b", "//**", ".*/**", "**/.*",
                               "日本/**/*.jpg", "e\(acute)/*", "*/**/*", "**/a/**/b/**", "a/*/", "a/**/", "{a,b/**}/c"]
    static let longKeys = [String(repeating: "ab/", count: 60) + "x.jpg", String(repeating: "a", count: 400),
                           String(repeating: "日本/", count: 30) + "e\(acute).jpg", String(repeating: "/", count: 50)]

    static func randomKey(_ g: inout Seeded) -> String {
        (0..<Int.random(in: 0...8, using: &g)).map { _ in keyPieces.randomElement(using: &g)! }.joined()
    }

    /// A key the pattern's alternative should take: each wildcard replaced by what it may stand for.
    static func instance(of tokens: [Token], _ g: inout Seeded) -> String {
        var key = ""
        func segment() -> String { (0..<Int.random(in: 0...3, using: &g)).map { _ in ["a", "é", ".", "x", "e\(acute)"].randomElement(using: &g)! }.joined() }
        for token in tokens {
            switch token {
            case .scalar(let s): key.unicodeScalars.append(s)
            case .one: key += ["a", "é", "."].randomElement(using: &g)!
            case .set(let set):
                if let c = (["a", "b", "c", ".", "é", "日", "z"] as [Unicode.Scalar]).shuffled(using: &g).first(where: { Glob.classAdmits(set, $0) }) {
                    key.unicodeScalars.append(c)
                }
            case .star: key += segment()
            case .anyFolders: key += (0..<Int.random(in: 0...3, using: &g)).map { _ in segment() }.joined(separator: "/")
            case .anyFoldersSlash: key += (0..<Int.random(in: 0...2, using: &g)).map { _ in segment() + "/" }.joined()
            }
        }
        return key
    }

    static func cases() throws -> [(glob: Glob, keys: [String])] {
        var g = Seeded(state: 18)
        var patterns = edgePatterns
        while patterns.count < edgePatterns.count + 1000 {
            let pattern = (0..<Int.random(in: 1...6, using: &g)).map { _ in patternPieces.randomElement(using: &g)! }.joined()
            // Backtracking costs about (key length)^(wildcards): at most four keeps the test quick.
            if try wildcards(Glob(pattern)) <= 4 { patterns.append(pattern) }
        }
        return try patterns.map { pattern in
            let glob = try Glob(pattern)
            var keys = (0..<24).map { _ in randomKey(&g) }
            if wildcards(glob) <= 1 || edgePatterns.contains(pattern) { keys += longKeys }
            for alternative in glob.alternatives {
                for _ in 0..<4 { keys.append(instance(of: tokens(alternative), &g)) }
            }
            return (glob, keys)
        }
    }

    static func wildcards(_ glob: Glob) -> Int {
        glob.alternatives.map { tokens($0).filter { [.star, .anyFolders, .anyFoldersSlash].contains($0) }.count }.max() ?? 0
    }

    /// The folders `key` is below: every beginning of it that ends just before a `/` that is
    /// not the key's last scalar (`x/` is no key below `x`, a listing never gives it).
    static func folders(of key: String) -> [String] {
        let scalars = Array(key.unicodeScalars)
        return scalars.indices.filter { scalars[$0] == "/" && $0 < scalars.count - 1 }.map { end in
            var folder = ""
            folder.unicodeScalars.append(contentsOf: scalars[..<end])
            return folder
        }
    }

    // MARK: the relations

    @Test func aKeyThatMatchesHasEveryFolderItIsInDescendedInto() throws {
        var matched = 0, checked = 0
        for (glob, keys) in try Self.cases() {
            for key in keys where glob.matches(key) {
                matched += 1
                for folder in Self.folders(of: key) {
                    checked += 1
                    #expect(glob.mayMatchBelow(folder), "'\(glob)' matches '\(key)' but would not descend into '\(folder)'")
                }
            }
        }
        // Not vacuous: the generated keys match often, below folders.
        #expect(matched > 5_000 && checked > 5_000, "\(matched) keys matched, \(checked) folders checked")
    }

    @Test func aFolderWhollyMatchedHasEveryKeyBelowItMatching() throws {
        var g = Seeded(state: 27)
        var wholly = 0
        for (glob, keys) in try Self.cases() {
            var folders = Set(keys.flatMap(Self.folders(of:)))
            folders.insert("a")
            for folder in folders where glob.matchesEverythingBelow(folder) {
                wholly += 1
                let below = ["", "x", "a/b", "/", ".", "é/e\(Self.acute)", "//", "日本/**"] + (0..<8).map { _ in Self.randomKey(&g) }
                for rest in below {
                    #expect(glob.matches(folder + "/" + rest), "'\(glob)' takes everything below '\(folder)' but not '\(folder)/\(rest)'")
                }
            }
        }
        #expect(wholly > 200, "\(wholly) folders wholly matched")
    }

    @Test func matchesAndMayMatchBelowAgreeWithTheStateSetMatcher() throws {
        for (glob, keys) in try Self.cases() {
            let alternatives = glob.alternatives.map(Self.tokens)
            for key in keys {
                let text = Array(key.unicodeScalars)
                let whole = alternatives.contains { Self.reachable($0, after: text).contains(State(at: $0.count, inside: false)) }
                #expect(glob.matches(key) == whole, "'\(glob)' on '\(key)'")
                for folder in Self.folders(of: key) {
                    let below = Array((folder + "/").unicodeScalars)
                    let descends = alternatives.contains { t in Self.reachable(t, after: below).contains { $0.at < t.count } }
                    #expect(glob.mayMatchBelow(folder) == descends, "'\(glob)' below '\(folder)'")
                }
            }
        }
    }
}
