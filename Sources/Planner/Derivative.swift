import Foundation
import Manifest
import ProcessLanguage

/// What the engine contributes to every fingerprint: Derive's render version, libvips' version
/// and the encoder settings that are not in the pipeline (default quality, effort, stripping).
public struct EngineIdentity: Sendable, Hashable {
    public var renderVersion: String
    public var libvips: String
    public var encoder: String

    /// The font file behind a watermark `type` name (from the engine's font catalogue), so a
    /// changed font file changes the fingerprint; nil when the font is not installed.
    public var fontFile: @Sendable (String) -> String?

    public init(renderVersion: String, libvips: String, encoder: String, fontFile: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.renderVersion = renderVersion
        self.libvips = libvips
        self.encoder = encoder
        self.fontFile = fontFile
    }

    public static func == (a: EngineIdentity, b: EngineIdentity) -> Bool {
        a.renderVersion == b.renderVersion && a.libvips == b.libvips && a.encoder == b.encoder
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(renderVersion); hasher.combine(libvips); hasher.combine(encoder)
    }

    public var engine: String { "derive-render/\(renderVersion) libvips/\(libvips)" }
}

/// The separately stored parts of a derivative's action key.
public struct Components: Sendable, Hashable {
    public var engine: String
    public var pipeline: String
    public var sourceDigest: String
    public var dependencies: String
    public var encoder: String

    /// SHA-256 over the labelled components.
    public var actionKey: String {
        ContentDigests.digest("""
        derive-action-key/1
        engine \(engine)
        pipeline \(pipeline)
        source \(sourceDigest)
        dependencies \(dependencies)
        encoder \(encoder)
        """)
    }
}

/// One output the manifest asks for: a rule applied to one source with one recipe.
public struct Derivative: Sendable, Hashable {
    /// `bucket/key` of the output.
    public var output: String
    public var outputPath: String
    public var rule: String
    /// `bucket/key` of the source.
    public var source: String
    public var sourcePath: String
    /// The source bucket's folder, where watermark images are read.
    public var bucketPath: String
    public var style: String?
    /// The matrix values, e.g. `["w": "320"]`.
    public var values: [String: String]
    public var pipeline: Pipeline
    public var acl: BucketACL
    public var sourceFormat: String
    public let components: Components
    /// `components.actionKey`, computed once.
    public let actionKey: String

    /// `name=value` pairs joined by `,`, sorted: how matrix values are stored.
    public var matrix: String {
        values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// What produced it, for messages: `thumbnails (style 'thumb')`.
    public var recipe: String {
        var parts: [String] = []
        if let style { parts.append("style '\(style)'") }
        if !values.isEmpty { parts.append(matrix) }
        return parts.isEmpty ? rule : "\(rule) (\(parts.joined(separator: ", ")))"
    }
}

/// A problem that stops a plan: two derivatives writing one path, a dependency that is missing.
public struct PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// Expands rules × source objects × recipes into derivatives.
struct Expansion {
    let manifest: Manifest
    let disk: any Disk
    let digests: ContentDigests
    let identity: EngineIdentity
    /// Outputs the state knows about: never taken as sources.
    let knownOutputs: Set<String>

    /// One source under one rule: the unit of work planned in parallel.
    struct Task: Sendable {
        let rule: Rule
        let ruleName: String
        let sourceBucket: Bucket
        let targetBucket: Bucket
        let key: String
        let variants: [Rule.Variant]
        let canonicals: [String]
    }

    func derivatives() throws -> (derivatives: [Derivative], errors: [PlanError]) {
        var tasks: [Task] = []
        var listings: [String: [String]] = [:]
        let catalogue = manifest.catalogue
        for rule in manifest.rules {
            guard let sourceBucket = manifest.bucket(named: rule.sourceBucket),
                  let targetBucket = manifest.bucket(named: rule.targetBucket) else { continue }
            let keys: [String]
            if let listed = listings[sourceBucket.name] {
                keys = listed
            } else {
                keys = disk.keys(inFolder: sourceBucket.path, skipping: [manifest.stateFolder]) ?? []
                listings[sourceBucket.name] = keys
            }
            let variants = try rule.variants(catalogue: catalogue)
            let canonicals = variants.map(\.pipeline.canonical)
            let ruleName = rule.name ?? "rule at \(rule.location.file):\(rule.location.line)"
            for key in keys where rule.includes(key) && !knownOutputs.contains("\(sourceBucket.name)/\(key)") {
                tasks.append(Task(rule: rule, ruleName: ruleName, sourceBucket: sourceBucket, targetBucket: targetBucket,
                                  key: key, variants: variants, canonicals: canonicals))
            }
        }
        let expanded = try parallelMap(tasks) { task in try self.expand(task) }

        // Merged in task order, so which of two colliding derivatives is named first is stable.
        var byOutput: [String: Derivative] = [:]
        var errors: [PlanError] = []
        for (derivatives, taskErrors) in expanded {
            errors += taskErrors
            for derivative in derivatives {
                if let other = byOutput[derivative.output] {
                    errors.append(PlanError(message: "\(derivative.output) would be written twice: by \(other.recipe) from \(other.source) and by \(derivative.recipe) from \(derivative.source); give them different 'to' paths"))
                    continue
                }
                byOutput[derivative.output] = derivative
            }
        }
        return (byOutput.values.sorted { $0.output < $1.output }, errors)
    }

    func expand(_ task: Task) throws -> ([Derivative], [PlanError]) {
        let key = task.key
        let sourcePath = task.sourceBucket.path + "/" + key
        guard let content = try digests.content(of: sourcePath) else { return ([], []) }
        let name = (key as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        let folder = (key as NSString).deletingLastPathComponent
        let sourceExtension = content.format.isEmpty ? (name as NSString).pathExtension.lowercased() : content.format
        let engine = identity.engine
        var derivatives: [Derivative] = []
        var errors: [PlanError] = []
        for (index, variant) in task.variants.enumerated() {
            var ext = sourceExtension
            if let format = variant.pipeline.outputFormat, format != .gif || content.format == "gif" {
                ext = format.fileExtension
            }
            var values = variant.values
            values["key"] = key
            values["dir"] = folder
            values["name"] = stem
            values["ext"] = ext
            if let style = variant.style { values["style"] = style }
            let outputKey = task.rule.to.render(values)
            let output = "\(task.targetBucket.name)/\(outputKey)"
            var dependencies: [String] = []
            for dependency in variant.pipeline.dependencies {
                switch dependency {
                case .object(let objectKey):
                    if let digest = try digests.content(of: task.sourceBucket.path + "/" + objectKey)?.digest {
                        dependencies.append("object:\(objectKey)=\(digest)")
                    } else {
                        errors.append(PlanError(message: "\(output): the watermark object '\(objectKey)' does not exist in bucket '\(task.sourceBucket.name)'"))
                    }
                case .font(let font):
                    // The font file's digest when it is installed; rendering reports a missing font.
                    if let file = identity.fontFile(font), let digest = try digests.content(of: file)?.digest {
                        dependencies.append("font:\(font)=\(digest)")
                    } else {
                        dependencies.append("font:\(font)")
                    }
                }
            }
            let components = Components(engine: engine, pipeline: task.canonicals[index], sourceDigest: content.digest,
                                        dependencies: dependencies.joined(separator: ","), encoder: identity.encoder)
            derivatives.append(Derivative(output: output, outputPath: task.targetBucket.path + "/" + outputKey, rule: task.ruleName,
                                          source: "\(task.sourceBucket.name)/\(key)", sourcePath: sourcePath,
                                          bucketPath: task.sourceBucket.path, style: variant.style,
                                          values: variant.values, pipeline: variant.pipeline,
                                          acl: task.rule.acl ?? task.sourceBucket.effectiveACL(of: key),
                                          sourceFormat: content.format, components: components, actionKey: components.actionKey))
        }
        return (derivatives, errors)
    }
}
