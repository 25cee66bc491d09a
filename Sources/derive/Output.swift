import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ImagingCore
import Manifest
import Planner
import ProcessLanguage

/// Writing results and reporting errors the same way in every command.
enum Output {
    /// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
    /// failed or interrupted run never leaves a half-written file. `-` writes to standard output.
    /// `replacing`: false writes only a new file (an existing one at the moment of the move is kept).
    static func write(_ bytes: Data, to path: String, replacing: Bool = true) throws {
        if path == "-" {
            try writeStandardOutput(bytes)
            return
        }
        try checkReplaceable(path)
        do {
            try RealDisk().writeAtomically(bytes, to: path, replacing: replacing)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// `path`, named by `option`, resolved once by the file system (`OptionPath`): the one path
    /// both checked and written. A `..` that reads otherwise as text than on disk is refused.
    static func resolvedOption(_ path: String?, _ option: String) throws -> String? {
        guard let path else { return nil }
        do { return try OptionPath.resolve(path, option: option) } catch { throw CLIError("\(error)") }
    }

    /// Only a regular file (or nothing) at `path` is replaced: the rename would put a file in
    /// place of a FIFO, a device (`-o /dev/null` as root) or a symbolic link.
    static func checkReplaceable(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG else { return }
        let kinds: [mode_t: String] = [S_IFDIR: "a folder", S_IFLNK: "a symbolic link", S_IFIFO: "a FIFO", S_IFCHR: "a character device",
                                       S_IFBLK: "a block device", S_IFSOCK: "a socket"]
        throw CLIError("\(path) is not a regular file (\(kinds[info.st_mode & S_IFMT] ?? "not a file")); derive writes its output only to a new or regular file, which it replaces: remove it or choose another path (for standard output, use -o -)")
    }

    /// Writes all of `bytes` to standard output; a failed write (a full disk, a closed descriptor)
    /// is an error with the reason, never a crash.
    static func writeStandardOutput(_ bytes: Data) throws {
        if let error = writeAll(bytes, to: 1) {
            throw CLIError("cannot write standard output: \(String(cString: strerror(error)))")
        }
    }

    /// Writes to standard error, ignoring failures (there is nowhere left to report them).
    static func writeStandardError(_ text: String) {
        _ = writeAll(Data(text.utf8), to: 2)
    }

    /// Writes every byte to `descriptor`, retrying interrupted writes; the errno of a failure.
    private static func writeAll(_ bytes: Data, to descriptor: Int32) -> Int32? {
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int32? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
    }

    /// The source file at `path`, refused over `limits.maxBytes` from its size before any byte is
    /// read (a 600 MB file costs nothing), and never read past the limit.
    static func read(_ path: String, limits: Limits) throws -> Data {
        try read(path, inputs: RenderInputs(Pipeline(actions: []), resolver: NoObjects(), limits: limits))
    }

    /// The source file at `path`, refused from its size when it is over the byte limit or does
    /// not fit one render beside the watermark images `inputs` sized.
    static func read(_ path: String, inputs: RenderInputs) throws -> Data {
        do {
            return try ConfinedFolder.readRegularFile(atPath: path, maxBytes: inputs.maxSourceBytes)
        } catch .tooLarge(_, let size, _) {
            throw inputs.sourceRefusal(path, bytes: size)
        } catch {
            // Something there that is no file (a folder, a FIFO, /dev/zero) is said as what it is
            // (attack 36's F9: "no such file"), never read.
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
                let kind: String
                switch info.st_mode & S_IFMT {
                case S_IFDIR: kind = "a folder"
                case S_IFIFO: kind = "a FIFO (named pipe)"
                case S_IFCHR, S_IFBLK: kind = "a device"
                default: kind = "not a regular file"
                }
                throw ProcessError(.invalidArgument, ec: "0026-00000001", "\(path) is \(kind), not an image file; name a regular file")
            }
            // The source itself missing is what serve answers for a missing object (EC 0026-00000001);
            // 0040-00000024 is a processed object (a watermark) that does not exist.
            throw ProcessError(.noSuchKey, ec: "0026-00000001", "\(path): no such file, or it cannot be read")
        }
    }

    /// Messages and lines name files: each is printed with its control characters escaped
    /// (`TerminalText`), so a hostile name cannot drive the terminal (attack 27w's finding 10).
    /// What every error line starts with, whatever the command (one prefix: attack 39b's L7).
    static let errorPrefix = "derive: error: "

    static func printError(_ message: String) {
        writeStandardError(errorPrefix + TerminalText.escaped(message) + "\n")
    }

    /// A line of a command's report on standard output, escaped as the messages are.
    static func printLine(_ line: String) {
        Swift.print(TerminalText.escaped(line))
    }

    /// Diagnostics, one compiler-style line each, in file order.
    static func printDiagnostics(_ diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics { writeStandardError(diagnostic.description + "\n") }
    }

    /// An input that fails only its own outputs (plan's failures): not an error that refuses the build.
    static func printFailure(_ message: String) {
        writeStandardError("derive: failure: " + TerminalText.escaped(message) + "\n")
    }

    static func printWarning(_ message: String) {
        writeStandardError("derive: warning: " + TerminalText.escaped(message) + "\n")
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
