import ArgumentParser

@main
struct Derive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive",
        abstract: "Build image derivatives with the Alibaba Cloud OSS image-processing language.",
        // Cheap on purpose: derive does not load libvips (`derive-render-worker` does).
        version: "derive 0.1.0",
        subcommands: [ProcessCommand.self, InfoCommand.self, ValidateCommand.self, StylesCommand.self, PlanCommand.self,
                      BuildCommand.self, CheckCommand.self, ExplainCommand.self, CleanCommand.self, SignCommand.self,
                      ServeCommand.self]
    )
}
