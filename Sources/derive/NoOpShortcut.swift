/// The no-op answer before ArgumentParser (issue 15). Parsing `derive build` through
/// ArgumentParser cost about a seventh of a 2 000-output no-op: its check for a
/// completion-script request parses the arguments twice more, and its reflection looks up
/// protocol conformances. `plan`, `build` and `check` given at most a manifest and only flags
/// that leave the no-op's answer as it is (`build -q/--quiet/-v/--verbose`,
/// `plan --detailed-exitcode`), each once, are matched here, and their no-op is answered by the
/// command's own no-op step (`PlanCommand.noOp`, `BuildCommand.noOp`, `CheckCommand.noOp`).
/// Anything else (another option, help, `--`, a flag twice, `-qv`, work to do) goes to
/// ArgumentParser with the same arguments, so every option, help and error text stays its own.
/// `NoOpShortcutTests` pins that every list matched here parses there to the same command with
/// the same values, and that the answers are the ones the parsed command prints.
enum NoOpShortcut {
    struct Request: Equatable {
        enum Command: String { case plan, build, check }
        var command: Command
        var manifest = "derive.yaml"
        var quiet = false
        var verbose = false
        var detailedExitcode = false
    }

    /// The request when `arguments` (without the program's name) is one the shortcut may answer.
    static func request(_ arguments: [String]) -> Request? {
        guard let first = arguments.first, let command = Request.Command(rawValue: first) else { return nil }
        var request = Request(command: command)
        var manifest: String?
        for argument in arguments.dropFirst() {
            guard argument.hasPrefix("-") else {
                // One manifest; "help" and an empty word are ArgumentParser's to judge.
                guard manifest == nil, !argument.isEmpty, argument != "help" else { return nil }
                manifest = argument
                continue
            }
            // Each flag once: a flag given twice (by either name) is ArgumentParser's to judge.
            switch (command, argument) {
            case (.build, "-q"), (.build, "--quiet"):
                guard !request.quiet else { return nil }
                request.quiet = true
            case (.build, "-v"), (.build, "--verbose"):
                guard !request.verbose else { return nil }
                request.verbose = true
            case (.plan, "--detailed-exitcode"):
                guard !request.detailedExitcode else { return nil }
                request.detailedExitcode = true
            default: return nil
            }
        }
        if let manifest { request.manifest = manifest }
        return request
    }

    /// What the command prints when `arguments` are a request and nothing is to do; nil sends
    /// them on to ArgumentParser. The no-op check made then is kept for the command's own no-op
    /// step (`Workspace.unchanged` takes it over once), so a build with work to do does not stat
    /// its inputs twice.
    static func answer(_ arguments: [String]) -> String? {
        guard let request = request(arguments) else { return nil }
        var argument = ManifestArgument()
        argument.manifest = request.manifest
        let step: (answer: String?, check: Workspace.NoOpCheck)
        switch request.command {
        case .plan: step = PlanCommand.noOp(argument)
        case .build: step = BuildCommand.noOp(argument)
        case .check: step = CheckCommand.noOp(argument)
        }
        if step.answer == nil {
            Workspace.keep(step.check, for: argument, refresh: request.command == .build)
        } else {
            Workspace.holdUntilExit(step.check)
        }
        return step.answer
    }
}
