import Foundation
import Testing
import TestSupport
@testable import derive

/// `NoOpShortcut` answers a no-op `plan`, `build` or `check` before ArgumentParser (issue 15).
/// It may only take argument lists that ArgumentParser parses to the same command with the same
/// values, and it must answer as that command does; every other shape is left to ArgumentParser.
@Suite(.ownThreads, .serialized) struct NoOpShortcutTests {
    /// Words that make up the argument lists tried: every flag the three commands know, their
    /// short and long spellings, help, `--`, options with values, manifests and odd words.
    static let words = ["plan", "build", "check", "validate", "help", "derive.yaml", "other.yaml", "-q", "--quiet", "-v", "--verbose",
                        "--detailed-exitcode", "--json", "--overwrite", "--watch", "-qv", "-vq", "-j", "2", "--jobs=2", "--memory", "--",
                        "-h", "--help", "--version", "", "-", "--quiet=true", "--generate-completion-script"]
    /// The words combined three deep after a command.
    static let core = ["build", "help", "derive.yaml", "other.yaml", "-q", "--quiet", "-v", "--verbose", "--detailed-exitcode", "--json", "-j", "--"]

    static func lists() -> [[String]] {
        var lists: [[String]] = []
        for command in ["plan", "build", "check"] {
            lists.append([command])
            for a in words {
                lists.append([command, a])
                for b in words { lists.append([command, a, b]) }
            }
            for a in core { for b in core { for c in core { lists.append([command, a, b, c]) } } }
        }
        return lists
    }

    /// Every list the shortcut takes parses through `Derive.parseAsRoot` (validation included)
    /// to the command it names, with its manifest and flags and every other option at its default.
    @Test func everyListItTakesParsesToTheSameCommandAndValues() throws {
        var taken = 0
        for list in Self.lists() {
            guard let request = NoOpShortcut.request(list) else { continue }
            taken += 1
            let parsed: Any
            do { parsed = try Derive.parseAsRoot(list) } catch {
                Issue.record("\(list): taken by the shortcut, refused by ArgumentParser: \(error)")
                continue
            }
            switch request.command {
            case .plan:
                let command = try #require(parsed as? PlanCommand, "\(list) parsed to \(type(of: parsed))")
                #expect(sameBytes(command.manifest.manifest, request.manifest), "\(list)")
                #expect(command.detailedExitcode == request.detailedExitcode, "\(list)")
                #expect(!command.json && !command.verbose && !command.overwrite, "\(list)")
            case .build:
                let command = try #require(parsed as? BuildCommand, "\(list) parsed to \(type(of: parsed))")
                #expect(sameBytes(command.manifest.manifest, request.manifest), "\(list)")
                #expect(command.quiet == request.quiet && command.verbose == request.verbose, "\(list)")
                #expect(!command.overwrite && !command.watch && command.jobs == nil && command.memory == nil, "\(list)")
            case .check:
                let command = try #require(parsed as? CheckCommand, "\(list) parsed to \(type(of: parsed))")
                #expect(sameBytes(command.manifest.manifest, request.manifest), "\(list)")
                #expect(command.jobs == nil, "\(list)")
            }
        }
        // Not vacuous: each command with and without a manifest and each flag spelling.
        #expect(taken >= 60, "only \(taken) lists taken")
    }

    /// The shapes the shortcut must leave to ArgumentParser (its help, errors and other options).
    @Test func everyOtherShapeIsLeftToArgumentParser() {
        let left: [[String]] = [
            [], ["validate"], ["--version"], ["help", "build"], ["Build"], ["build", "help"], ["build", "-h"], ["build", "--help"],
            ["build", "-qv"], ["build", "-vq"], ["build", "-q", "-q"], ["build", "--quiet", "-q"], ["build", "-v", "--verbose"],
            ["build", "--"], ["build", "--", "derive.yaml"], ["build", ""], ["build", "-"], ["build", "a.yaml", "b.yaml"],
            ["build", "-j", "2"], ["build", "--jobs=2"], ["build", "--memory", "64"], ["build", "--overwrite"], ["build", "--watch"],
            ["build", "--quiet=true"], ["build", "--detailed-exitcode"], ["build", "--generate-completion-script", "bash"],
            ["plan", "--json"], ["plan", "-v"], ["plan", "--verbose"], ["plan", "--overwrite"], ["plan", "-q"],
            ["plan", "--detailed-exitcode", "--detailed-exitcode"], ["plan", "--", "derive.yaml"],
            ["check", "-j", "1"], ["check", "-q"], ["check", "-v"], ["check", "--", "derive.yaml"],
        ]
        for list in left { #expect(NoOpShortcut.request(list) == nil, "\(list) must go to ArgumentParser") }
        #expect(NoOpShortcut.request(["build", "-q", "--verbose", "site.yaml"])
                == .init(command: .build, manifest: "site.yaml", quiet: true, verbose: true))
        #expect(NoOpShortcut.request(["plan", "--detailed-exitcode"]) == .init(command: .plan, detailedExitcode: true))
    }

    /// End to end: the same project answered through the shortcut (`build m`) and through
    /// ArgumentParser (`build -- m`, a shape the shortcut leaves) prints the same words on both
    /// streams with the same status: settled, after an edit (the shortcut hands over to the
    /// command), with a budget (check judges it), with an invalid or a missing manifest.
    @Test func theShortcutAnswersAsArgumentParsersCommandDoes() throws {
        let project = try BudgetProject(nil)
        defer { project.remove() }
        func same(_ lists: [[String]], _ state: String) throws {
            for list in lists {
                let slow = Array(list.dropLast()) + ["--", list.last!]
                #expect(NoOpShortcut.request(list) != nil && NoOpShortcut.request(slow) == nil)
                let fast = try project.run(list), parsed = try project.run(slow)
                #expect(fast.status == parsed.status && fast.stdout == parsed.stdout && fast.stderr == parsed.stderr,
                        "\(state) \(list): \(fast.status) \(String(decoding: fast.stdout, as: UTF8.self)) \(fast.stderr) | \(parsed.status) \(String(decoding: parsed.stdout, as: UTF8.self)) \(parsed.stderr)")
            }
        }
        let readOnly = [["plan", "derive.yaml"], ["plan", "--detailed-exitcode", "derive.yaml"], ["check", "derive.yaml"]]
        let noOps = readOnly + [["build", "derive.yaml"], ["build", "-q", "derive.yaml"], ["build", "--verbose", "derive.yaml"]]
        let built = try project.run(["build", "derive.yaml"])
        #expect(built.status == 0, "\(built.stderr)")
        let noOp = try project.run(["build", "derive.yaml"])
        #expect(String(decoding: noOp.stdout, as: UTF8.self) == BuildCommand.nothingToDo(2) + "\n")
        try same(noOps, "settled")
        try FileManager.default.removeItem(atPath: project.folder.appendingPathComponent("src/portrait.jpg").path)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                         to: project.folder.appendingPathComponent("src/portrait.jpg"))
        try same(readOnly, "edited")
        #expect(try project.run(["build", "-q", "derive.yaml"]).status == 0)
        try project.write("{max_bytes: 10_000_000}")
        try same(readOnly, "budget")
        #expect(try project.run(["build", "derive.yaml"]).status == 0)
        try same(noOps, "budget, built")
        try Data("version: 1\nbuckets: [\n".utf8).write(to: project.folder.appendingPathComponent("derive.yaml"))
        try same(noOps, "invalid")
        try same([["plan", "none.yaml"], ["build", "none.yaml"], ["check", "none.yaml"]], "missing")
    }
}

private func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
