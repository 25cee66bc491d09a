import ArgumentParser
import Builder
import Foundation
import Manifest
import Planner

/// `derive release KEY...` (round 22's V3): the user's word that a file a build left in place
/// (a `left` line of the lock, or the state's record of it) is theirs and may take its key's
/// ACL. Without it, whatever is at such a place (put back as another rendition, changed, or a
/// new file after the left one went) is answered no more publicly than the file left there.
struct ReleaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Let files a build left in place take their key's ACL: drops their left lines from the lock and the build state.",
        discussion: """
            A build leaves in place a file it may not delete (an old output changed since Derive wrote it, one only the \
            lock names, an old index) and keeps it, in derive.lock and the build state, at the ACL serve gave it. Whatever \
            is at that place later (the same file put back, another rendition, other bytes) is answered no more publicly, \
            until the file has been gone for 30 days. `derive release` says the file is yours: its line goes, and serve \
            answers its key by the manifest (its bucket's ACL, or a rule's, or an objects: rule). Keys without a left line \
            are refused, and then nothing is released. `derive check` names every left line.
            """
    )

    @Argument(help: "Files left in place: bucket/key (as derive check names them), or the file's path.")
    var keys: [String]

    @Option(name: .long, help: "The manifest file.")
    var manifest: String = "derive.yaml"

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("name at least one file left in place (bucket/key, as derive check names them)") }
    }

    func run() throws {
        var argument = ManifestArgument()
        argument.manifest = manifest
        let workspace = try Workspace(argument)
        let keys = keys.map { workspace.key(ofPathOrKey: $0) }
        let report = try workspace.run("release") { try $0.release(keys) }
        guard report.refused.isEmpty else {
            for refusal in report.refused { Output.printError(refusal) }
            Output.writeStandardError("nothing was released\n")
            throw ExitCode.failure
        }
        let from = report.from.joined(separator: " and ")
        for (line, acl) in report.released {
            let now = acl.map { acl in
                report.hadState ? "serve answers its key by the manifest now: \(acl.rawValue)"
                    : "serve answers its key by the manifest (\(acl.rawValue)) once a build has made a build state (without a build state it answers the keys of a bucket that rules write with acl: privately)"
            } ?? "no bucket of the manifest holds its file now (nothing serves it)"
            let what = line.isGone ? "gone; a file put at its place is the user's" : "the file there is the user's"
            print("- \(line.path)\(line.file.map { " (file \($0))" } ?? "")  released (left in place: \(line.why), kept \(line.acl)): \(what); its line in \(from) is dropped; \(now)")
        }
        print("Released \(report.released.count) file\(report.released.count == 1 ? "" : "s") left in place.")
    }
}
