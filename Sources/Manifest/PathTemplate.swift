/// An output path template such as `img/{dir}/{name}.{style}.{ext}`.
///
/// Variables: `{key}` (the source key), `{dir}` (its folder, empty at the top), `{name}` (file
/// name without extension), `{ext}` (the output format's extension), `{style}` (the style name,
/// for `styles:` rules) and the rule's matrix variables.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Part: Sendable, Hashable {
        case literal(String)
        case variable(String)
    }

    public static let builtins = ["key", "dir", "name", "ext", "style"]

    public let text: String
    public let parts: [Part]

    public var description: String { text }

    public struct Problem: Error, Sendable {
        public var offset: Int
        public var message: String
        public var hint: String?
    }

    /// Parses the template; `{` without `}` or an empty name is a problem at its offset.
    public init(_ text: String) throws {
        self.text = text
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "{" {
                guard let close = text[index...].firstIndex(of: "}") else {
                    throw Problem(offset: text.distance(from: text.startIndex, to: index), message: "'{' without a closing '}' in '\(text)'", hint: nil)
                }
                let name = String(text[text.index(after: index)..<close])
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw Problem(offset: text.distance(from: text.startIndex, to: index), message: "'{\(name)}' is not a variable name", hint: nil)
                }
                if !literal.isEmpty { parts.append(.literal(literal)); literal = "" }
                parts.append(.variable(name))
                index = text.index(after: close)
            } else if character == "}" {
                throw Problem(offset: text.distance(from: text.startIndex, to: index), message: "'}' without an opening '{' in '\(text)'", hint: nil)
            } else {
                literal.append(character)
                index = text.index(after: index)
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    public var variables: [String] {
        parts.compactMap { if case .variable(let name) = $0 { return name } else { return nil } }
    }

    /// Offset of variable `name` in the text, for diagnostics.
    public func offset(of name: String) -> Int {
        guard let range = text.range(of: "{\(name)}") else { return 0 }
        return text.distance(from: text.startIndex, to: range.lowerBound)
    }

    /// Problems that would let an output leave its bucket: absolute paths and `..` segments.
    public var escapeProblem: String? {
        if text.hasPrefix("/") { return "the output path '\(text)' is absolute; write it relative to the bucket" }
        for part in parts {
            if case .literal(let literal) = part {
                let segments = literal.split(separator: "/", omittingEmptySubsequences: false)
                if segments.contains(where: { $0 == ".." }) {
                    return "the output path '\(text)' contains '..' and could leave its bucket"
                }
            }
        }
        if text.contains("\\") { return "the output path '\(text)' contains '\\'; use '/'" }
        return nil
    }

    /// The path for concrete values; doubled slashes (from an empty `{dir}`) collapse and a
    /// leading slash is dropped.
    public func render(_ values: [String: String]) -> String {
        var path = ""
        for part in parts {
            switch part {
            case .literal(let literal): path += literal
            case .variable(let name): path += values[name] ?? ""
            }
        }
        while path.contains("//") { path = path.replacingOccurrences(of: "//", with: "/") }
        while path.hasPrefix("/") { path.removeFirst() }
        return path
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
