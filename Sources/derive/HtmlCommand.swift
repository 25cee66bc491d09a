import ArgumentParser
import Builder
import Foundation
import Manifest

struct HtmlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "html",
        abstract: "Print the <picture> HTML of one source's built outputs (per format srcset, sizes, width and height)."
    )

    @Argument(help: "The source: bucket/key, or its file path.")
    var source: String

    @Option(name: .long, help: "The rule (or rule/style) whose outputs to use, when the source has several.")
    var rule: String?

    @Option(name: .long, help: "The sizes attribute (default: full width up to the widest output).")
    var sizes: String?

    @Option(name: .long, help: "The alt text (escaped; default empty, for a decorative image).")
    var alt: String = ""

    @Option(name: .long, help: "The manifest file.")
    var manifest: String = "derive.yaml"

    static func isBidiOrSeparator(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x061C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    func run() throws {
        // An empty sizes is no sizes (browsers then assume 100vw silently); control characters
        // are not text a page can show.
        if let sizes, sizes.trimmingCharacters(in: .whitespaces).isEmpty {
            throw CLIError("--sizes is empty; leave it out for the default (full width up to the widest output), or give a sizes list such as '(min-width: 60em) 50vw, 100vw'")
        }
        for (name, value) in [("--alt", alt), ("--sizes", sizes ?? "")]
        where value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw CLIError("\(name) contains a control character; give plain text")
        }
        // A bidirectional control (U+202E reverses what follows) or a line separator makes the
        // page show other text than the attribute holds (attack 15's L7); joiners and variation
        // selectors (emoji) stay.
        for (name, value) in [("--alt", alt), ("--sizes", sizes ?? "")] {
            if let bad = value.unicodeScalars.first(where: Self.isBidiOrSeparator) {
                throw CLIError("\(name) contains U+\(String(bad.value, radix: 16, uppercase: true)), a bidirectional control or line separator; "
                               + "give plain text (set the direction with the page's dir attribute)")
            }
        }
        var argument = ManifestArgument()
        argument.manifest = manifest
        let workspace = try Workspace(argument)
        let plan = try workspace.run("planning") { try $0.readOnlyPlan() }
        let key = workspace.key(ofPathOrKey: source)
        let pictures = workspace.session.pictures(of: key, plan: plan)
        guard !pictures.isEmpty else {
            Output.printError("\(source) has no built image outputs in \(manifest); run 'derive build' first (or check the source's bucket/key)")
            throw ExitCode.failure
        }
        let chosen = rule.map { wanted in pictures.filter { $0.name == wanted || $0.rule == wanted } } ?? pictures
        guard chosen.count == 1, let picture = chosen.first else {
            // Quoted and escaped as validate shows names: `a, b` is one name, U+200B is seen.
            let names = RuleName.quoted(pictures.map(\.name))
            Output.printError(rule == nil || !chosen.isEmpty
                ? "\(source) has several pictures (\(names)); choose one with --rule"
                : "\(source) has no picture for rule '\(RuleName.shown(rule!))'; it has: \(names)")
            throw ExitCode.failure
        }
        print(picture.html(sizes: sizes, alt: alt))
        if let note = Self.relativeNote(picture.img.url) { Output.printWarning(note) }
    }

    /// Attack 20's L5: with a relative `url:` (init writes `url: .`) the addresses printed
    /// resolve only from a page in the bucket's own folder; said on standard error, so the
    /// HTML on standard output stays what a page pastes.
    static func relativeNote(_ url: String) -> String? {
        guard !url.hasPrefix("/"), !url.contains("://") else { return nil }
        return "the addresses are relative (\(url)): they work only in a page in the output bucket's own folder; "
            + "for addresses that work on every page set the bucket's url: to where its folder is served from the site's root (such as / or /img) and build again"
    }
}
