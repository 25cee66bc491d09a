import ArgumentParser
import Foundation
import Imaging
import ProcessLanguage

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print an image's OSS info JSON (size, format, frames, dimensions, EXIF)."
    )

    @Argument(help: "The image file.")
    var input: String

    @OptionGroup var limitOptions: LimitOptions

    func run() throws {
        do {
            let result = try Engine(limits: limitOptions.limits).info(try Output.read(input))
            try Output.writeStandardOutput(result.bytes + Data("\n".utf8))
        } catch let error as ProcessError {
            Output.printError(Output.describe(error, input: input))
            throw ExitCode.failure
        } catch let error as CLIError {
            Output.printError(error.description)
            throw ExitCode.failure
        }
    }
}
