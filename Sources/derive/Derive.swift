import ArgumentParser
import Confinement
import DeriveServer
import Foundation
import Manifest

@main
struct Derive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive",
        abstract: "Build image derivatives with the Alibaba Cloud OSS image-processing language.",
        // Only derive's own version here: `main` answers `derive --version` (libvips' version
        // included, from the render worker's description) so that no other command asks.
        version: "derive \(Versions.derive)",
        subcommands: [ProcessCommand.self, InfoCommand.self, ValidateCommand.self, StylesCommand.self, PlanCommand.self,
                      BuildCommand.self, CheckCommand.self, DiffCommand.self, CatalogCommand.self, ExplainCommand.self, HtmlCommand.self, CleanCommand.self, ReleaseCommand.self, SignCommand.self,
                      ServeCommand.self, InitCommand.self, SchemaCommand.self]
    )

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments == ["--version"] {
            print(Versions.text)
            return
        }
        // An argument whose bytes are not UTF-8 reached every command as U+FFFD (`-o 'o\xE9.jpg'`
        // wrote `o\xEF\xBF\xBD.jpg`, `validate 'm\xE9.yaml'` said no such file: attack 44a's M1).
        if let refusal = nonUTF8Argument() {
            Output.printError(refusal)
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        // `derive init -photos` (a folder named -photos) is read as -p -h -o …, and -h printed help (attack 41b's L8);
        // `derive check -dash.yaml` the same (attack 43a's F3): said before anything else reads them.
        if let refusal = InitCommand.optionLikeFolder(arguments) {
            Output.printError(refusal)
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        if let refusal = CurrentFolderCheck.refusal() {
            Output.printError(refusal)
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        // A no-op plan, build or check is answered before ArgumentParser (issue 15).
        if let answer = NoOpShortcut.answer(arguments) {
            print(answer)
            return
        }
        await run(arguments)
    }

    /// ArgumentParser's `main`, with every error said as the commands say theirs: `derive: error:`
    /// (attack 39b's L7: `init` and `html` threw, and ArgumentParser printed `Error:`). Help,
    /// versions and exit codes are answered as ArgumentParser answers them.
    static func run(_ arguments: [String]) async {
        do {
            var command = try await asyncParseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            Output.printError(error.description)
            Foundation.exit(ExitCode.failure.rawValue)
        } catch let error as ListenFailure {
            // serve could not listen: the address, why, and the fix (escaped: --host is the user's text).
            Output.printError(error.description)
            Foundation.exit(ExitCode.failure.rawValue)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            guard code != .success, message.hasPrefix(Self.theirPrefix) else { exit(withError: error) }
            Output.writeStandardError(Output.errorPrefix + escapedParserMessage(String(message.dropFirst(Self.theirPrefix.count)), arguments: arguments) + "\n")
            Foundation.exit(code.rawValue)
        }
    }

    /// ArgumentParser's error message, its lines kept (`Help:`, `Usage:`), with the user's text in
    /// it escaped as every other error line is (attack 43's L-f: a value that does not parse, an
    /// unknown option or an unexpected argument sent ESC and BEL to the terminal, and its line feed
    /// split the line). The message quotes an argument whole, or a value after `--option=`: each is
    /// replaced by its escaped form (longest first), then any control character left but the
    /// parser's own line breaks is escaped too.
    static func escapedParserMessage(_ message: String, arguments: [String]) -> String {
        var quoted = Set<String>()
        for argument in arguments where argument.unicodeScalars.contains(where: TerminalText.isControl) {
            quoted.insert(argument)
            if let equals = argument.firstIndex(of: "=") { quoted.insert(String(argument[argument.index(after: equals)...])) }
        }
        var result = message
        for text in quoted.sorted(by: { $0.unicodeScalars.count > $1.unicodeScalars.count }) where !text.isEmpty {
            result = result.replacingOccurrences(of: text, with: TerminalText.escaped(text))
        }
        return result.split(separator: "\n", omittingEmptySubsequences: false).map { TerminalText.escaped(String($0)) }.joined(separator: "\n")
    }

    /// The usage error for the first command-line argument whose bytes are not UTF-8: Swift's
    /// arguments hold U+FFFD in their place, so the file it names could not be opened, and one
    /// written would get another name. Named with those bytes as `\xHH`.
    static func nonUTF8Argument() -> String? {
        for index in 1..<max(1, Int(CommandLine.argc)) {
            guard let pointer = CommandLine.unsafeArgv[index], String(validatingCString: pointer) == nil else { continue }
            let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer)))
            let shown = TerminalText.escaped(DiskObjectLister.escaped(bytes))
            return "argument \(index) ('\(shown)') is not valid UTF-8 (its other bytes shown as \\xHH): Derive names files, keys and manifests in UTF-8, "
                + "and would read it as another name; rename the file or folder to a UTF-8 name (e.g. convmv -f latin1 -t utf-8 --notest)"
        }
        return nil
    }

    /// How ArgumentParser starts an error's message (a usage error: a missing argument, an unknown option).
    static let theirPrefix = "Error: "
}
