import Confinement
import Foundation
import ProcessLanguage

/// What `Planner.narrowedNameTaken` answered one session's plans: whether another manifest
/// records or writes a name narrowing would give (`a-800.webp` for `w=960` of an 800 px source).
/// Those answers decide names (renamed, or planned as written) from files no witness line
/// covers: the neighbour manifests, their locks and states. The witness keeps them (`?` lines)
/// and its check asks each question again; any other answer takes the full plan (attack 46c's
/// t11: the neighbour gave `a-800.webp` up, and `a-960.webp`, kept as written because of it, was
/// called up to date by every no-op until its source's bytes changed).
public final class NarrowedNameAnswers: @unchecked Sendable {
    private let lock = NSLock()
    /// Witness line → answer, the latest answer to each question.
    private var answers: [String: Bool] = [:]

    public init() {}

    /// Notes one answer (the question's latest answer stands).
    public func note(_ name: NarrowedName, taken: Bool) {
        let question = Self.question(name)
        lock.withLock { answers[question] = taken }
    }

    /// The witness lines, sorted: `?` then a JSON array of the answer (`"1"` taken, `"0"` free)
    /// and the name's fields.
    public var lines: [String] {
        lock.withLock { answers.map { Self.line(question: $0.key, taken: $0.value) }.sorted() }
    }

    /// The question's part of a line: the name's fields as JSON strings, comma-separated.
    static func question(_ name: NarrowedName) -> String {
        [name.output, name.file, name.folder, name.key, name.sourcePath, name.sourceFormat].map(JSONText.string).joined(separator: ",")
    }

    static func line(question: String, taken: Bool) -> String {
        "?[" + (taken ? "\"1\"" : "\"0\"") + "," + question + "]"
    }

    /// A witness line read back (without its `?`); nil when it is not one this writes.
    static func parse(_ line: ArraySlice<UInt8>) -> (name: NarrowedName, taken: Bool)? {
        guard let fields = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String], fields.count == 7,
              fields[0] == "1" || fields[0] == "0" else { return nil }
        return (NarrowedName(output: fields[1], file: fields[2], folder: fields[3], key: fields[4], sourcePath: fields[5], sourceFormat: fields[6]),
                fields[0] == "1")
    }

    /// Whether every question `lines` (as saved, with their `?`) recorded gets the same answer
    /// from `taken` now; false when there are questions and nothing to ask them of.
    static func hold(_ lines: [String], taken: (@Sendable (NarrowedName) -> Bool)?) -> Bool {
        guard !lines.isEmpty else { return true }
        guard let taken else { return false }
        for line in lines {
            guard let (name, answer) = parse(Array(line.utf8).dropFirst()), taken(name) == answer else { return false }
        }
        return true
    }
}
