import Foundation
import Manifest
import Planner
import ProcessLanguage

/// Writing results and reporting errors the same way in every command.
enum Output {
    /// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
    /// failed or interrupted run never leaves a half-written file. `-` writes to standard output.
    static func write(_ bytes: Data, to path: String) throws {
        if path == "-" {
            FileHandle.standardOutput.write(bytes)
            return
        }
        do {
            try RealDisk().writeAtomically(bytes, to: path)
        } catch {
            throw CLIError("\(error)")
        }
    }

    static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProcessError(.noSuchKey, ec: "0040-00000024", "\(path): no such file, or it cannot be read")
        }
        return data
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data(("derive: error: " + message + "\n").utf8))
    }

    /// Diagnostics, one compiler-style line each, in file order.
    static func printDiagnostics(_ diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics { FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8)) }
    }

    static func printWarning(_ message: String) {
        FileHandle.standardError.write(Data(("derive: warning: " + message + "\n").utf8))
    }

    /// `code`, EC and message on one line, with where it happened.
    static func describe(_ error: ProcessError, input: String) -> String {
        var text = "\(input): \(error.code.rawValue)"
        if let ec = error.ec { text += " EC \(ec)" }
        text += ": " + error.message
        if let hint = error.hint { text += " (\(hint))" }
        return text
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
