/// A pattern over Unicode scalars that is a superset of what a glob or an output template can
/// give: each item is one scalar of a class, or a run of them. Two loose patterns that do not
/// intersect prove that no key matches both; validation uses it to keep outputs away from
/// sources and control files.
struct LoosePattern: Hashable, Sendable {
    enum Class: Hashable, Sendable {
        case scalar(Unicode.Scalar)
        /// Any scalar but `/`.
        case segment
        /// Any scalar.
        case any
        /// A lowercase hex digit (`{hash:N}` gives N of them).
        case hexDigit
        /// The first scalar of a file or folder name the source listing keeps (not `.`, not `/`).
        case listedStart
        /// A scalar a style name may hold (ASCII letters, digits, `_`, `-`, `.`: `StyleName`).
        case styleName
        /// A scalar a matrix value may hold (anything but `/` and `,`: the manifest loader's rule).
        case matrixValue
        /// A glob's class, as written between `[` and `]` (never `/`).
        case bracket([Unicode.Scalar])

        func overlaps(_ other: Class) -> Bool {
            switch (self, other) {
            case (.any, _), (_, .any): return true
            case (.scalar(let a), .scalar(let b)): return a == b
            case (.scalar(let c), let wide), (let wide, .scalar(let c)): return wide.admits(c)
            default: return true   // the wide classes share the hex digits
            }
        }

        /// Whether `c` is one of this class's scalars (not for `.scalar`: equality).
        func admits(_ c: Unicode.Scalar) -> Bool {
            switch self {
            case .any: return true
            case .segment: return c != "/"
            case .hexDigit: return ("0"..."9").contains(c) || ("a"..."f").contains(c)
            case .listedStart: return c != "/" && sourceListingKeeps(String(c))
            case .styleName: return c.isASCII && (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "_-.".unicodeScalars.contains(c))
            case .matrixValue: return c != "/" && c != ","
            case .bracket(let set): return c != "/" && Glob.classAdmits(set, c)
            case .scalar(let s): return s == c
            }
        }
    }

    enum Item: Hashable, Sendable {
        case one(Class)
        /// Zero or more scalars of the class.
        case run(Class)
    }

    var items: [Item]

    init(_ items: [Item]) { self.items = items }

    static func literal(_ text: String) -> [Item] { text.unicodeScalars.map { .one(.scalar($0)) } }

    /// One brace-free glob alternative: `*` is a run within a folder, `**` (and `**/`, which may
    /// stand for no folder at all) any run, `?` and classes one scalar other than `/`.
    init(glob pattern: [Unicode.Scalar]) {
        var items: [Item] = []
        var index = 0
        while index < pattern.count {
            let c = pattern[index]
            if c == "*" {
                if index + 1 < pattern.count, pattern[index + 1] == "*" {
                    items.append(.run(.any))
                    index += 2
                    if index < pattern.count, pattern[index] == "/" { index += 1 }
                    continue
                }
                items.append(.run(.segment))
            } else if c == "?" {
                items.append(.one(.segment))
            } else if c == "[", let close = pattern[(index + 1)...].firstIndex(of: "]") {
                items.append(.one(.bracket(Array(pattern[(index + 1)..<close]))))
                index = close
            } else {
                items.append(.one(.scalar(c)))
            }
            index += 1
        }
        self.items = items
    }

    /// Whether some string matches both (reachability in the product of the two automata).
    func intersects(_ other: LoosePattern) -> Bool {
        let a = items, b = other.items
        // Literal heads and tails must agree: most pairs of unrelated patterns fail here cheaply.
        let shorter = min(a.count, b.count)
        var k = 0
        while k < shorter, case .one(.scalar(let p)) = a[k], case .one(.scalar(let q)) = b[k] {
            if p != q { return false }
            k += 1
        }
        k = 1
        while k <= shorter, case .one(.scalar(let p)) = a[a.count - k], case .one(.scalar(let q)) = b[b.count - k] {
            if p != q { return false }
            k += 1
        }
        var seen = [Bool](repeating: false, count: (a.count + 1) * (b.count + 1))
        var pending = [(0, 0)]
        while let (i, j) = pending.popLast() {
            if i == a.count, j == b.count { return true }
            let state = i * (b.count + 1) + j
            if seen[state] { continue }
            seen[state] = true
            if i < a.count, case .run = a[i] { pending.append((i + 1, j)) }
            if j < b.count, case .run = b[j] { pending.append((i, j + 1)) }
            guard i < a.count, j < b.count else { continue }
            switch (a[i], b[j]) {
            case (.one(let x), .one(let y)) where x.overlaps(y): pending.append((i + 1, j + 1))
            case (.run(let x), .one(let y)) where x.overlaps(y): pending.append((i, j + 1))
            case (.one(let x), .run(let y)) where x.overlaps(y): pending.append((i + 1, j))
            default: break
            }
        }
        return false
    }

    /// Whether `key` matches.
    func matches(_ key: String) -> Bool {
        intersects(LoosePattern(LoosePattern.literal(key)))
    }

    /// This pattern with each run of hex digits (a `{hash:N}` slot) bound to the first digits of
    /// `digest`: the only name Derive writes for an output with those bytes.
    func binding(hash digest: String) -> LoosePattern {
        let digits = Array(digest.unicodeScalars)
        var result: [Item] = []
        var position = 0
        for item in items {
            guard item == .one(.hexDigit) else { position = 0; result.append(item); continue }
            result.append(position < digits.count ? .one(.scalar(digits[position])) : item)
            position += 1
        }
        return LoosePattern(result)
    }

    /// This pattern below `folder` (a key prefix such as `sub`): `sub/` + items.
    func prefixed(by folder: String) -> LoosePattern {
        folder.isEmpty ? self : LoosePattern(LoosePattern.literal(folder + "/") + items)
    }
}
