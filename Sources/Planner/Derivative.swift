import Confinement
import Foundation
import ImagingCore
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

    /// How that font's glyphs are drawn (`key=value` words: antialiasing, hinting, …, as the
    /// engine's fontconfig resolves them), so a configuration file that changes them changes the
    /// fingerprint though the font file is the same (attack 20's B1); nil when unknown.
    public var fontRendering: @Sendable (String) -> String?

    /// How a text is drawn (`TextDrawing`: every face Pango lays it out with, each as fontconfig
    /// resolves it at the drawn size, and the environment), so a configuration or locale that
    /// picks or draws another face changes the fingerprint (attacks 49c's finding 1, 50b's H3-H5).
    public var textDrawing: @Sendable (TextToDraw) -> TextDrawing

    /// Versions of the codec and colour libraries that produce bytes (libjpeg-turbo, libwebp,
    /// libheif, libpng, lcms2, ...), name → version: an upgrade of any of them rebuilds, and the
    /// plan names it.
    public var libraries: [String: String]

    /// Whether the engine refuses a source that is no image or is provably cut short (Derive's
    /// does): then the planner fails such a source as the build would, from the bytes it reads for
    /// the digest. False only for a stand-in renderer that draws any bytes (the planner's tests).
    public var refusesNonImages: Bool

    public init(renderVersion: String, libvips: String, encoder: String, libraries: [String: String] = [:],
                fontFile: @escaping @Sendable (String) -> String? = { _ in nil },
                fontRendering: @escaping @Sendable (String) -> String? = { _ in nil },
                textDrawing: @escaping @Sendable (TextToDraw) -> TextDrawing = { _ in TextDrawing(faces: [], environment: "") },
                refusesNonImages: Bool = true) {
        self.renderVersion = renderVersion
        self.libvips = libvips
        self.encoder = encoder
        self.libraries = libraries
        self.fontFile = fontFile
        self.fontRendering = fontRendering
        self.textDrawing = textDrawing
        self.refusesNonImages = refusesNonImages
    }

    public static func == (a: EngineIdentity, b: EngineIdentity) -> Bool {
        a.renderVersion == b.renderVersion && a.libvips == b.libvips && a.encoder == b.encoder && a.libraries == b.libraries
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(renderVersion); hasher.combine(libvips); hasher.combine(encoder); hasher.combine(libraries)
    }

    /// `derive-render/1 libvips/8.14.1 libjpeg-turbo/3.0.2 ...`: names and versions without spaces.
    public var engine: String {
        var parts = ["derive-render/\(renderVersion)", "libvips/\(libvips)"]
        for (name, version) in libraries.sorted(by: { $0.key < $1.key }) {
            parts.append("\(Self.dashed(name))/\(Self.dashed(version))")
        }
        return parts.joined(separator: " ")
    }

    /// `text.replacingOccurrences(of: " ", with: "-")`. Foundation's took 44 bridged copies and
    /// a twentieth of a 2 000-output no-op (every command names its engine, issue 15); an ASCII
    /// text (every library's name and version) has no combining mark that could join a space
    /// into another character, so its spaces are replaced byte for byte. Anything else goes to
    /// Foundation. `EngineNameTests` compares the two.
    static func dashed(_ text: String) -> String {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return dashedSlowly(text) }
        guard text.utf8.contains(0x20) else { return text }
        return String(decoding: text.utf8.map { $0 == 0x20 ? 0x2D : $0 }, as: UTF8.self)
    }

    /// The Foundation definition `dashed` must agree with.
    static func dashedSlowly(_ text: String) -> String { text.replacingOccurrences(of: " ", with: "-") }
}

/// The separately stored parts of a derivative's action key.
public struct Components: Sendable, Hashable {
    public var engine: String
    public var pipeline: String
    public var sourceDigest: String
    public var dependencies: String
    public var encoder: String

    /// SHA-256 over the labelled components.
    public var actionKey: String { actionDigest.text }

    /// The same, without its hex text.
    var actionDigest: HexDigest {
        HexDigest.sha256("""
        derive-action-key/1
        engine \(engine)
        pipeline \(pipeline)
        source \(sourceDigest)
        dependencies \(dependencies)
        encoder \(encoder)
        """)
    }
}

/// Where `{hash}` stands in an output's key: the key is `prefix`, the first `length` hex digits
/// of the output's SHA-256, then `suffix`. Until it is rendered, the output is named with the
/// placeholder as written (`site/img/lake.{hash}.webp`).
public struct HashedName: Sendable, Hashable {
    public var prefix: String
    public var suffix: String
    public var length: Int
    public var placeholder: String

    /// The key for an output whose SHA-256 (hex) is `digest`.
    public func key(digest: String) -> String { prefix + digest.prefix(length) + suffix }
    /// The key before rendering, with the placeholder.
    public var logicalKey: String { prefix + placeholder + suffix }
    /// A key of this shape (zeros for the digest), for what depends on the shape only: which
    /// rules' output templates give it (`EffectiveACL.derivative`).
    public var sampleKey: String { prefix + String(repeating: "0", count: length) + suffix }
}

/// One output the manifest asks for: a rule applied to one source with one recipe.
/// A compact record (plans hold 200 000 of them): a class, so the expansion, its merge by
/// output, the sorted list and every plan item share one object; what it shares with other
/// derivatives is held by reference, once per recipe (folders, rule, style, pipeline, engine)
/// and once per source (its name, path, format and digest). Only its output's names, its
/// action key (32 bytes inline, `HexDigest`) and, when it has any, its dependencies and
/// `{hash}` name (held apart: most derivatives have neither) are its own: 112 bytes.
public final class Derivative: Sendable, Hashable {
    /// What the derivatives of one rule and one recipe share.
    final class Recipe: Sendable {
        let outputFolder: String
        let rule: String
        let bucketPath: String
        let style: String?
        let values: [String: String]
        let pipeline: Pipeline
        let canonical: String
        let engine: String
        let encoder: String

        init(outputFolder: String, rule: String, bucketPath: String, style: String?, values: [String: String], pipeline: Pipeline,
             canonical: String, engine: String, encoder: String) {
            self.outputFolder = outputFolder; self.rule = rule; self.bucketPath = bucketPath; self.style = style
            self.values = values; self.pipeline = pipeline; self.canonical = canonical; self.engine = engine; self.encoder = encoder
        }
    }

    /// What the derivatives of one source share.
    final class Origin: Sendable {
        let source: String
        let sourcePath: String
        let format: String
        let digest: HexDigest

        init(source: String, sourcePath: String, format: String, digest: String) {
            self.source = source; self.sourcePath = sourcePath; self.format = format; self.digest = HexDigest(digest)
        }
    }

    /// What few derivatives have: dependencies (a watermark, a font) and a `{hash}` name.
    private final class Details: Sendable {
        let dependencies: String
        let hashed: HashedName?
        init(dependencies: String, hashed: HashedName?) { self.dependencies = dependencies; self.hashed = hashed }
    }

    /// `bucket/key` of the output.
    public let output: String
    public let outputPath: String
    /// `components.actionKey`, computed once (declared before `acl`, a byte, which fills its last word).
    private let action: HexDigest
    public let acl: BucketACL
    private let details: Details?
    private let made: Recipe
    private let origin: Origin

    /// `components.actionKey`.
    public var actionKey: String { action.text }
    /// Set when the rule's `to:` has `{hash}`: `output` is then the recorded file's name (an up-to-date
    /// output), or the logical name with the placeholder until rendering names it.
    public var hashed: HashedName? { details?.hashed }
    private var dependencies: String { details?.dependencies ?? "" }

    /// The target bucket's folder now: recorded with the output, so it is deleted there later.
    public var outputFolder: String { made.outputFolder }
    public var rule: String { made.rule }
    /// `bucket/key` of the source.
    public var source: String { origin.source }
    public var sourcePath: String { origin.sourcePath }
    /// The source bucket's folder, where watermark images are read.
    public var bucketPath: String { made.bucketPath }
    public var style: String? { made.style }
    /// The matrix values, e.g. `["w": "320"]`.
    public var values: [String: String] { made.values }
    public var pipeline: Pipeline { made.pipeline }
    public var sourceFormat: String { origin.format }
    public var components: Components {
        Components(engine: made.engine, pipeline: made.canonical, sourceDigest: origin.digest.text, dependencies: dependencies,
                   encoder: made.encoder)
    }

    /// `actionKey`: the key already known for exactly these components (a record of them that
    /// a clean build left, `EditedSources`); computed otherwise.
    init(output: String, outputPath: String, recipe: Recipe, origin: Origin, acl: BucketACL, dependencies: String,
         hashed: HashedName? = nil, actionKey known: String? = nil) {
        self.output = output; self.outputPath = outputPath; self.made = recipe; self.origin = origin
        self.acl = acl
        details = dependencies.isEmpty && hashed == nil ? nil : Details(dependencies: dependencies, hashed: hashed)
        action = known.map(HexDigest.init) ?? Components(engine: recipe.engine, pipeline: recipe.canonical, sourceDigest: origin.digest.text,
                                                         dependencies: dependencies, encoder: recipe.encoder).actionDigest
    }

    /// The same derivative under other names, sharing everything else (its action key too).
    private init(renaming other: Derivative, output: String, outputPath: String) {
        self.output = output; self.outputPath = outputPath; action = other.action; acl = other.acl
        details = other.details; made = other.made; origin = other.origin
    }

    /// What `record` was built from, as a derivative to render again: its recorded pipeline,
    /// source (read from its bucket's folder in `manifest`, where its recorded digest must still
    /// be), dependencies, engine and encoder, written to the file it recorded. Nil when that
    /// cannot be rendered (no recorded folder, a source bucket no longer in the manifest, a
    /// pipeline that no longer parses). Its action key is the record's, computed again: rendering
    /// it proves a file Derive's only if the bytes come out the same.
    public static func recorded(_ record: OutputRecord, in manifest: Manifest) -> Derivative? {
        guard !record.folder.isEmpty, let (name, key) = PathKey.split(record.source), let bucket = manifest.bucket(named: name),
              let pipeline = try? Pipeline.parse(record.pipeline) else { return nil }
        let recipe = Recipe(outputFolder: record.folder, rule: record.rule, bucketPath: bucket.path, style: record.style, values: [:],
                            pipeline: pipeline, canonical: record.pipeline, engine: record.engine, encoder: record.encoder)
        let origin = Origin(source: record.source, sourcePath: bucket.path + "/" + key, format: "", digest: record.sourceDigest)
        return Derivative(output: record.path, outputPath: record.file, recipe: recipe, origin: origin,
                          acl: BucketACL(rawValue: record.acl) ?? .private, dependencies: record.dependencies)
    }

    /// The same derivative under another output name (a `{hash}` name resolved); shares its recipe and source.
    public func renamed(output: String, outputPath: String) -> Derivative {
        Derivative(renaming: self, output: output, outputPath: outputPath)
    }

    /// With `{hash}` resolved for bytes whose SHA-256 is `digest`; unchanged without `{hash}`.
    public func named(digest: String) -> Derivative {
        guard let hashed else { return self }
        let key = hashed.key(digest: digest)
        return renamed(output: PathKey.bucket(of: output) + "/" + key, outputPath: outputFolder + "/" + key)
    }

    public static func == (a: Derivative, b: Derivative) -> Bool {
        // Paths by their bytes (`PathKey`): `café.jpg` in NFC and in NFD are two files.
        a === b || (PathKey.same(a.output, b.output) && PathKey.same(a.outputPath, b.outputPath)
            && PathKey.same(a.outputFolder, b.outputFolder) && a.rule == b.rule
            && PathKey.same(a.source, b.source) && PathKey.same(a.sourcePath, b.sourcePath) && PathKey.same(a.bucketPath, b.bucketPath) && a.style == b.style
            && a.values == b.values && a.pipeline == b.pipeline && a.acl == b.acl && a.sourceFormat == b.sourceFormat
            && a.components == b.components && a.action == b.action && a.hashed == b.hashed)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(output); hasher.combine(outputPath); hasher.combine(action)
    }

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

/// One input that cannot be used (a source that cannot be read, a missing watermark object):
/// it fails only the outputs that need it, the rest of the build goes on.
public struct PlanFailure: Sendable, Hashable {
    /// The output (`bucket/key`) or, when no output name is known, the source.
    public var subject: String
    public var message: String
    /// How many derivatives a failed source costs, over every rule that takes it (0: an output's
    /// own failure). The planner merges a source's failures under all rules into one and ends its
    /// message with the total ("…, 4 derivatives not built").
    public var derivatives: Int
    /// The source (`bucket/key`) an output's own failure belongs to (a missing watermark object),
    /// so the build names it once per source as it names a bad source (attack 36a's L1); nil for a
    /// source's failure.
    public var source: String?
    /// A failed source's outputs (every rule's that takes it), so build, plan and explain name
    /// them (attack 53c's F4); empty for an output's own failure.
    public var outputs: [FailedOutput] = []
    public init(subject: String, message: String, derivatives: Int = 0, source: String? = nil) {
        self.subject = subject; self.message = message; self.derivatives = derivatives; self.source = source
    }

    /// How many derivatives it leaves unbuilt: its output, or the source's total.
    public var notBuilt: Int { source != nil ? 1 : derivatives }
}

/// A problem that stops a plan: two derivatives writing one path, a file Derive did not write.
public struct PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// The symbolic link (as displayed) an output's path leads through: the plan says it once
    /// for all the outputs below it (attack 39b's M2: one line per output before).
    public var throughLink: String?
    public var description: String { message }
    public init(message: String, throughLink: String? = nil) {
        self.message = message
        self.throughLink = throughLink
    }
}

/// Expands rules × source objects × recipes into derivatives.
struct Expansion {
    let manifest: Manifest
    let disk: any Disk
    let digests: ContentDigests
    let identity: EngineIdentity
    /// The manifest's byte limit, as the build's renderer applies it to a source's size.
    var byteLimit: Limits {
        Limits(maxBytes: manifest.limits.bytes, setBy: .manifest)
    }
    /// Outputs the state knows about: never taken as sources.
    let knownOutputs: PathSet
    /// Whether another manifest records or writes a name narrowing would give: it never gives
    /// one of those (`settleNarrowedNames`). Nil: none does.
    var nameTaken: (@Sendable (NarrowedName) -> Bool)? = nil

    /// What every source of one rule shares: held once per rule, so a task is a reference and a key.
    final class RuleContext: Sendable {
        let rule: Rule
        let ruleName: String
        let sourceBucket: Bucket
        let targetBucket: Bucket
        let variants: [Rule.Variant]
        let canonicals: [String]
        /// The engine identity's text, built once per plan (it showed in profiles per source).
        let engine: String
        /// Each variant as its derivatives share it (by index), unless a narrow source changes it.
        let recipes: [Derivative.Recipe]
        /// The manifest's one definition of ACLs (compiled once per plan): each output's ACL.
        let acls: EffectiveACL

        init(rule: Rule, ruleName: String, sourceBucket: Bucket, targetBucket: Bucket, variants: [Rule.Variant],
             canonicals: [String], engine: String, encoder: String, acls: EffectiveACL) {
            self.acls = acls
            self.rule = rule; self.ruleName = ruleName; self.sourceBucket = sourceBucket; self.targetBucket = targetBucket
            self.variants = variants; self.canonicals = canonicals; self.engine = engine
            recipes = zip(variants, canonicals).map { variant, canonical in
                Derivative.Recipe(outputFolder: targetBucket.path, rule: ruleName, bucketPath: sourceBucket.path, style: variant.style,
                                  values: variant.values, pipeline: variant.pipeline, canonical: canonical, engine: engine, encoder: encoder)
            }
        }

        /// The shared recipe of variant `index`, or a new one when narrowing changed it for a source.
        /// `canonical` is `variant.pipeline.canonical` (as `narrowing` gives it), and pipelines are
        /// equal exactly when their canonical texts are: comparing the pipelines too built both
        /// texts again for every derivative, a twentieth of an edited source's plan (issue 15).
        func recipe(_ index: Int, variant: Rule.Variant, canonical: String) -> Derivative.Recipe {
            assert(canonical == variant.pipeline.canonical, "recipe(_:variant:canonical:) takes the variant's own canonical text")
            let shared = recipes[index]
            if canonical == shared.canonical, variant.style == shared.style, variant.values == shared.values {
                return shared
            }
            return Derivative.Recipe(outputFolder: shared.outputFolder, rule: shared.rule, bucketPath: shared.bucketPath, style: variant.style,
                                     values: variant.values, pipeline: variant.pipeline, canonical: canonical, engine: shared.engine,
                                     encoder: shared.encoder)
        }
    }

    /// One source under one rule: the unit of work planned in parallel.
    struct Task: Sendable {
        let context: RuleContext
        let key: String
        /// The source's absolute path, made once and shared by the stat cache, the derivatives and `sources`.
        let path: String
        var rule: Rule { context.rule }
        var ruleName: String { context.ruleName }
        var sourceBucket: Bucket { context.sourceBucket }
        var targetBucket: Bucket { context.targetBucket }
        var variants: [Rule.Variant] { context.variants }
        var canonicals: [String] { context.canonicals }
        var engine: String { context.engine }
    }

    struct Result {
        var derivatives: [Derivative]
        var errors: [PlanError]
        var failures: [PlanFailure]
        /// Sources that could not be read: their recorded outputs are kept, not deleted.
        var failedSources: PathSet
        /// Outputs that could not be planned (a missing dependency): kept, not deleted.
        var blockedOutputs: PathSet
        /// Folders (`bucket/key`) a rule's pattern would descend into that are symbolic links
        /// or cannot be read: the recorded outputs of sources below them are kept, not deleted.
        var failedFolders: [String] = []
        /// Every file a rule's `from` takes as a source (absolute paths): never deleted or overwritten.
        var sources: PathSet = []
    }

    /// Each rule's context and its source bucket's listing, as the full and the edited-source
    /// expansions both take them: every bucket listed once, the catalogue and engine made once.
    struct RuleScopes {
        typealias Listing = (keys: [String], others: [(key: String, kind: String)])
        private let expansion: Expansion
        private let catalogue: [String: Style]
        private let engine: String
        private let acls: EffectiveACL
        private var listings: [String: Listing] = [:]

        init(_ expansion: Expansion) {
            self.expansion = expansion
            catalogue = expansion.manifest.catalogue
            acls = EffectiveACL(expansion.manifest)
            engine = expansion.identity.engine
        }

        /// Nil when the rule names a bucket the manifest does not declare (the validator says so).
        mutating func scope(of rule: Rule) throws -> (listing: Listing, context: RuleContext)? {
            let manifest = expansion.manifest
            guard let sourceBucket = manifest.bucket(named: rule.sourceBucket),
                  let targetBucket = manifest.bucket(named: rule.targetBucket) else { return nil }
            let listing: Listing
            if let listed = listings[sourceBucket.name] {
                listing = listed
            } else {
                listing = expansion.disk.entries(inFolder: sourceBucket.path, skipping: [manifest.stateFolder]) ?? ([], [])
                listings[sourceBucket.name] = listing
            }
            let variants = try rule.variants(catalogue: catalogue)
            let context = RuleContext(rule: rule, ruleName: rule.planName, sourceBucket: sourceBucket, targetBucket: targetBucket,
                                      variants: variants, canonicals: variants.map(\.pipeline.canonical), engine: engine,
                                      encoder: expansion.identity.encoder, acls: acls)
            return (listing, context)
        }
    }

    func derivatives() throws -> Result {
        var tasks: [Task] = []
        var scopes = RuleScopes(self)
        // Entries a rule's pattern names that are not regular files: each fails its own derivatives.
        var notFiles: [PlanFailure] = []
        var failedFolders: [String] = []
        for rule in manifest.rules {
            guard let (listing, context) = try scopes.scope(of: rule) else { continue }
            let sourceBucket = context.sourceBucket
            let keys = listing.keys
            for other in listing.others {
                // The key "" is the bucket's own folder: every rule reading the bucket descends into it.
                let subject = other.key.isEmpty ? sourceBucket.name : "\(sourceBucket.name)/\(other.key)"
                let named = !other.key.isEmpty && rule.takes(other.key, kind: other.kind)
                let hiding = DiskObjectLister.hidesFiles(other.kind) && (other.key.isEmpty || rule.descends(into: other.key, kind: other.kind))
                guard named || hiding else { continue }
                // A folder whose name is not UTF-8 may be one renamed so since the last build: the
                // sources it holds had other names then. Every output of a source gone from its
                // bucket is kept while it is there (when in doubt, never delete).
                // So may a file renamed so (`café.jpg` → `caf<E9>.jpg`).
                let notUTF8 = DiskObjectLister.isNotUTF8(other.kind)
                if hiding || notUTF8, !failedFolders.contains(notUTF8 ? sourceBucket.name : subject) {
                    failedFolders.append(notUTF8 ? sourceBucket.name : subject)
                }
                let message: String
                if hiding, other.kind == DiskObjectLister.notUTF8Folder {
                    message = Self.notUTF8FolderMessage(other.key, bucket: sourceBucket.name)
                } else if other.kind == DiskObjectLister.notUTF8 {
                    message = "cannot read the source: its file name is not valid UTF-8 (bytes shown as \\xHH), and the outputs of every source gone from bucket '\(sourceBucket.name)' are kept while it is there (it may have been renamed so); rename it to UTF-8, or exclude it in 'exclude:'"
                } else if hiding, !named || other.kind == DiskObjectLister.linkToFolder || other.kind == DiskObjectLister.mountPoint {
                    message = Self.hiddenFilesMessage(other.key, kind: other.kind)
                } else if other.kind == DiskObjectLister.pathTooLong {
                    // A file the pattern names (or a folder named like one) whose path the system cannot take.
                    message = "cannot read the source: its path is longer than the system allows (\(DiskObjectLister.longestPath) bytes); \(Self.shortenPath), or exclude it in 'exclude:'"
                } else {
                    message = "cannot read the source: not a regular file (\(other.kind)); move it, or exclude it in 'exclude:'"
                }
                var failure = PlanFailure(subject: subject, message: message, derivatives: named ? context.variants.count : 0)
                if named { failure.outputs = Self.failedOutputs(context, key: other.key) }
                notFiles.append(failure)
            }
            for key in keys where rule.includes(key) && !knownOutputs.contains("\(sourceBucket.name)/\(key)") {
                tasks.append(Task(context: context, key: key, path: sourceBucket.path + "/" + key))
            }
        }
        let stats = digests.stats(tasks.map(\.path))
        var expanded = try parallelMap(Array(tasks.indices)) { [tasks] index in try self.expanding(tasks[index], stat: stats.map { $0[index] }) }
        try settleNarrowedNames(tasks, &expanded, stats: stats)

        // Merged in task order, so which of two colliding derivatives is named first is stable.
        var byOutput: PathDictionary<Derivative> = [:]
        var byHashedShape: PathDictionary<Derivative> = [:]
        var errors: [PlanError] = []
        var failures: [PlanFailure] = []
        var failedSources: PathSet = []
        var blockedOutputs: PathSet = []
        // A source fails once, whatever number of rules take it: one failure, their derivatives summed.
        var sourceFailure: PathDictionary<Int> = [:]
        func sourceFailed(_ failure: PlanFailure) {
            if let at = sourceFailure[failure.subject] {
                failures[at].derivatives += failure.derivatives
                failures[at].outputs += failure.outputs
            } else {
                sourceFailure[failure.subject] = failures.count
                failures.append(failure)
                failedSources.insert(failure.subject)
            }
        }
        for failure in notFiles { sourceFailed(failure) }
        // Two sources naming one output (`a.jpg` and `a.png` under `{name}`): only their colliding
        // derivatives fail, one failure per source naming the other; the rest builds (attack 39b's M2).
        var collisions: [(output: String, first: Derivative, second: Derivative)] = []
        for (task, result) in zip(tasks, expanded) {
            let derivatives = result.derivatives
            for failure in result.failures {
                if PathKey.same(failure.subject, "\(task.sourceBucket.name)/\(task.key)") {
                    sourceFailed(failure)
                } else {
                    failures.append(failure)
                    blockedOutputs.insert(failure.subject)
                }
            }
            for derivative in derivatives {
                if let other = byOutput[derivative.output] {
                    if !PathKey.same(other.source, derivative.source) { collisions.append((derivative.output, other, derivative)); continue }
                    errors.append(PlanError(message: "\(derivative.output) would be written twice: by \(other.recipe) from \(other.source) and by \(derivative.recipe) from \(derivative.source); give them different 'to' paths"))
                    continue
                }
                // `{hash}` and `{hash:10}` between the same text: one name whenever the bytes agree.
                if let hashed = derivative.hashed {
                    let bucket = PathKey.bucket(of: derivative.output)
                    let shape = "\(bucket)/\(hashed.prefix)\u{0}\(hashed.length)\u{0}\(hashed.suffix)"
                    if let other = byHashedShape[shape] {
                        if !PathKey.same(other.source, derivative.source) {
                            collisions.append(("\(bucket)/\(hashed.prefix){hash:\(hashed.length)}\(hashed.suffix)", other, derivative))
                            continue
                        }
                        errors.append(PlanError(message: "\(bucket)/\(hashed.prefix){hash:\(hashed.length)}\(hashed.suffix) would be written twice when their bytes agree: by \(other.recipe) from \(other.source) (\(other.output)) and by \(derivative.recipe) from \(derivative.source) (\(derivative.output)); give them different 'to' paths"))
                        continue
                    }
                    byHashedShape[shape] = derivative
                }
                byOutput[derivative.output] = derivative
            }
        }
        failures += Self.collisionFailures(collisions, byOutput: &byOutput, blocked: &blockedOutputs)
        for index in failures.indices where failures[index].derivatives > 0 {
            let count = failures[index].derivatives
            failures[index].message += ", \(count) derivative\(count == 1 ? "" : "s") not built"
        }
        // Sorted by key, then looked up: sorting the derivatives themselves copies large structs.
        return Result(derivatives: byOutput.keys.sorted().map { byOutput[$0]! }, errors: errors, failures: failures,
                      failedSources: failedSources, blockedOutputs: blockedOutputs, failedFolders: failedFolders,
                      sources: PathSet(tasks.map(\.path)))
    }

    /// A name narrowing gave (`a-800.webp` for `w=960` of an 800 px source) that another
    /// derivative also writes (another rule's `a-800.webp`, another variant's), or that another
    /// manifest's state or lock records (`nameTaken`): the variants it stands for are planned as
    /// written instead (`a-960.webp`, an 800 px image), and that source's rule expanded again, until
    /// no renamed output shares its name (attack 46's M2: the planner's own rename collided with
    /// another rule's output, and every build of the site was refused). Only renames are undone,
    /// so this ends; a clash of names as written is the usual error.
    func settleNarrowedNames(_ tasks: [Task], _ expanded: inout [Expanded], stats: [FileStat?]?) throws {
        var asWritten: [Int: Set<Int>] = [:]
        while expanded.contains(where: { !$0.renamed.isEmpty }) {
            // How many derivatives write each renamed name (a hash lookup per derivative).
            var names: PathSet = []
            for result in expanded { for renamed in result.renamed { names.insert(renamed.output) } }
            var claims: PathDictionary<Int> = [:]
            for result in expanded {
                for derivative in result.derivatives where names.contains(derivative.output) {
                    claims[derivative.output] = (claims[derivative.output] ?? 0) + 1
                }
            }
            var again: [Int] = []
            for (index, result) in expanded.enumerated() {
                for renamed in result.renamed where (claims[renamed.output] ?? 0) > 1 || nameTaken?(renamed.name) == true {
                    asWritten[index, default: []].formUnion(renamed.variants)
                    if again.last != index { again.append(index) }
                }
            }
            guard !again.isEmpty else { return }
            let redone = try parallelMap(again) { [tasks, asWritten] index in
                try self.expanding(tasks[index], stat: stats.map { $0[index] }, asWritten: asWritten[index] ?? [])
            }
            for (index, result) in zip(again, redone) { expanded[index] = result }
        }
    }

    /// One failure per source among `collisions` (an output, or a `{hash}` name's shape, two
    /// sources' derivatives would both write): its colliding derivatives leave `byOutput` and are
    /// held (`blocked`: a recorded file stays, never rebuilt from either source nor deleted), the
    /// message names the other source(s), one such output and how to tell them apart.
    static func collisionFailures(_ collisions: [(output: String, first: Derivative, second: Derivative)],
                                  byOutput: inout PathDictionary<Derivative>, blocked: inout PathSet) -> [PlanFailure] {
        guard !collisions.isEmpty else { return [] }
        var order: [String] = []
        var outputs: [String: [String]] = [:], others: [String: [String]] = [:], counted: [String: Set<String>] = [:]
        var slashless: Set<String> = []
        for collision in collisions {
            for (mine, theirs) in [(collision.first, collision.second), (collision.second, collision.first)] {
                if let kept = byOutput[mine.output], PathKey.same(kept.source, mine.source), kept.recipe == mine.recipe {
                    byOutput[mine.output] = nil
                }
                blocked.insert(mine.output)
                if outputs[mine.source] == nil { order.append(mine.source) }
                if counted[mine.source, default: []].insert(mine.output).inserted { outputs[mine.source, default: []].append(collision.output) }
                if !(others[mine.source] ?? []).contains(theirs.source) { others[mine.source, default: []].append(theirs.source) }
                if folderRunsIntoName(mine.source, theirs.source) { slashless.insert(mine.source) }
            }
        }
        return order.map { source in
            let names = outputs[source] ?? []
            let shown = names.count > 1 ? "\(names[0]) and \(names.count - 1) more" : names.first ?? "?"
            let with = (others[source] ?? []).joined(separator: " and ")
            if slashless.contains(source) {
                // `to: out/{dir}{name}.webp`: {dir} ends with no '/', so src/d0/a.jpg and src/d0a.jpg
                // both give out/d0a.webp (attack 49c's finding 3); the extension is not the cause.
                return PlanFailure(subject: source,
                                   message: "its outputs would be written over those of \(with) (\(shown)): 'to' puts the file name right after {dir}, which ends with no '/', "
                                       + "so a folder and a file name run together; write {dir}/ in 'to' (an empty {dir} leaves no '/' behind), exclude one of them in 'exclude:', or name the outputs by {key} in 'to'",
                                   derivatives: counted[source]?.count ?? 0)
            }
            return PlanFailure(subject: source,
                               message: "its outputs would be written over those of \(with) (\(shown)): their names differ only in what 'to' leaves out "
                                   + "(such as the extension, which {name} drops); exclude one of them in 'exclude:', or name the outputs by {key} in 'to' (it keeps the extension)",
                               derivatives: counted[source]?.count ?? 0)
        }
    }

    /// Whether the sources `a` and `b` (`bucket/key`) of one bucket, in different folders, give
    /// the same folder and name run together (`d0/a.jpg` and `d0a.jpg`: `{dir}{name}` is `d0a`
    /// for both), so a `to:` with no '/' after `{dir}` is what makes their outputs collide.
    static func folderRunsIntoName(_ a: String, _ b: String) -> Bool {
        func parts(_ source: String) -> (bucket: Substring, folder: String, joined: String)? {
            guard let slash = source.firstIndex(of: "/") else { return nil }
            let key = String(source[source.index(after: slash)...])
            let folder = PathTemplate.folder(ofKey: key)
            let file = folder.isEmpty ? key : String(key.dropFirst(folder.count + 1))
            return (source[..<slash], folder, folder + (file as NSString).deletingPathExtension)
        }
        guard let x = parts(a), let y = parts(b) else { return false }
        return x.bucket == y.bucket && x.folder != y.folder && x.joined == y.joined
    }

    /// What to do about a path longer than the system allows: no permission makes it readable.
    static let shortenPath = "shorten the path (shorter folder names, or move the folder nearer the bucket's folder)"

    /// Why a folder a rule's pattern would descend into gives no sources (a symbolic link, a
    /// folder that cannot be read, a path longer than the system allows), and what to do.
    /// Why a rule fails on a folder whose name is not UTF-8, and the fix.
    static func notUTF8FolderMessage(_ key: String, bucket: String) -> String {
        "is \(DiskObjectLister.notUTF8Folder) (bytes shown as \\xHH), so its files cannot be keys; they are not sources, and the outputs "
            + "of every source gone from bucket '\(bucket)' are kept while it is there (it may have been renamed so): rename it to UTF-8 "
            + "(e.g. convmv -r -f latin1 -t utf-8 --notest), or exclude it in 'exclude:' (\(key)/**)"
    }

    static func hiddenFilesMessage(_ key: String, kind: String) -> String {
        let what = kind == DiskObjectLister.linkToFolder ? "is a symbolic link (to a folder), which Derive never follows inside a bucket"
            : kind == DiskObjectLister.linkToNothing ? "is a symbolic link to nothing, which Derive never follows inside a bucket"
            : kind == DiskObjectLister.mountPoint ? "is \(kind); Derive does not walk, write or delete through mount points inside a bucket"
            : "is \(kind)"
        let fix = kind.hasPrefix("a symbolic link") ? "put the folder itself there"
            : kind == DiskObjectLister.mountPoint ? "unmount it, or make the mounted folder a bucket of its own"
            : kind == DiskObjectLister.pathTooLong ? shortenPath : "make it readable"
        // The bucket's own folder cannot be excluded: only made readable.
        guard !key.isEmpty else { return "\(what); its files are not sources, and the outputs of sources that were in it are kept: \(fix)" }
        return "\(what); its files are not sources, and the outputs of sources that were below it are kept: \(fix), or exclude it in 'exclude:' (\(key)/**)"
    }

    /// Why the build would refuse the source at `path` without reading it whole: a file over the
    /// manifest's byte limit (the render's own check and message, from the size), or one whose
    /// first bytes are no image format Derive reads (unless its digest is known already, where
    /// `expanding` checks the recorded format). Nil when it may be read and hashed.
    func refusedUnread(_ path: String, stat: FileStat) -> String? {
        do { try byteLimit.checkBytes(Int(clamping: stat.size)) } catch { return "\(error)" }
        guard digests.cached(path, stat: stat) == nil, let head = try? disk.head(path, bytes: Self.sniffBytes),
              ContentDigests.sniff(head).isEmpty else { return nil }
        return Self.notAnImage
    }

    /// The bytes `ContentDigests.sniff` looks at.
    static let sniffBytes = 12
    static let notAnImage = "the source is not an image in a supported format (JPEG, PNG, GIF, WebP, TIFF, HEIC, AVIF, BMP)"

    /// An output a narrower source renamed (`-800` for `w=960`), and the variants it stands for.
    struct RenamedOutput: Sendable {
        var name: NarrowedName
        var variants: [Int]
        var output: String { name.output }
    }

    /// One task's derivatives and failures, and which of its outputs narrowing renamed.
    struct Expanded: Sendable {
        var derivatives: [Derivative]
        var failures: [PlanFailure]
        var renamed: [RenamedOutput] = []
    }

    /// The derivatives of one source under one rule, with the variants `asWritten` planned as
    /// written (`narrowing`). `stat`: the source's stat when it was taken ahead (`ContentDigests.stats`).
    func expanding(_ task: Task, stat: FileStat?? = nil, asWritten: Set<Int> = []) throws -> Expanded {
        let key = task.key
        let sourcePath = task.path
        let source = "\(task.sourceBucket.name)/\(key)"
        // A source that fails costs every derivative of this rule (the count is added when merged),
        // each named (attack 53c's F4).
        let all = task.variants.count
        func failedSource(_ message: String) -> Expanded {
            var failure = PlanFailure(subject: source, message: message, derivatives: all)
            failure.outputs = Self.failedOutputs(task.context, key: key)
            return Expanded(derivatives: [], failures: [failure])
        }
        let found: ContentDigests.Content?
        do {
            let taken: FileStat?
            if case .some(let given) = stat { taken = given } else { taken = disk.stat(sourcePath) }
            // What the build refuses before reading the file is refused here the same way, never
            // read or hashed whole (attack 20's M4: a 4 GB file a glob matched was hashed on
            // every plan, and again after every touch): over the byte limit from its size, not an
            // image from its first bytes.
            if identity.refusesNonImages, let taken, let refusal = refusedUnread(sourcePath, stat: taken) {
                return failedSource(refusal)
            }
            found = try digests.content(of: sourcePath, stat: taken)
        } catch {
            return failedSource("cannot read the source: \(error)")
        }
        guard let content = found else {
            // Listed but not a regular file reachable inside the bucket (a link, say): say why.
            guard disk.exists(sourcePath) else { return Expanded(derivatives: [], failures: []) }
            return failedSource("cannot read the source: \(Self.readError(disk, sourcePath))")
        }
        // What the build would refuse, seen from the bytes read for the digest: the source fails
        // here, as it would there, and its outputs are kept as they are.
        if identity.refusesNonImages, content.format.isEmpty {
            return failedSource(Self.notAnImage)
        }
        if identity.refusesNonImages, let truncation = content.truncation {
            return failedSource("the source image is corrupt or truncated: \(truncation)")
        }
        let origin = Derivative.Origin(source: source, sourcePath: sourcePath, format: content.format, digest: content.digest)
        var derivatives: [Derivative] = []
        var errors: [PlanFailure] = []
        var unservable: (character: Unicode.Scalar, output: String)?
        var unservableCount = 0
        var overlong: (problem: ObjectKey.Problem, output: String)?
        var overlongCount = 0
        var unplaceable: (problem: KeyPlaceProblem, output: String)?
        var unplaceableCount = 0
        let narrowing = Self.narrowing(task.variants, canonicals: task.canonicals, sourceWidth: content.width, asWritten: asWritten)
        var renamed: [RenamedOutput] = []
        variants: for index in task.variants.indices {
            guard let (variant, canonical) = narrowing.planned[index] else { continue }
            var values = Self.templateValues(key: key, variant: variant, format: content.format)
            // `{hash}` is known only after rendering: rendered as NUL (never in a key) and split there.
            var hashed: HashedName?
            let outputKey: String
            if let length = task.rule.to.hashLength {
                values["hash"] = "\u{0}"
                let marked = task.rule.to.render(values)
                let cut = marked.firstIndex(of: "\u{0}") ?? marked.endIndex
                let name = HashedName(prefix: String(marked[..<cut]), suffix: String(marked[cut...].dropFirst()),
                                      length: length, placeholder: task.rule.to.hashPlaceholder)
                hashed = name
                outputKey = name.logicalKey
            } else {
                outputKey = task.rule.to.render(values)
            }
            let output = "\(task.targetBucket.name)/\(outputKey)"
            // A key with a control character is one `derive serve` refuses (`ObjectKey`): not built.
            if let control = Self.controlCharacter(in: outputKey) {
                unservable = unservable ?? (control, output)
                unservableCount += 1
                continue variants
            }
            // Nor one longer than a key may be (attack 13b's finding 5: built, indexed, then refused
            // by serve); a `{hash:N}` key is measured with its N characters.
            let length = (hashed?.sampleKey ?? outputKey).utf8.count
            if length > ObjectKey.maxBytes {
                overlong = overlong ?? (.tooLong(length), output)
                overlongCount += 1
                continue variants
            }
            // Checked once the variables are filled in, not only as the template: a style, or a
            // source's name, of `..` made a key that climbs out of the bucket (attack 38a's H1); a
            // part longer than a file name may be failed only in the build (38a's M3).
            if let problem = KeyPlaceProblem.of(hashed?.sampleKey ?? outputKey) {
                unplaceable = unplaceable ?? (problem, output)
                unplaceableCount += 1
                continue variants
            }
            var dependencies: [String] = []
            for dependency in variant.pipeline.dependencies {
                switch dependency {
                case .object(let objectKey):
                    let objectPath = task.sourceBucket.path + "/" + objectKey
                    if let digest = (try? digests.content(of: objectPath))?.digest {
                        dependencies.append("object:\(objectKey)=\(digest)")
                    } else {
                        let message: String
                        if let link = SymbolicLinks.first(on: objectPath, below: task.sourceBucket.path) {
                            // Not "does not exist": it is there, behind a link Derive does not follow (attack 15's F7).
                            let linkKey = PathKey.below(task.sourceBucket.path, link) ?? link
                            message = "the watermark object '\(objectKey)' in bucket '\(task.sourceBucket.name)' is or passes through a symbolic link ('\(linkKey)'), which Derive never follows inside a bucket: make it a file (or a folder) of the bucket"
                        } else {
                            let why = disk.exists(objectPath) ? "cannot be read (\(Self.readError(disk, objectPath)))" : "does not exist"
                            message = "the watermark object '\(objectKey)' \(why) in bucket '\(task.sourceBucket.name)'"
                        }
                        errors.append(PlanFailure(subject: output, message: message, source: source))
                        continue variants
                    }
                case .font(let font, let text, let size):
                    // The font file's digest when it is installed; rendering reports a missing font.
                    if let file = identity.fontFile(font), let digest = try digests.content(of: file)?.digest {
                        let drawing = identity.textDrawing(TextToDraw(type: font, text: text, size: size))
                        // Text no face can draw fails the build: the plan says so, as validate does (attack 50b's M3).
                        if let problem = drawing.undrawable {
                            errors.append(PlanFailure(subject: output, message: problem, source: source))
                            continue variants
                        }
                        // The font of `type` as drawn at this size when the text uses it; else as fontconfig matches it.
                        let primary = drawing.faces.first { $0.file == file }?.rendering ?? identity.fontRendering(font)
                        dependencies.append("font:\(font)=\(digest)" + (primary.map { " (" + Self.itemValue($0) + ")" } ?? ""))
                        // Each face drawing characters the font lacks counts as the font does.
                        for fallback in drawing.faces where fallback.file != file {
                            let digest = fallback.file.isEmpty ? "unknown" : ((try? digests.content(of: fallback.file))??.digest ?? "missing")
                            dependencies.append(Self.fallbackItem(family: fallback.family, type: font) + "=\(digest) (\(Self.itemValue(fallback.rendering)))")
                        }
                        // The locale and FreeType's properties the text is drawn under (attack 50b's H4, M1).
                        dependencies.append(Self.textEnvironmentItem + "=" + Self.itemValue(drawing.environment))
                    } else {
                        dependencies.append("font:\(font)")
                    }
                }
            }
            if let group = narrowing.renamed[index] {
                renamed.append(RenamedOutput(name: NarrowedName(output: output, file: task.targetBucket.path + "/" + outputKey, folder: task.targetBucket.path,
                                                                key: outputKey, sourcePath: sourcePath, sourceFormat: content.format), variants: group))
            }
            derivatives.append(Derivative(output: output, outputPath: task.targetBucket.path + "/" + outputKey,
                                          recipe: task.context.recipe(index, variant: variant, canonical: canonical), origin: origin,
                                          acl: task.context.acls.derivative(task.rule, sourceBucket: task.sourceBucket, sourceKey: key,
                                                                            outputKey: hashed?.sampleKey ?? outputKey),
                                          dependencies: dependencies.joined(separator: ","), hashed: hashed))
        }
        if let (character, output) = unservable {
            errors.append(PlanFailure(subject: source, message: Self.unservableMessage(character, output: output), derivatives: unservableCount))
        }
        if let (problem, output) = overlong {
            errors.append(PlanFailure(subject: source, message: Self.overlongMessage(problem, output: output), derivatives: overlongCount))
        }
        if let (problem, output) = unplaceable {
            errors.append(PlanFailure(subject: source, message: problem.message(output: output), derivatives: unplaceableCount))
        }
        return Expanded(derivatives: derivatives, failures: errors, renamed: renamed)
    }

    /// The values a rule's `to:` is rendered with for the source `key` (of image format `format`,
    /// "" when unknown) and `variant`, but `{hash}`.
    static func templateValues(key: String, variant: Rule.Variant, format: String) -> [String: String] {
        let name = (key as NSString).lastPathComponent
        var ext = format.isEmpty ? (name as NSString).pathExtension.lowercased() : format
        if variant.pipeline.answersJSON {
            ext = "json"
        } else if let output = variant.pipeline.outputFormat, output != .gif || format == "gif" {
            ext = output.fileExtension
        }
        var values = variant.values
        values["key"] = key
        values["dir"] = PathTemplate.folder(ofKey: key)
        values["name"] = (name as NSString).deletingPathExtension
        values["ext"] = ext
        if let style = variant.style { values["style"] = style }
        return values
    }

    /// The first control character (C0 or DEL) in `key`: `ObjectKey` refuses it, so `derive serve`
    /// could never answer for an output of that name (OSS's own rules would store it; Derive's
    /// serve does not, and a browser strips tabs and newlines from any URL it is given).
    static func controlCharacter(in key: String) -> Unicode.Scalar? {
        key.unicodeScalars.first { $0.value < 0x20 || $0.value == 0x7F }
    }

    static func unservableMessage(_ character: Unicode.Scalar, output: String) -> String {
        let names: [UInt32: String] = [0x09: "a tab", 0x0A: "a line feed", 0x0D: "a carriage return"]
        let hex = String(character.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        return "its outputs' names would hold \(names[character.value] ?? "a control character") (\(code)), as in \(TerminalText.escaped(output)); derive serve refuses "
            + "keys with control characters, so the built site could not serve them: rename the source, or exclude it in 'exclude:'"
    }

    /// Why an output key longer than `ObjectKey.maxBytes` is not built: `derive serve` (and OSS)
    /// refuse such a key, so the built site could not serve it. The output is shown shortened.
    static func overlongMessage(_ problem: ObjectKey.Problem, output: String) -> String {
        let shown = output.utf8.count <= 120 ? output : String(output.prefix(60)) + "…" + String(output.suffix(50))
        return "its outputs' keys would be too long for an object key (\(problem)), as in \(shown); derive serve refuses such keys, "
            + "so the built site could not serve them: shorten the rule's 'to:' (fewer or shorter folders, no {dir}), or move or rename the source, or exclude it in 'exclude:'"
    }

    /// The variants as planned (`Narrowing`).
    struct Narrowing {
        var planned: [(Rule.Variant, String)?]
        var renamed: [Int: [Int]] = [:]
    }

    /// The variants as planned for a source `sourceWidth` px wide (0: unknown), by index; nil for one
    /// another stands for. A `resize,w_N` (lfit or mfit, `limit_1`, width only, before any other
    /// pixel action) with N at or above the source's width draws the source at its own width, so
    /// variants that differ only in such an N would write byte-identical files under several names
    /// (`-960.avif` and `-1600.avif`, both 900 px): the first stands for all, with the width set to
    /// the source's in its pipeline and in each matrix value that named it (`-900.avif`). Outputs
    /// no longer planned are orphans like any other.
    ///
    /// Only where the renamed variants would be one recipe: a matrix value used again further down
    /// the chain (`crop,w_{w}`, `circle,r_{w}`) makes variants that share the new name differ in
    /// their recipes, and those are planned as written (attack 45a's M1: `-960` and `-1100` of an
    /// 800 px source both became `-800` with two recipes, a collision that stopped every build).
    ///
    /// `renamed`: by the index of each variant that stands for others under a new name (`-800`
    /// for `w=960`), the variants whose matrix values that name changed (the one standing, and
    /// those it stands for). Variants in `asWritten` are planned as written (`-960`, drawn at the
    /// source's width all the same): another rule, or another manifest, writes the new name
    /// (attack 46's M2: `settleNarrowedNames`).
    static func narrowing(_ variants: [Rule.Variant], canonicals: [String], sourceWidth: Int, asWritten: Set<Int> = []) -> Narrowing {
        var result: [(Rule.Variant, String)?] = zip(variants, canonicals).map { ($0, $1) }
        guard sourceWidth > 0 else { return Narrowing(planned: result) }
        // No width covers the source (the usual case: sources wider than every resize): nothing
        // narrows, and the names and recipes below, made for each variant, would go unused
        // (issue 15: per source of an edited plan's kept sources).
        guard variants.indices.contains(where: { !asWritten.contains($0) && coveredWidth(variants[$0], sourceWidth: sourceWidth) != nil })
        else { return Narrowing(planned: result) }
        func name(_ style: String?, _ values: [String: String]) -> String {
            ([style ?? ""] + values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "\u{0}")
        }
        // Each variant as narrowed (nil: its width is not covered), and the recipes each output
        // name would then stand for.
        var candidates: [Rule.Variant?] = []
        var recipes: [String: Set<String>] = [:]
        for (index, variant) in variants.enumerated() {
            guard !asWritten.contains(index), coveredWidth(variant, sourceWidth: sourceWidth) != nil,
                  let values = narrowedValues(variant, sourceWidth: sourceWidth) else {
                candidates.append(nil)
                recipes[name(variant.style, variant.values), default: []].insert(canonicals[index])
                continue
            }
            let pipeline = variant.pipeline.resizingSource(to: sourceWidth)
            candidates.append(Rule.Variant(style: variant.style, values: values, pipeline: pipeline))
            recipes[name(variant.style, values), default: []].insert(pipeline.canonical)
        }
        var seen: [String: Int] = [:]
        var renamed: [Int: [Int]] = [:]
        for (index, candidate) in candidates.enumerated() {
            guard let candidate, recipes[name(candidate.style, candidate.values)]?.count == 1 else { continue }
            let key = name(candidate.style, candidate.values) + "\u{0}" + candidate.pipeline.canonical
            let changed = candidate.values != variants[index].values
            if let standing = seen[key] {
                result[index] = nil
                if changed, renamed[standing] != nil { renamed[standing]?.append(index) }
                continue
            }
            seen[key] = index
            if changed { renamed[index] = [index] }
            result[index] = (candidate, candidate.pipeline.canonical)
        }
        return Narrowing(planned: result, renamed: renamed)
    }

    /// N when the variant's leading `resize,w_N` (`Pipeline.sourceWidthResize`) leaves a source
    /// `sourceWidth` wide at its own width, and the variant may be drawn so under the width's
    /// name (`Rule.Variant.widthNames`); nil otherwise (planned as written).
    static func coveredWidth(_ variant: Rule.Variant, sourceWidth: Int) -> Int? {
        guard variant.widthNames != nil, let width = variant.pipeline.sourceWidthResize, width >= sourceWidth else { return nil }
        return width
    }

    /// The variant's matrix values with those naming its width (`Rule.Variant.widthNames`) set
    /// to the source's; nil when it is not narrowed.
    static func narrowedValues(_ variant: Rule.Variant, sourceWidth: Int) -> [String: String]? {
        guard let names = variant.widthNames else { return nil }
        var values = variant.values
        for name in names { values[name] = String(sourceWidth) }
        return values
    }

    /// The dependency item of the environment text is drawn under (`TextDrawing.environment`).
    static let textEnvironmentItem = "text-environment"

    /// `value` as part of one dependency item: items are joined with ',', so a ',' in a pattern
    /// (`fontfeatures=liga off,kern off`) split the item and garbled the plan's reason (attack
    /// 50b's L2). '%' and ',' are percent-encoded, so distinct values stay distinct.
    static func itemValue(_ value: String) -> String {
        value.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ",", with: "%2C")
    }

    /// The dependency item of the fallback face `family` of the font of `type`, before its `=`:
    /// `fallback-font:TYPE:FAMILY` (a type has no ':'; ',' and '=' separate items, so a family
    /// has none). `Planner.dependencyChange` names it.
    static func fallbackItem(family: String, type: String) -> String {
        "fallback-font:\(type):" + String(family.map { $0 == "," || $0 == "=" ? " " : $0 })
    }

    /// Why reading `path` fails, in the disk's words.
    static func readError(_ disk: any Disk, _ path: String) -> String {
        do { _ = try disk.read(path); return "not a regular file" } catch { return "\(error)" }
    }
}
