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
            if let target, target != "-" { try Output.checkReplaceable(target); try Self.refuseSource(target, named: output ?? target, input: input) }   // before any render
            let pipeline = try Pipeline.parse(text)
            if let target, target != "-" { try Self.refuseMarks(target, named: output ?? target, pipeline: pipeline, bucketRoot: bucketRoot) }
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
                try Self.refuseSource(destination, named: destination, input: input)
                try Self.refuseMarks(destination, named: destination, pipeline: pipeline, bucketRoot: bucketRoot)
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
    /// Refuses `path` when it is the source image itself (its device and inode, whatever the
    /// name: `./a.jpg`, a hard link): derive process never replaces its source, even with --force.
    static func refuseSource(_ path: String, named name: String, input: String) throws {
        var target = stat(), source = stat()
        guard stat(path, &target) == 0, stat(input, &source) == 0,
              target.st_dev == source.st_dev, target.st_ino == source.st_ino else { return }
        throw CLIError("\(name) is the source image \(input) itself; derive process never replaces its source: name another file with -o")
    }

    /// Refuses `path` when it is a watermark image the chain reads from `--bucket-root` (attack
    /// 59b's F4: `-o b/logo.png` wrote the render over the logo it was stamped with): an image
    /// the run reads is never replaced, as the source is not.
    static func refuseMarks(_ path: String, named name: String, pipeline: Pipeline, bucketRoot: String?) throws {
        guard let bucketRoot else { return }
        var target = stat()
        guard stat(path, &target) == 0 else { return }
        for case .object(let key) in pipeline.dependencies {
            var mark = stat()
            guard stat(bucketRoot + "/" + key, &mark) == 0, mark.st_dev == target.st_dev, mark.st_ino == target.st_ino else { continue }
            throw CLIError("\(name) is the watermark image \(key) this chain reads from \(bucketRoot); derive process never replaces an image it reads: name another file with -o")
        }
    }
}
