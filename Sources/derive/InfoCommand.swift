import ArgumentParser
import Foundation
import ImagingCore
import ProcessLanguage
import RenderWorkers

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
            let source = try Output.read(input, limits: limitOptions.limits)
            // In a render worker, like every other render: derive does not load libvips.
            let workers = try Workers.pool(size: 1)
            defer { workers.shutdown() }
            let result = try workers.render(source, Pipeline(actions: [.info(Info())]), limits: limitOptions.limits)
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
