import ArgumentParser

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
        // A no-op plan, build or check is answered before ArgumentParser (issue 15).
        if let answer = NoOpShortcut.answer(arguments) {
            print(answer)
            return
        }
        await main(arguments)
    }
}
