import ArgumentParser
import Builder
import Confinement
import Foundation
import Manifest
import Planner

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
            Output.printError(Self.whyNoPictures(source, key: key, manifest: manifest, buckets: workspace.manifest.buckets, plan: plan))
            throw ExitCode.failure
        }
        let chosen = rule.map { wanted in pictures.filter { $0.name == wanted || $0.rule == wanted } } ?? pictures
        guard chosen.count == 1, let picture = chosen.first else {
            // Quoted and escaped as validate shows names: `a, b` is one name, U+200B is seen.
            let names = RuleName.quoted(pictures.map(\.name))
            if let rule, chosen.count > 1 {
                // A rule with several styles (attack 40b's L5): the names that choose one.
                Output.printError("\(source) has several pictures of rule '\(RuleName.shown(rule))' (\(RuleName.quoted(chosen.map(\.name)))), one a style; "
                                  + "choose one with --rule " + chosen.map { RuleName.shown($0.name) }.joined(separator: " or --rule "))
                throw ExitCode.failure
            }
            Output.printError(rule == nil
                ? "\(source) has several pictures (\(names)); choose one with --rule"
                : "\(source) has no picture for rule '\(RuleName.shown(rule!))'; it has: \(names)")
            throw ExitCode.failure
        }
        print(picture.html(sizes: sizes, alt: alt))
        if let note = Self.relativeNote(picture.img.url) { Output.printWarning(note) }
    }

    /// Why a source has no pictures (attack 36a's L2: a missing build was blamed for a file that
    /// does not exist): no such file or key, not a source of any rule, or not built yet.
    static func whyNoPictures(_ source: String, key: String, manifest: String, buckets: [Bucket], plan: Plan) -> String {
        guard let (name, rest) = PathKey.split(key), let bucket = buckets.first(where: { $0.name == name }) else {
            let names = buckets.map { "'\($0.name)'" }.joined(separator: ", ")
            return FileManager.default.fileExists(atPath: source)
                ? "\(source) is in no bucket's folder of \(manifest) (its buckets: \(names)); give a source in one of them, by its path or as bucket/key"
                : "\(source): no such file, and no bucket/key of \(manifest) (its buckets: \(names)); give the source's path or its bucket/key"
        }
        let file = bucket.path + "/" + rest
        var info = stat()
        guard lstat(file, &info) == 0 else {
            return "\(source): no such file in bucket '\(name)' (\(file)); check the name"
        }
        if let failure = plan.failures.first(where: { PathKey.same($0.source ?? $0.subject, key) }) {
            return "\(key) has no built image outputs: \(failure.message)"
        }
        guard plan.items.contains(where: { item in item.derivative.map { PathKey.same($0.source, key) } ?? false }) else {
            return "\(key) is not a source of any rule in \(manifest) (no rule's from: takes it), so it has no outputs"
        }
        return "\(key) has no built image outputs in \(manifest); run 'derive build' first"
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
