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

    public init(_ pattern: String) throws {
        self.pattern = pattern
        self.alternatives = try Glob.expandBraces(Array(pattern.unicodeScalars))
        for alternative in alternatives { try Glob.checkClasses(alternative) }
        self.loose = alternatives.map(LoosePattern.init(glob:))
    }

    public var description: String { pattern }

    // Hashable by the pattern's scalars, not by String's canonical equivalence.
    public static func == (lhs: Glob, rhs: Glob) -> Bool { lhs.pattern.unicodeScalars.elementsEqual(rhs.pattern.unicodeScalars) }
    public func hash(into hasher: inout Hasher) { for scalar in pattern.unicodeScalars { hasher.combine(scalar.value) } }

    public func matches(_ key: String) -> Bool {
        let text = Array(key.unicodeScalars)
        return alternatives.contains { Glob.match($0, 0, text, 0) }
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

    /// Backtracking match; `**` crosses `/`, `*` and `?` do not. `**/` also matches no folder.
    static func match(_ p: [Unicode.Scalar], _ i: Int, _ s: [Unicode.Scalar], _ j: Int) -> Bool {
        var i = i, j = j
        while i < p.count {
            switch p[i] {
            case "*":
                if i + 1 < p.count, p[i + 1] == "*" {
                    var next = i + 2
                    if next < p.count, p[next] == "/" {
                        // "**/": zero folders, or any prefix ending in "/".
                        next += 1
                        if match(p, next, s, j) { return true }
                        var k = j
                        while k < s.count {
                            if s[k] == "/", match(p, next, s, k + 1) { return true }
                            k += 1
                        }
                        return false
                    }
                    var k = j
                    while k <= s.count {
                        if match(p, next, s, k) { return true }
                        k += 1
                    }
                    return false
                }
                var k = j
                while k <= s.count {
                    if match(p, i + 1, s, k) { return true }
                    if k < s.count, s[k] == "/" { break }
                    k += 1
                }
                return false
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
        return j == s.count
    }

    /// Whether some key below the folder `folder` (`folder/…`) could match: whether a listing
    /// for this pattern would descend into it. (A folder Derive cannot enter, a link to one, is
    /// then named instead of passed over in silence.)
    public func mayMatchBelow(_ folder: String) -> Bool {
        let text = Array((folder + "/").unicodeScalars)
        return alternatives.contains { p in Glob.prefixMatch(p, 0, text, 0) { i in i < p.count } }
    }

    /// Whether every key below the folder `folder` matches (`folder/**`, `**/folder/**`): an
    /// `exclude:` that takes the whole folder away.
    public func matchesEverythingBelow(_ folder: String) -> Bool {
        let text = Array((folder + "/").unicodeScalars)
        return alternatives.contains { p in
            Glob.prefixMatch(p, 0, text, 0) { i in
                let rest = p[i...]
                return rest.elementsEqual(["*", "*"] as [Unicode.Scalar]) || rest.elementsEqual(["*", "*", "/", "*"] as [Unicode.Scalar])
            }
        }
    }

    /// Matches `s` as the beginning of a key: when all of `s` is consumed, `accept` decides on
    /// the position of the pattern left for the rest of the key (`**` and `*` may also go on
    /// into it). The same rules as `match`: `**` crosses `/`, `*`, `?` and classes do not.
    static func prefixMatch(_ p: [Unicode.Scalar], _ i: Int, _ s: [Unicode.Scalar], _ j: Int, _ accept: (Int) -> Bool) -> Bool {
        if j == s.count { return accept(i) }
        guard i < p.count else { return false }
        switch p[i] {
        case "*":
            if i + 1 < p.count, p[i + 1] == "*" {
                // `**` takes any part of the rest of `s` (and may go on past it).
                var next = i + 2
                if next < p.count, p[next] == "/" {
                    next += 1
                    if prefixMatch(p, next, s, j, accept) { return true }
                    var k = j
                    while k < s.count {
                        if s[k] == "/", prefixMatch(p, next, s, k + 1, accept) { return true }
                        k += 1
                    }
                    return accept(i)
                }
                var k = j
                while k < s.count {
                    if prefixMatch(p, next, s, k, accept) { return true }
                    k += 1
                }
                return accept(i) || accept(next)
            }
            var k = j
            while k < s.count {
                if prefixMatch(p, i + 1, s, k, accept) { return true }
                if s[k] == "/" { return false }
                k += 1
            }
            return accept(i) || accept(i + 1)
        case "?":
            guard s[j] != "/" else { return false }
            return prefixMatch(p, i + 1, s, j + 1, accept)
        case "[":
            guard s[j] != "/", let close = p[(i + 1)...].firstIndex(of: "]"), classAdmits(Array(p[(i + 1)..<close]), s[j]) else { return false }
            return prefixMatch(p, close + 1, s, j + 1, accept)
        default:
            guard p[i] == s[j] else { return false }
            return prefixMatch(p, i + 1, s, j + 1, accept)
        }
    }

    /// Whether some key could match both patterns (an over-approximation: classes count as any
    /// scalar but `/`): used to decide whether two rules can see the same source.
    public func mayOverlap(_ other: Glob) -> Bool {
        loose.contains { a in other.loose.contains { b in a.intersects(b) } }
    }

}

public struct GlobError: Error, Sendable { public var message: String }
