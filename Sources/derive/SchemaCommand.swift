import ArgumentParser
import Manifest

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the manifest's JSON Schema (for editors: completion and checks while typing)."
    )

    func run() throws {
        // Drawn from the tables the manifest loader checks keys against (ManifestSchema).
        try Output.writeStandardOutput(ManifestSchema.json())
        print()
    }
}
