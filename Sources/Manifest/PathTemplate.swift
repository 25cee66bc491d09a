import Confinement

/// An output path template such as `img/{dir}/{name}.{style}.{ext}`.
///
/// Variables: `{key}` (the source key), `{dir}` (its folder, empty at the top), `{name}` (file
/// name without extension), `{ext}` (the output format's extension), `{style}` (the style name,
/// for `styles:` rules), the rule's matrix variables, and `{hash}` / `{hash:N}`: the first N
/// (default 10) hex digits of the output's SHA-256, known only once it is rendered.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Part: Sendable, Hashable {
        case literal(String)
        case variable(String)
    }

    public static let builtins = ["key", "dir", "name", "ext", "style", "hash"]

    /// `{hash}` gives this many hex digits; `{hash:N}` takes N from this range.
    public static let defaultHashLength = 10
    public static let hashLengths = 4...64

    public let text: String
    public let parts: [Part]
    /// How many hex digits `{hash}` stands for; nil when the template has none (at most one).
    public let hashLength: Int?
    /// `{hash}` or `{hash:N}` as written: how the name is shown before the output exists.
    public var hashPlaceholder: String {
        hashLength.map { $0 == Self.defaultHashLength && !text.contains("{hash:") ? "{hash}" : "{hash:\($0)}" } ?? ""
    }

    public var description: String { text }

    public struct Problem: Error, Sendable {
        public var offset: Int
        public var message: String
        public var hint: String?
    }

    /// Parses the template; `{` without `}` or an empty name is a problem at its offset.
    /// Offsets count Unicode scalars (what libyaml's columns count), and parsing works on scalars
    /// so a combining mark after `}` or `/` cannot hide it.
    public init(_ text: String) throws {
        self.text = text
        let scalars = Array(text.unicodeScalars)
        var parts: [Part] = []
        var literal = String.UnicodeScalarView()
        var hashLength: Int?
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "{" {
                guard let close = scalars[index...].firstIndex(of: "}") else {
                    throw Problem(offset: index, message: "'{' without a closing '}' in '\(text)'", hint: nil)
                }
                var name = ""
                name.unicodeScalars.append(contentsOf: scalars[(index + 1)..<close])
                if name == "hash" || name.hasPrefix("hash:") {
                    guard hashLength == nil else {
                        throw Problem(offset: index, message: "'{hash}' may appear only once in '\(text)'", hint: nil)
                    }
                    let digits = name.dropFirst("hash:".count)
                    let length = name == "hash" ? Self.defaultHashLength : (digits.allSatisfy { $0.isASCII && $0.isNumber } && digits.first != "0" ? Int(digits) : nil)
                    guard let length, Self.hashLengths.contains(length) else {
                        throw Problem(offset: index, message: "'{\(name)}': the hash length must be from \(Self.hashLengths.lowerBound) to \(Self.hashLengths.upperBound) hex digits, as in '{hash:8}'", hint: nil)
                    }
                    hashLength = length
                    name = "hash"
                }
                guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_" }) else {
                    throw Problem(offset: index, message: "'{\(name)}' is not a variable name", hint: nil)
                }
                if !literal.isEmpty { parts.append(.literal(String(literal))); literal = String.UnicodeScalarView() }
                parts.append(.variable(name))
                index = close + 1
            } else if scalar == "}" {
                throw Problem(offset: index, message: "'}' without an opening '{' in '\(text)'", hint: nil)
            } else {
                literal.append(scalar)
                index += 1
            }
        }
        if !literal.isEmpty { parts.append(.literal(String(literal))) }
        self.parts = parts
        self.hashLength = hashLength
    }

    public var variables: [String] {
        parts.compactMap { if case .variable(let name) = $0 { return name } else { return nil } }
    }

    /// Offset of variable `name` in the text (in scalars), for diagnostics.
    public func offset(of name: String) -> Int {
        let needle = Array((name == "hash" && hashLength != nil ? hashPlaceholder : "{\(name)}").unicodeScalars), scalars = Array(text.unicodeScalars)
        guard needle.count <= scalars.count else { return 0 }
        for start in 0...(scalars.count - needle.count) where scalars[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return 0
    }

    /// Problems that would let an output leave its bucket: absolute paths and `..` segments,
    /// judged on bytes (what the file system sees), not on grapheme clusters.
    public var escapeProblem: String? {
        let slash = UInt8(ascii: "/")
        if text.utf8.first == slash { return "the output path '\(text)' is absolute; write it relative to the bucket" }
        for part in parts {
            if case .literal(let literal) = part {
                let segments = Array(literal.utf8).split(separator: slash, omittingEmptySubsequences: false)
                if segments.contains(where: { $0.elementsEqual([0x2E, 0x2E]) }) {
                    return "the output path '\(text)' contains '..' and could leave its bucket"
                }
            }
        }
        if text.utf8.contains(UInt8(ascii: "\\")) { return "the output path '\(text)' contains '\\'; use '/'" }
        return nil
    }

    /// A folder (or the file) of the output path named `.derive` (whatever the placeholders give): Derive keeps
    /// build states in folders of that name, and serve answers nothing in or just below one, so
    /// the output would be built but never served (attack 48b's F10: `pub/x/.derive/{name}.jpg`
    /// validated, built, then answered 404). Nil when none is.
    public var stateFolderProblem: String? {
        guard hasWholePart(ProjectMarkers.stateFolderName) else { return nil }
        return "the output path '\(text)' has a part named '\(ProjectMarkers.stateFolderName)'; Derive keeps build states in folders named \(ProjectMarkers.stateFolderName), and serve answers nothing in them"
    }

    /// The output's file name ends in `.derive-tmp` in the template's own text: the names of
    /// Derive's temporary files (`.NAME.PID.N.derive-tmp`), which a build removes as a killed
    /// command's when one holds Derive's bytes for NAME (attack 56b's H5: another project's
    /// output of that shape in a shared folder was swept). Nil when it does not.
    public var temporaryNameProblem: String? {
        guard text.hasSuffix(ConfinedFolder.temporaryMarker) else { return nil }
        return "the output path '\(text)' ends in '\(ConfinedFolder.temporaryMarker)', as the temporary files Derive writes do (.NAME.PID.N.derive-tmp); a build takes such a file for one a killed command left"
    }

    /// A part of the output path that is `.` in the template's own text (`out/./{name}.webp`):
    /// every output key would then have a `.` part, which the build refuses for each output
    /// (`KeyPlaceProblem`), so validate refuses the rule where it is written (attack 48a's F6).
    /// Dots inside names (`{name}.{ext}`, `.well-known`) are no such part. Nil when none is.
    public var dotPartProblem: String? {
        guard hasWholePart(".") else { return nil }
        return "the output path '\(text)' has a part named '.'; every output's key would have it, and the build writes no such key"
    }

    /// Whether a part of the path, between slashes, is `name` in the template's own text: each
    /// placeholder rendered as a byte no name holds, so only fixed parts can match.
    func hasWholePart(_ name: String) -> Bool {
        let values = Dictionary(variables.map { ($0, "\u{1}") }, uniquingKeysWith: { a, _ in a })
        return render(values).utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            .contains { $0.elementsEqual(name.utf8) }
    }

    /// The path for concrete values; doubled slashes (from an empty `{dir}`) collapse and a
    /// leading slash is dropped (on bytes: a combining mark after `/` does not hide it).
    public func render(_ values: [String: String]) -> String {
        var path = ""
        for part in parts {
            switch part {
            case .literal(let literal): path += literal
            case .variable(let name): path += values[name] ?? ""
            }
        }
        let slash = UInt8(ascii: "/")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count)
        for byte in path.utf8 where !(byte == slash && (bytes.isEmpty || bytes.last == slash)) {
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Tokens with the given variables substituted and the others kept symbolic, adjacent
    /// literals merged: equal token lists mean "same path for the same source".
    func tokens(substituting values: [String: String]) -> [Part] {
        var tokens: [Part] = []
        func add(_ literal: String) {
            if case .literal(let previous)? = tokens.last {
                tokens[tokens.count - 1] = .literal(previous + literal)
            } else if !literal.isEmpty {
                tokens.append(.literal(literal))
            }
        }
        for part in parts {
            switch part {
            case .literal(let literal): add(literal)
            case .variable(let name):
                if let value = values[name] { add(value) } else { tokens.append(.variable(name)) }
            }
        }
        return tokens
    }
}
