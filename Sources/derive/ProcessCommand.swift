import ArgumentParser
import Confinement
import Foundation
import ImagingCore
import ProcessLanguage
import RenderWorkers
#if canImport(Glibc)
import Glibc
#endif

struct ProcessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Render one image with an x-oss-process string.",
        discussion: """
        PROCESS is an OSS image-processing chain such as 'image/resize,w_200/format,webp'
        (the leading 'image/' may be left out). The output format comes from the chain (or the
        source's format), never from the output file's extension. Without -o the result is
        written beside the current folder as NAME.derived.EXT, never over an existing file unless
        --force; JSON answers (info, average-hue) go to standard output. The source image itself
        is never replaced.
        """
    )

    @Argument(help: "The source image file.")
    var input: String

    @Argument(help: "The processing chain, e.g. image/resize,m_fill,w_240,h_240/quality,q_80.")
    var process: String

    @Option(name: .shortAndLong, help: "Where to write the result; '-' for standard output.")
    var output: String?

    @Option(name: .long, help: "The bucket's folder, where watermark images (image_ keys) are read.")
    var bucketRoot: String?

    @Flag(name: .long, help: "Replace an existing file at NAME.derived.EXT (without -o). The source image is never replaced.")
    var force = false

    @OptionGroup var limitOptions: LimitOptions

    func run() throws {
        let text = process.hasPrefix("image/") || process.hasPrefix("style/") ? process : "image/" + process
        do {
            // Resolved once by the file system: the file checked is the file written (OptionPath).
            let target = try output.map { $0 == "-" ? $0 : try Output.resolvedOption($0, "-o") ?? $0 }
            let pipeline = try Pipeline.parse(text)
            if let target, target != "-" { try Output.checkReplaceable(target); try refuseInputs(target, named: output ?? target, pipeline: pipeline) }   // before any render
            for warning in pipeline.warnings { Output.printWarning(warning.message) }
            let resolver: any ObjectResolver = bucketRoot.map { FolderResolver(root: $0, limits: limitOptions.limits) } ?? NoObjects()
            // The watermark images are sized first: the source is read only if it fits one render beside them.
            let inputs = try RenderInputs(pipeline, resolver: resolver, limits: limitOptions.limits)
            let source = try Output.read(input, inputs: inputs)
            let workers = try Workers.pool(size: 1)
            defer { workers.shutdown() }
            let result = try workers.render(source, pipeline, limits: limitOptions.limits, resolver: resolver)
            let destination: String
            if let output {
                destination = output
            } else if result.kind == .json {
                destination = "-"
            } else {
                let name = URL(literalFilePath: input).deletingPathExtension().lastPathComponent
                destination = "\(name).derived.\(result.fileExtension)"
                // A name the user did not give is never written over a file already there (attack 38a's L2).
                var info = stat()
                if !force, lstat(destination, &info) == 0 {
                    throw CLIError("\(destination) already exists; without -o, derive process writes NAME.derived.EXT only as a new file: pass --force to replace it, or name another file with -o")
                }
                try refuseInputs(destination, named: destination, pipeline: pipeline)
            }
            let bytes = result.kind == .json && destination == "-" ? result.bytes + Data("\n".utf8) : result.bytes
            try Output.write(bytes, to: target ?? destination, replacing: output != nil || force)
            if destination != "-", result.kind == .json {
                // A JSON answer has no size or frames: say which answer it is (info wins, as in the engine).
                let answer = pipeline.actions.contains { if case .info = $0 { return true } else { return false } } ? "info" : "average-hue"
                Output.writeStandardError(TerminalText.escaped("\(destination): \(answer) answer (JSON) \(result.bytes.count) bytes") + "\n")
            } else if destination != "-" {
                Output.writeStandardError(TerminalText.escaped("\(destination): \(result.width)x\(result.height) \(result.fileExtension)\(result.frames > 1 ? " \(result.frames) frames" : "") \(result.bytes.count) bytes") + "\n")
            }
        } catch let error as ProcessError {
            Output.printError(Output.describe(error, input: input))
            throw ExitCode.failure
        } catch let error as CLIError {
            Output.printError(error.description)
            throw ExitCode.failure
        }
    }
}

extension ProcessCommand {
    /// Refuses `path` when it is an image this run reads, whatever the name (`./a.jpg`, a hard
    /// link; compared by device and inode): the source, or a watermark image of the chain from
    /// `--bucket-root` (attack 59b's F4: `-o b/logo.png` wrote the render over its own logo).
    /// derive process never replaces them, even with --force.
    func refuseInputs(_ path: String, named name: String, pipeline: Pipeline) throws {
        var target = stat()
        guard stat(path, &target) == 0 else { return }
        func isTarget(_ file: String) -> Bool {
            var info = stat()
            return stat(file, &info) == 0 && info.st_dev == target.st_dev && info.st_ino == target.st_ino
        }
        if isTarget(input) {
            throw CLIError("\(name) is the source image \(input) itself; derive process never replaces its source: name another file with -o")
        }
        guard let bucketRoot else { return }
        for case .object(let key) in pipeline.dependencies where isTarget(bucketRoot + "/" + key) {
            throw CLIError("\(name) is the watermark image \(key) this chain reads from \(bucketRoot); derive process never replaces an image it reads: name another file with -o")
        }
    }
}
