import ArgumentParser

@main
struct Derive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive",
        abstract: "Build image derivatives with the Alibaba Cloud OSS image-processing language.",
        version: Versions.text,
        subcommands: [ProcessCommand.self, InfoCommand.self, ValidateCommand.self, StylesCommand.self, PlanCommand.self,
                      BuildCommand.self, CheckCommand.self, ExplainCommand.self, HtmlCommand.self, CleanCommand.self, SignCommand.self,
                      ServeCommand.self, InitCommand.self, SchemaCommand.self]
    )
}
