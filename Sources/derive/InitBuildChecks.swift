import Builder
import Confinement
import Foundation
import ImagingCore
import Manifest
import ProcessLanguage
import RenderWorkers
#if canImport(Glibc)
import Glibc
#endif

/// What the first build of the manifest `derive init` writes would refuse among the images it
/// counted, judged by the build's own render: each chain of the manifest, with its limits, run
/// in a render worker up to the last check before decoding (`RenderReach`): the byte limit,
/// the header's sides, pixels and frames, the work and memory estimates, truncation and the
/// whole-file data checks. Attack 36a's M1: init counted a truncated JPEG, a file over `bytes`
/// and a PNG over `side`, and the first build failed on each.
enum InitBuildChecks {
    /// Keys (below `folder`) the build would fail on, each with why. `manifestText` is the
    /// manifest init would write, loaded as the build loads it (its chains and `limits:`).
    /// Without a render worker init refuses: every build needs one too (attack 37b's F11).
    static func refusals(keys: [String], folder: String, manifestText: String) throws -> [(key: String, why: String)] {
        guard !keys.isEmpty else { return [] }
        var loader = ManifestLoader()
        loader.crossChecks = false
        loader.fileReader = { _, _ in Data(manifestText.utf8) }
        guard let manifest = loader.load("derive.yaml").manifest else { return [] }
        var pipelines: [Pipeline] = []
        var variants: [(rule: Rule, variant: Rule.Variant)] = []
        for rule in manifest.rules {
            for variant in (try? rule.variants(catalogue: manifest.catalogue)) ?? [] {
                variants.append((rule, variant))
                if !pipelines.contains(variant.pipeline) { pipelines.append(variant.pipeline) }
            }
        }
        let pool: RenderWorkerPool
        do {
            pool = try RenderWorkerPool(size: min(keys.count, BuildOptions().jobs))
            // A worker that cannot start (libvips missing) fails every image alike: said once,
            // here, not as a refusal of each good image (attack 39b's M1).
            do { try pool.start() } catch {
                pool.shutdown()
                throw error
            }
        } catch {
            let why = (error as? ProcessError)?.message ?? "\(error)"
            throw CLIError("the images cannot be checked against the build's limits, and every derive build would fail: \(why). "
                           + "Install derive-render-worker beside derive (or set DERIVE_RENDER_WORKER to its path), then run derive init again")
        }
        defer { pool.shutdown() }
        let limits = EngineRenderer(limits: manifest.limits, renderer: pool).limits
        let found = Refusals(), chains = pipelines, outputs = variants
        DispatchQueue.concurrentPerform(iterations: keys.count) { index in
            if let why = overlongOutput(keys[index], variants: outputs) ?? refusal(folder + "/" + keys[index], pipelines: chains, limits: limits, pool: pool) {
                found.add(keys[index], why)
            }
        }
        return found.sorted
    }

    /// Why the build would refuse the source `key` for an output key over `ObjectKey.maxBytes`
    /// (a deep folder: attack 37b's F4), or nil. The key is made as the plan makes it
    /// (`Derivative.expand`): the variant's values, the source's folder, stem and extension, the
    /// output format's extension, and a `{hash:N}` as N characters.
    static func overlongOutput(_ key: String, variants: [(rule: Rule, variant: Rule.Variant)]) -> String? {
        let stem = ((key as NSString).lastPathComponent as NSString).deletingPathExtension
        for (rule, variant) in variants {
            var values = variant.values
            values["key"] = key
            values["dir"] = PathTemplate.folder(ofKey: key)
            values["name"] = stem
            values["ext"] = variant.pipeline.outputFormat?.fileExtension ?? (key as NSString).pathExtension.lowercased()
            if let style = variant.style { values["style"] = style }
            if let length = rule.to.hashLength { values["hash"] = String(repeating: "0", count: length) }
            let length = rule.to.render(values).utf8.count
            if length > ObjectKey.maxBytes {
                return "the first build would refuse it: its outputs' keys would be \(length) bytes, over the \(ObjectKey.maxBytes) an object key may hold "
                    + "(derive serve refuses longer ones); move it to a shallower folder or shorten the folders' names, then remove it from 'exclude:'"
            }
        }
        return nil
    }

    /// Why the build would refuse the file at `path`, or nil.
    static func refusal(_ path: String, pipelines: [Pipeline], limits: Limits, pool: RenderWorkerPool) -> String? {
        // As the build reads a source: never through a link, never blocking on a FIFO swapped in.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return "it cannot be read (\(String(cString: strerror(errno))))" }
        let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return "it cannot be read (\(String(cString: strerror(errno))))" }
        // Refused from its size before it is read, as the build does.
        do { try limits.checkBytes(Int(info.st_size)) } catch { return said(error) }
        let source: Data
        do { source = try file.readToEnd() ?? Data() } catch { return "it cannot be read (\(error))" }
        // A source cut short is refused by the plan before any render, in its own words.
        if let cut = SourceEnd.truncation(source) { return "the first build would refuse it: the source image is corrupt or truncated: " + cut }
        // The JPEG data check depends on the source alone: made with the first chain only. A small
        // file is decoded whole by that chain (rendered, the output dropped): damaged pixel data past
        // a sound header (a PNG's garbled IDAT, a mutated GIF or WebP) fails only there (attack 37b's
        // F4). Bounded by size, so init on a folder of large photos stays a header check.
        let first: RenderReach = source.count <= fullDecodeBytes ? .output : .checks
        for (index, pipeline) in pipelines.enumerated() {
            do {
                try pool.check(source, pipeline, limits: limits, reach: index == 0 ? first : .limitChecks)
            } catch {
                // A limit is met by one chain; corruption is the file's, whatever the chain.
                let limit = (error as? ProcessError)?.code == .imageTooLarge && pipelines.count > 1
                return said(error) + (limit ? " (for \(pipeline.canonical))" : "")
            }
        }
        return nil
    }

    /// Sources up to this size are decoded whole by the first chain; larger ones are checked up to decoding.
    static let fullDecodeBytes = 4 << 20

    /// A refusal as the build says it, with how to get past it (its message names the limit).
    static func said(_ error: any Error) -> String {
        "the first build would refuse it: " + ((error as? ProcessError)?.message ?? "\(error)")
    }

    /// Refusals found on several threads at once.
    private final class Refusals: @unchecked Sendable {
        private let lock = NSLock()
        private var found: [(key: String, why: String)] = []
        func add(_ key: String, _ why: String) { lock.withLock { found.append((key, why)) } }
        var sorted: [(key: String, why: String)] { lock.withLock { found.sorted { $0.key < $1.key } } }
    }
}
