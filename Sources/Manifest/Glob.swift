/// Glob patterns over object keys: `**` (any number of folders), `*` (within one folder), `?`
/// (one character), `{a,b}` (alternatives), `[abc]` / `[a-z]` / `[!a]` (character classes).
public struct Glob: Hashable, Sendable, CustomStringConvertible {
    public let pattern: String
    /// The pattern with braces expanded into its alternatives.
    let alternatives: [[Character]]

    public init(_ pattern: String) throws {
        self.pattern = pattern
        self.alternatives = try Glob.expandBraces(Array(pattern)).map { $0 }
        for alternative in alternatives { try Glob.checkClasses(alternative) }
    }

    public var description: String { pattern }

    public func matches(_ key: String) -> Bool {
        let text = Array(key)
        return alternatives.contains { Glob.match(Array($0[...]), 0, text, 0) }
    }

    static func expandBraces(_ pattern: [Character]) throws -> [[Character]] {
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
        guard let close else { throw GlobError(message: "unclosed '{' in pattern '\(String(pattern))'") }
        let head = Array(pattern[..<open]), tail = Array(pattern[(close + 1)...])
        var bounds = [open] + commas + [close]
        var results: [[Character]] = []
        for index in 0..<(bounds.count - 1) {
            let option = Array(pattern[(bounds[index] + 1)..<bounds[index + 1]])
            for expanded in try expandBraces(head + option + tail) { results.append(expanded) }
            if results.count > 256 { throw GlobError(message: "pattern '\(String(pattern))' expands to too many alternatives") }
        }
        bounds.removeAll()
        return results
    }

    static func checkClasses(_ pattern: [Character]) throws {
        var index = 0
        while index < pattern.count {
            if pattern[index] == "[" {
                guard let close = pattern[(index + 1)...].firstIndex(of: "]"), close > index + 1 else {
                    throw GlobError(message: "unclosed '[' in pattern '\(String(pattern))'")
                }
                index = close
            }
            index += 1
        }
    }

    /// Backtracking match; `**` crosses `/`, `*` and `?` do not. `**/` also matches no folder.
    static func match(_ p: [Character], _ i: Int, _ s: [Character], _ j: Int) -> Bool {
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
                var set = Array(p[(i + 1)..<close])
                let negate = set.first == "!" || set.first == "^"
                if negate { set.removeFirst() }
                var found = false
                var k = 0
                while k < set.count {
                    if k + 2 < set.count, set[k + 1] == "-" {
                        if set[k] <= s[j], s[j] <= set[k + 2] { found = true }
                        k += 3
                    } else {
                        if set[k] == s[j] { found = true }
                        k += 1
                    }
                }
                guard found != negate else { return false }
                i = close + 1; j += 1
            default:
                guard j < s.count, p[i] == s[j] else { return false }
                i += 1; j += 1
            }
        }
        return j == s.count
    }

    /// Whether some key could match both patterns (wildcards treated as "any text"): used to
    /// decide whether two rules can see the same source.
    public func mayOverlap(_ other: Glob) -> Bool {
        for a in alternatives {
            for b in other.alternatives where Glob.intersects(Glob.loose(a), Glob.loose(b)) { return true }
        }
        return false
    }

    /// Wildcards and classes become "*" (any text), literals stay.
    static func loose(_ pattern: [Character]) -> [Character] {
        var out: [Character] = []
        var index = 0
        while index < pattern.count {
            let c = pattern[index]
            if c == "*" || c == "?" {
                if out.last != "*" { out.append("*") }
            } else if c == "[", let close = pattern[(index + 1)...].firstIndex(of: "]") {
                if out.last != "*" { out.append("*") }
                index = close
            } else {
                out.append(c)
            }
            index += 1
        }
        return out
    }

    /// Whether two patterns where `*` is any text (literals otherwise) share a string.
    static func intersects(_ a: [Character], _ b: [Character]) -> Bool {
        var memo: [Int: Bool] = [:]
        func go(_ i: Int, _ j: Int) -> Bool {
            let key = i * (b.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if i == a.count, j == b.count {
                result = true
            } else if i < a.count, a[i] == "*" {
                result = go(i + 1, j) || (j < b.count && go(i, j + 1))
            } else if j < b.count, b[j] == "*" {
                result = go(i, j + 1) || (i < a.count && go(i + 1, j))
            } else if i < a.count, j < b.count, a[i] == b[j] {
                result = go(i + 1, j + 1)
            } else {
                result = false
            }
            memo[key] = result
            return result
        }
        return go(0, 0)
    }
}

public struct GlobError: Error, Sendable { public var message: String }
