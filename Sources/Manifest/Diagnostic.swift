import Confinement

/// A problem found in a manifest, compiler style:
/// `Manifests/site.yaml:14:9: error: unknown action 'rezise' in style 'thumb' (did you mean 'resize'?)`.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible, Codable {
    public enum Severity: String, Hashable, Sendable, Codable { case error, warning }

    public var severity: Severity
    public var file: String
    /// 1-based line and column.
    public var line: Int
    public var column: Int
    public var message: String
    /// A suggestion, e.g. "did you mean 'resize'?".
    public var hint: String?

    public init(_ severity: Severity, _ location: SourceLocation, _ message: String, hint: String? = nil) {
        self.severity = severity
        self.file = location.file
        self.line = location.line
        self.column = location.column
        self.message = message
        self.hint = hint
    }

    /// One line on a terminal: the file, message and hint with their control characters escaped
    /// (`TerminalText`), whatever name a message quotes (an include's, a bucket's `path:`, a
    /// `from:` pattern: attack 42c's L5), so ESC never reaches the terminal and a line feed
    /// never splits the line. JSON keeps the raw text.
    public var description: String {
        var text = "\(file):\(line):\(column): \(severity.rawValue): \(message)"
        if let hint { text += " (\(hint))" }
        return TerminalText.escaped(text)
    }
}

/// Where something was written: file and 1-based line and column.
public struct SourceLocation: Hashable, Sendable, Codable {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The same place moved `offset` characters to the right (into a scalar's text).
    public func advanced(by offset: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column + offset)
    }
}

/// Diagnostics gathered while loading, so validation reports every problem at once.
public struct Diagnostics: Sendable {
    public private(set) var all: [Diagnostic] = []

    public init() {}

    public mutating func error(_ location: SourceLocation, _ message: String, hint: String? = nil) {
        all.append(Diagnostic(.error, location, message, hint: hint))
    }

    public mutating func warning(_ location: SourceLocation, _ message: String, hint: String? = nil) {
        all.append(Diagnostic(.warning, location, message, hint: hint))
    }

    public mutating func append(_ diagnostic: Diagnostic) { all.append(diagnostic) }

    /// Rewrites the message of the diagnostic at `index` (a position in `all`).
    mutating func amend(_ index: Int, _ message: (String) -> String) {
        guard all.indices.contains(index) else { return }
        all[index].message = message(all[index].message)
    }

    public var errors: [Diagnostic] { all.filter { $0.severity == .error } }
    public var warnings: [Diagnostic] { all.filter { $0.severity == .warning } }
    public var hasErrors: Bool { all.contains { $0.severity == .error } }

    /// In file order, errors before warnings at the same place.
    public var sorted: [Diagnostic] {
        all.enumerated().sorted { a, b in
            let l = a.element, r = b.element
            if l.file != r.file { return l.file < r.file }
            if l.line != r.line { return l.line < r.line }
            if l.column != r.column { return l.column < r.column }
            return a.offset < b.offset
        }.map(\.element)
    }
}
