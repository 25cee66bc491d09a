import Foundation
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
        let target = URL(fileURLWithPath: path)
        let folder = target.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(target.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        do {
            try bytes.write(to: temporary)
            if rename(temporary.path, target.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temporary)
                throw CLIError("cannot write \(path): \(reason)")
            }
        } catch let error as CLIError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw CLIError("cannot write \(path): \(error.localizedDescription)")
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
