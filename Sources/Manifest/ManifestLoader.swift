import Foundation
import Confinement
import ProcessLanguage

/// Reads a manifest (and its includes) into the typed model, collecting every problem as a
/// diagnostic with its file:line:column instead of stopping at the first.
public struct ManifestLoader {
    public static let currentVersion = 1
    /// A rule's matrix gives at most this many combinations (outputs per source and style).
    public static let maxMatrixCombinations = 1000
    static let topLevelKeys = ManifestSchema.topLevelNames
    static let includableKeys = ManifestSchema.includable

    public var lister: any ObjectLister
    public var budget = YAMLBudget()
    /// Whole-manifest checks that list the buckets (leak guard, empty rules, collisions). A
    /// caller that already knows the inputs are unchanged since a validated run may skip them.
    public var crossChecks = true
    /// Whether the other projects around the buckets are looked for (`NeighbourProjects`): off
    /// when one such project is itself read, so two never read each other for ever.
    public var neighbourChecks = true
    /// Whether a font family is installed (fontconfig, from the engine): watermark fonts other
    /// than the seven OSS names are checked with it. Nil: not checked here (rendering reports).
    public var fontInstalled: (@Sendable (String) -> Bool)?
    /// The family fontconfig draws instead of an installed one that `fontInstalled` refused (a
    /// strong alias): the error then says so rather than "not installed". Nil: not asked.
    public var fontSubstitute: (@Sendable (String) -> String?)?
    /// Why a watermark's text cannot be drawn in the font of its type (`text`, `type`), nil when
    /// it can: asked of the render worker by `derive validate`. Nil: not checked (the build refuses
    /// such a text when it renders).
    public var textDrawable: (@Sendable (_ text: String, _ type: String) -> String?)?
    /// Reads the root manifest and its includes from elsewhere than the disk (`derive diff` reads
    /// them from a git revision): given the path relative to the root manifest's folder (the
    /// root's own file name for the root) and the byte limit, which the reader must enforce.
    /// Nil: read from the disk. The text is checked as strictly either way.
    public var fileReader: (@Sendable (_ relativePath: String, _ maxBytes: Int) throws -> Data)?

    public init(lister: any ObjectLister = DiskObjectLister()) {
        self.lister = lister
    }

    public struct Result: Sendable {
        public var manifest: Manifest?
        public var diagnostics: Diagnostics
        /// Every manifest file read (the root and its includes), absolute.
        public var files: [String] = []
    }

    /// Loads and validates `path`. The manifest is nil only when the file cannot be read or
    /// parsed at all; otherwise it holds every part that was valid.
    /// One `ReadSnapshot` for the whole load: its checks and the neighbours they load read each
    /// file, folder listing, real path and the mount table once.
    public func load(_ path: String) -> Result {
        ReadSnapshot.during { loadNow(path) }
    }

    /// Another project's manifest loaded as the neighbour searches read it (no cross checks, no
    /// neighbours of its own), once per `ReadSnapshot` (attack 52c's 1: a no-op beside 64 sibling
    /// projects loaded each twice, as a neighbour and as a nearby project, and each load checked
    /// it against every sibling again: two thirds of the no-op's time). Inside one snapshot the
    /// second load read the very answers the first did, so it is the same result.
    public static func neighbourLoad(_ path: String) -> Result {
        ReadSnapshot.answer("neighbour load", path) {
            var loader = ManifestLoader()
            loader.crossChecks = false
            loader.neighbourChecks = false
            return loader.load(path)
        }
    }

    private func loadNow(_ path: String) -> Result {
        var state = LoadState()
        state.fontInstalled = fontInstalled
        state.fontSubstitute = fontSubstitute
        state.textDrawable = textDrawable
        state.fileReader = fileReader
        // From a git revision the root is read by name (links there are refused); on disk a link
        // beside the manifest is the file it leads to.
        let root = fileReader == nil ? ManifestLink.projectManifest(path) : path
        let absolute = URL(literalFilePath: root).standardizedFileURL.path
        let display = path
        state.loadRoot(file: absolute, display: display, budget: budget)
        guard state.rootLoaded else { return Result(manifest: nil, diagnostics: state.diagnostics, files: state.loadedFiles.sorted()) }
        var manifest = state.finish(rootFile: absolute, display: display)
        // Control files (manifest, includes, lock, state, index) against buckets and outputs:
        // cheap (a few stats), and a safety rule, so it runs even when cross checks are skipped.
        var controls = ControlFiles(manifest: manifest, outlines: state.ruleOutlines, locations: state.controlLocations,
                                    rootLocation: SourceLocation(file: display, line: 1, column: 1))
        controls.checksNeighbours = neighbourChecks
        controls.validate(into: &state.diagnostics)
        if crossChecks {
            // The index against other projects' control files: it loads them, without cross checks (no recursion).
            controls.validateIndexBesideOtherProjects(into: &state.diagnostics)
            controls.validateControlFilesOutsideNeighbourBuckets(into: &state.diagnostics)
            if neighbourChecks { controls.validateControlFilesOutsideNearbyProjects(into: &state.diagnostics) }
            Validator(manifest: manifest, rules: state.ruleSyntax, outlines: state.ruleOutlines, lister: lister)
                .validate(into: &state.diagnostics)
        }
        manifest.styles.sort { $0.name < $1.name }
        return Result(manifest: manifest, diagnostics: state.diagnostics, files: state.loadedFiles.sorted())
    }
}

/// What is known of a rule even when parts of it are wrong, so whole-manifest checks (the leak
/// guard, outputs over control files) report alongside the rule's other errors.
struct RuleOutline {
    var label: String
    var location: SourceLocation
    var sourceBucket: String?
    var from: Glob?
    var exclude: [Glob]
    var targetBucket: String?
    var to: PathTemplate?
    var toLocation: SourceLocation
    var toOffset: Int
    /// `acl:` was written (even if misspelt): the author chose, so the leak guard stays quiet.
    var hasExplicitACL: Bool
    /// Object keys the rule's pipelines read besides the source (watermark images), from every
    /// recipe that parsed.
    var watermarkKeys: [String]
    /// Output path alternatives per recipe that parsed (nil: none known, treat as any).
    var outputPatterns: [LoosePattern]

    func includes(_ key: String) -> Bool {
        guard let from else { return false }
        return from.matches(key) && !exclude.contains { $0.matches(key) }
    }
}

/// What a rule looked like in YAML, kept for positions during validation.
struct RuleSyntax {
    var rule: Rule
    var toLocation: SourceLocation
    var toOffset: Int
    var processLocation: SourceLocation?
}

struct LoadState {
    var diagnostics = Diagnostics()
    var rootLoaded = false
    var includeStack: [String] = []
    var loadedFiles: Set<String> = []

    var version: Int?
    var buckets: [Bucket] = []
    var styles: [Style] = []
    var styleNodes: [(name: String, node: YAMLNode, file: String)] = []
    /// The errors each style's own checks reported (positions in `diagnostics.all`): said once, at
    /// the style, never again at the rules that use it, and naming them (`nameStyleUsers`).
    var styleErrors: [String: [Int]] = [:]
    /// The rules that use each style (`styles:` or `process: style/NAME`), as `rule 'x'` or
    /// `rule at derive.yaml:12`, in manifest order.
    var styleUsers: [String: [String]] = [:]
    /// Each rule's node, with its file's folder and its file relative to the root manifest's folder.
    var ruleNodes: [(node: YAMLNode, folder: String, relative: String)] = []
    var ruleSyntax: [RuleSyntax] = []
    var region = "local"
    var accessKeys: [AccessKey] = []
    var limits = ManifestLimits()
    var indexNode: YAMLNode?
    var stateNode: YAMLNode?
    var lockNode: YAMLNode?
    var serve = ServeSettings()
    var catalogNode: YAMLNode?
    var fontInstalled: (@Sendable (String) -> Bool)?
    var fontSubstitute: (@Sendable (String) -> String?)?
    var textDrawable: (@Sendable (String, String) -> String?)?
    var ruleOutlines: [RuleOutline] = []
    var controlLocations = ControlLocations()
    /// The root manifest's folder: includes are read below it only, never through a link.
    var rootFolder: ConfinedFolder?
    var rootFolderPath = ""
    /// Loaded files in order (the root first), absolute.
    var fileOrder: [String] = []
    /// Includes named that could not be read from the disk, absolute (`Manifest.unreadIncludes`).
    var unreadIncludes: [String] = []
    var fileReader: (@Sendable (_ relativePath: String, _ maxBytes: Int) throws -> Data)?

    // MARK: Files and includes

    /// Reads the manifest the user named (a link to it is fine: the user chose the file).
    mutating func loadRoot(file: String, display: String, budget: YAMLBudget) {
        let here = SourceLocation(file: display, line: 1, column: 1)
        let data: Data
        if let fileReader {
            do {
                data = try fileReader(URL(literalFilePath: file).lastPathComponent, budget.maxBytes)
            } catch {
                diagnostics.error(here, "cannot read manifest \(display): \(error)")
                return
            }
            rootFolderPath = URL(literalFilePath: file).deletingLastPathComponent().path
            parse(data, file: file, relative: URL(literalFilePath: file).lastPathComponent, folderKey: "", display: display, here: here, isRoot: true, budget: budget)
            return
        }
        do {
            data = try ConfinedFolder.readRegularFile(atPath: file, maxBytes: budget.maxBytes)
        } catch {
            switch error {
            case .notFound: diagnostics.error(here, "cannot read manifest \(display): no such file")
            case .notRegularFile: diagnostics.error(here, "\(display) is a folder or another non-file, not a manifest file")
            default: diagnostics.error(here, "cannot read manifest \(display): \(error)")
            }
            return
        }
        let folder = URL(literalFilePath: file).deletingLastPathComponent().path
        rootFolderPath = folder
        rootFolder = try? ConfinedFolder(path: folder)
        parse(data, file: file, relative: URL(literalFilePath: file).lastPathComponent, folderKey: "", display: display, here: here, isRoot: true, budget: budget)
    }

    /// Resolves `relative` (as written in the file whose folder key is `folderKey`) to a key below
    /// the root manifest's folder and reads it there with `openat`/`O_NOFOLLOW`: absolute paths,
    /// `..` above the root and links are errors at the include's line.
    mutating func loadInclude(_ relative: String, folderKey: String, display: String, at item: YAMLNode, budget: YAMLBudget) {
        let here = item.location
        if relative.utf8.first == UInt8(ascii: "/") {
            diagnostics.error(here, "include '\(relative)' is an absolute path; includes are read only inside the manifest's folder",
                              hint: "copy the file next to the manifest and include it by a relative path")
            return
        }
        var segments = folderKey.isEmpty ? [] : folderKey.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for segment in relative.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment.utf8.elementsEqual("..".utf8) {
                guard !segments.isEmpty else {
                    diagnostics.error(here, "include '\(relative)' leaves the manifest's folder; includes are read only inside it")
                    return
                }
                segments.removeLast()
                continue
            }
            segments.append(String(segment))
        }
        let key: ObjectKey
        do {
            key = try ObjectKey(segments.joined(separator: "/"))
        } catch {
            diagnostics.error(here, "include '\(relative)' is not a file below the manifest's folder: \(error)")
            return
        }
        let file = rootFolderPath + "/" + key.string
        if includeStack.contains(file) {
            let cycle = (includeStack.drop { $0 != file } + [file]).map { URL(literalFilePath: $0).lastPathComponent }
            diagnostics.error(here, "include cycle: \(cycle.joined(separator: " → "))")
            return
        }
        if loadedFiles.contains(file) { return }
        if let fileReader {
            let data: Data
            do {
                data = try fileReader(key.string, budget.maxBytes)
            } catch {
                diagnostics.error(here, "cannot read manifest \(display): \(error)")
                return
            }
            parse(data, file: file, relative: key.string, folderKey: segments.dropLast().joined(separator: "/"), display: display, here: here, isRoot: false, budget: budget)
            return
        }
        guard let rootFolder else {
            diagnostics.error(here, "cannot read manifest \(display): the manifest's folder cannot be opened")
            return
        }
        let data: Data
        do {
            data = try rootFolder.read(key, maxBytes: budget.maxBytes)
        } catch let error as ConfinementError {
            unreadIncludes.append(file)
            switch error {
            case .notFound: diagnostics.error(here, "cannot read manifest \(display): no such file")
            case .symbolicLink:
                diagnostics.error(here, "include '\(relative)' is or passes through a symbolic link; includes are read only inside the manifest's folder, without following links")
            case .notRegularFile: diagnostics.error(here, "\(display) is a folder or another non-file, not a manifest file")
            default: diagnostics.error(here, "cannot read manifest \(display): \(error)")
            }
            return
        } catch {
            unreadIncludes.append(file)
            diagnostics.error(here, "cannot read manifest \(display): \(error)")
            return
        }
        let parentKey = segments.dropLast().joined(separator: "/")
        parse(data, file: file, relative: key.string, folderKey: parentKey, display: display, here: here, isRoot: false, budget: budget)
    }

    /// `relative`: the file's path relative to the root manifest's folder (the root's own file
    /// name for the root), which names its unnamed rules whatever path the user typed.
    mutating func parse(_ data: Data, file: String, relative: String, folderKey: String, display: String, here: SourceLocation, isRoot: Bool, budget: YAMLBudget) {
        let root: YAMLNode?
        do {
            root = try YAMLLoader.load(data, file: display, budget: budget)
        } catch let error as YAMLError {
            diagnostics.error(error.location, error.message)
            // An include that does not parse is followed as one that cannot be read is: the save
            // that fixes it is a change (attack 42c's M2: the watch never saw it).
            if !isRoot { unreadIncludes.append(file) }
            return
        } catch {
            diagnostics.error(here, "cannot load \(display): \(error)")
            if !isRoot { unreadIncludes.append(file) }
            return
        }
        if isRoot { rootLoaded = true }
        loadedFiles.insert(file)
        fileOrder.append(file)
        includeStack.append(file)
        defer { includeStack.removeLast() }
        guard let root, !root.isNull else {
            diagnostics.error(here, "\(display) is empty; a manifest starts with 'version: 1'")
            return
        }
        // Something that is not a manifest (a binary, /etc/passwd, a list) gets one error that
        // never repeats its contents.
        let allowed = isRoot ? ManifestLoader.topLevelKeys : ManifestLoader.includableKeys
        guard case .mapping(let pairs) = root.kind,
              pairs.contains(where: { pair in pair.key.scalar.map { ManifestLoader.topLevelKeys.contains($0) } ?? false }) else {
            diagnostics.error(here, "\(display) is not a Derive manifest: it must be a YAML mapping with keys such as \(allowed.prefix(5).joined(separator: ", "))")
            return
        }
        // `x-` keys are the author's (anchors to reuse with `*name`), ignored as Compose does.
        guard let entries = mapping(root, "the manifest")?.filter({ !$0.key.hasPrefix(ManifestSchema.extensionPrefix) }) else { return }
        let folder = URL(literalFilePath: file).deletingLastPathComponent().path
        checkKeys(entries, allowed: allowed,
                  context: isRoot ? "at the top of the manifest" : "in an included file (only version, include, buckets, styles and derivatives)")

        if let node = entries.first(where: { $0.key == "version" })?.value {
            if let value = int(node, "version", in: 0...Int.max) {
                if value != ManifestLoader.currentVersion {
                    diagnostics.error(node.location, "unsupported manifest version \(value); this Derive reads version \(ManifestLoader.currentVersion)")
                } else if isRoot {
                    version = value
                }
            }
        } else if isRoot {
            diagnostics.error(root.location, "missing 'version: 1' at the top of the manifest")
        }

        for (key, node, _) in entries {
            switch key {
            case "include":
                let items: [YAMLNode]
                if case .sequence(let list) = node.kind { items = list } else { items = [node] }
                for item in items {
                    guard let relative = string(item, "include") else { continue }
                    // Shown as written, relative to the including file as it was shown.
                    let displayFolder = (display as NSString).deletingLastPathComponent
                    let shown = relative.hasPrefix("/") || displayFolder.isEmpty ? relative
                        : (displayFolder as NSString).appendingPathComponent(relative)
                    loadInclude(relative, folderKey: folderKey, display: shown, at: item, budget: budget)
                }
            case "buckets": loadBuckets(node, folder: folder)
            case "styles": loadStyles(node, file: display)
            case "derivatives":
                guard case .sequence(let list) = node.kind else {
                    diagnostics.error(node.location, "'derivatives' must be a list of rules, got \(node.kindName)")
                    continue
                }
                for item in list { ruleNodes.append((item, folder, relative)) }
            case "region":
                if let value = string(node, "region") {
                    if value.isEmpty || !value.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }) {
                        diagnostics.error(node.location, "region '\(value)' must be lowercase letters, digits and '-', e.g. cn-hangzhou")
                    } else {
                        region = value
                    }
                }
            case "access_keys": loadAccessKeys(node)
            case "limits": loadLimits(node)
            case "index": indexNode = node
            case "state": stateNode = node
            case "lock": lockNode = node
            case "serve": loadServe(node)
            case "catalog": catalogNode = node
            default: break
            }
        }
    }

    // MARK: Sections

    mutating func loadBuckets(_ node: YAMLNode, folder: String) {
        guard let entries = mapping(node, "'buckets'") else { return }
        for (name, value, keyNode) in entries {
            if !Bucket.isValidName(name) {
                diagnostics.error(keyNode.location, "bucket name '\(name)' is invalid: use 3-63 lowercase letters, digits and '-', not starting or ending with '-'")
            }
            if let existing = buckets.first(where: { $0.name == name }) {
                diagnostics.error(keyNode.location, "bucket '\(name)' is already declared at \(existing.location.file):\(existing.location.line)")
                continue
            }
            guard let fields = mapping(value, "bucket '\(name)'") else { continue }
            checkKeys(fields, allowed: ManifestSchema.bucketNames, context: "in bucket '\(name)'")
            guard let pathNode = fields.first(where: { $0.key == "path" })?.value else {
                diagnostics.error(value.location, "bucket '\(name)' needs a 'path' (a folder relative to this file)")
                continue
            }
            guard let declared = string(pathNode, "path") else { continue }
            let absolute = URL(literalFilePath: declared, relativeTo: URL(literalFilePath: folder + "/")).standardizedFileURL.path
            var acl = BucketACL.private
            if let aclNode = fields.first(where: { $0.key == "acl" })?.value,
               let parsed = choice(aclNode, "acl", BucketACL.self) {
                acl = parsed
            }
            var objects: [ObjectACLRule] = []
            if let objectsNode = fields.first(where: { $0.key == "objects" })?.value {
                if case .sequence(let list) = objectsNode.kind {
                    for item in list {
                        guard let rule = mapping(item, "an object ACL rule") else { continue }
                        checkKeys(rule, allowed: ManifestSchema.objectRule.names, context: "in an object ACL rule")
                        guard let matchNode = rule.first(where: { $0.key == "match" })?.value,
                              let pattern = string(matchNode, "match") else {
                            diagnostics.error(item.location, "an object ACL rule needs 'match' (a glob such as \"press/**\")")
                            continue
                        }
                        guard let aclNode = rule.first(where: { $0.key == "acl" })?.value else {
                            diagnostics.error(item.location, "the object ACL rule for '\(pattern)' needs 'acl' (default, private, public-read or public-read-write)")
                            continue
                        }
                        guard let glob = glob(pattern, at: matchNode), let objectACL = choice(aclNode, "acl", ObjectACL.self) else { continue }
                        objects.append(ObjectACLRule(match: glob, acl: objectACL, location: item.location))
                    }
                } else {
                    diagnostics.error(objectsNode.location, "'objects' must be a list of {match, acl} rules, got \(objectsNode.kindName)")
                }
            }
            var delimiters: [Character] = []
            if let delimiterNode = fields.first(where: { $0.key == "style_delimiters" })?.value {
                let items: [YAMLNode]
                if case .sequence(let list) = delimiterNode.kind { items = list } else { items = [delimiterNode] }
                for item in items {
                    guard let text = string(item, "style_delimiters") else { continue }
                    if text.count == 1, let character = text.first, "-_/!".contains(character) {
                        delimiters.append(character)
                    } else {
                        diagnostics.error(item.location, "style delimiter '\(text)' must be one of - _ / !")
                    }
                }
            }
            var website: Website?
            if let websiteNode = fields.first(where: { $0.key == "website" })?.value {
                website = self.website(websiteNode, bucket: name)
            }
            var url: String?
            if let urlNode = fields.first(where: { $0.key == "url" })?.value, let text = string(urlNode, "url") {
                if let problem = Bucket.urlProblem(text) {
                    diagnostics.error(urlNode.location, "bucket '\(name)': url '\(text)' \(problem)")
                } else {
                    url = text
                }
            }
            buckets.append(Bucket(name: name, declaredPath: declared, path: absolute, acl: acl, objects: objects,
                                  styleDelimiters: delimiters, location: keyNode.location, pathLocation: pathNode.location,
                                  website: website, url: url))
        }
    }

    mutating func loadStyles(_ node: YAMLNode, file: String) {
        guard let entries = mapping(node, "'styles'") else { return }
        for (name, value, keyNode) in entries {
            if !StyleName.isValid(name) {
                diagnostics.error(keyNode.location, "style name '\(Self.shown(name))' is invalid: use 1-63 letters, digits, '_', '-' or '.'")
                continue
            }
            // `{style}` fills a path segment in: `.` and `..` name other folders (attack 38a's H1).
            if name == "." || name == ".." {
                diagnostics.error(keyNode.location, "style name '\(name)' cannot be used: {style} fills it in as a path segment, where '\(name)' names another folder; rename the style")
                continue
            }
            if let existing = styleNodes.first(where: { $0.name == name }) {
                diagnostics.error(keyNode.location, "style '\(name)' is already defined at \(existing.node.location.file):\(existing.node.location.line)")
                continue
            }
            styleNodes.append((name, value, file))
        }
        // Parse after all names are known is not needed: a style may not name another style.
        for (name, value, _) in styleNodes where !styles.contains(where: { $0.name == name }) {
            let before = diagnostics.all.count
            defer {
                let errors = (before..<diagnostics.all.count).filter { diagnostics.all[$0].severity == .error }
                if !errors.isEmpty { styleErrors[name, default: []] += errors }
            }
            if case .sequence = value.kind {
                // The list form: compiled to the OSS string, errors at the item or value that caused them.
                guard let compiled = StyleList.compile(value, style: name, into: &diagnostics) else { continue }
                guard let pipeline = listProcess(compiled, style: name) else { continue }
                checkFonts(pipeline, at: value, context: "style '\(name)'")
                checkTexts(pipeline, context: "style '\(name)'") { index in
                    compiled.actions.indices.contains(index) ? compiled.actions[index].parameters["text"] ?? compiled.actions[index].location : value.location
                }
                styles.append(Style(name: name, process: compiled.text, pipeline: pipeline, location: value.location))
                continue
            }
            guard let text = string(value, "style '\(name)'") else { continue }
            if text.hasPrefix("style/") {
                diagnostics.error(value.location, "style '\(name)' names another style ('\(text)'); write the image/ chain itself")
                continue
            }
            guard let pipeline = process(text, at: value, context: "style '\(name)'") else { continue }
            checkFonts(pipeline, at: value, context: "style '\(name)'")
            checkTexts(pipeline, context: "style '\(name)'") { _ in value.location }
            styles.append(Style(name: name, process: text, pipeline: pipeline, location: value.location))
        }
        // Names that failed to parse are still known (so rules naming them are not also errors).
    }

    mutating func loadAccessKeys(_ node: YAMLNode) {
        guard case .sequence(let list) = node.kind else {
            diagnostics.error(node.location, "'access_keys' must be a list of {id, secret_env}, got \(node.kindName)")
            return
        }
        for item in list {
            guard let fields = mapping(item, "an access key") else { continue }
            for (key, value, keyNode) in fields where ["secret", "secret_key", "access_key_secret", "key_secret"].contains(key) {
                _ = value
                diagnostics.error(keyNode.location, "an access key secret is written into the manifest; remove '\(key)' and name an environment variable with 'secret_env' instead")
            }
            checkKeys(fields.filter { !["secret", "secret_key", "access_key_secret", "key_secret"].contains($0.key) },
                      allowed: ManifestSchema.accessKey.names, context: "in an access key")
            guard let idNode = fields.first(where: { $0.key == "id" })?.value, let id = string(idNode, "id"), !id.isEmpty else {
                diagnostics.error(item.location, "an access key needs 'id'")
                continue
            }
            guard let envNode = fields.first(where: { $0.key == "secret_env" })?.value, let env = string(envNode, "secret_env") else {
                diagnostics.error(item.location, "access key '\(id)' needs 'secret_env', the name of the environment variable holding its secret")
                continue
            }
            guard let first = env.first, first.isLetter || first == "_",
                  env.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                diagnostics.error(envNode.location, "'\(env)' is not an environment variable name (letters, digits and '_')")
                continue
            }
            if accessKeys.contains(where: { $0.id == id }) {
                diagnostics.error(idNode.location, "access key '\(id)' is declared twice")
                continue
            }
            accessKeys.append(AccessKey(id: id, secretEnv: env, location: item.location))
        }
    }

    mutating func loadLimits(_ node: YAMLNode) {
        guard let fields = mapping(node, "'limits'") else { return }
        checkKeys(fields, allowed: ManifestSchema.limits.names, context: "in 'limits'")
        for (key, value, _) in fields {
            // A deadline over a day would overflow the render timers: one day is the documented maximum.
            let number = int(value, "limits.\(key)", in: key == "render_seconds" ? 0...86_400 : 1...Int(Int64.max / 4))
            switch key {
            case "bytes": limits.bytes = number
            case "side": limits.side = number
            case "pixels": limits.pixels = number
            case "output_side": limits.outputSide = number
            case "render_seconds": limits.renderSeconds = number
            case "work": limits.work = number
            case "memory": limits.memory = number
            default: break
            }
        }
    }

    /// `catalog: {samples: [bucket/key, ...]}`: the sources `derive catalog` applies every style to.
    mutating func loadCatalog(_ node: YAMLNode) -> [String] {
        guard let fields = mapping(node, "'catalog'") else { return [] }
        checkKeys(fields, allowed: ManifestSchema.catalog.names, context: "in 'catalog'")
        guard let list = fields.first(where: { $0.key == "samples" })?.value else { return [] }
        guard case .sequence(let items) = list.kind else {
            diagnostics.error(list.location, "'catalog.samples' must be a list of bucket/key, got \(list.kindName)")
            return []
        }
        if items.count > ManifestSchema.maxCatalogSamples {
            diagnostics.error(list.location, "'catalog.samples' lists \(items.count) sources; at most \(ManifestSchema.maxCatalogSamples)")
            return []
        }
        var samples: [String] = []
        for item in items {
            guard let text = string(item, "a catalog sample"), let (bucket, key) = bucketPath(text, at: item, what: "catalog.samples") else { continue }
            let sample = bucket + "/" + key
            if samples.contains(sample) { diagnostics.error(item.location, "catalog sample '\(sample)' is listed twice"); continue }
            samples.append(sample)
        }
        return samples
    }

    mutating func loadServe(_ node: YAMLNode) {
        guard let fields = mapping(node, "'serve'") else { return }
        checkKeys(fields, allowed: ManifestSchema.serve.names, context: "in 'serve'")
        var anonymousUploads: (Int, YAMLNode)?, anonymousBytes: (Int, YAMLNode)?, anonymousAppendables: (Int, YAMLNode)?
        for (key, value, _) in fields {
            switch key {
            case "cache_max_bytes":
                if let number = int(value, "serve.cache_max_bytes", in: 0...Int(Int64.max / 4)) { serve.cacheMaxBytes = number }
            case "render_queue":
                if let number = int(value, "serve.render_queue", in: 0...1_000_000) { serve.renderQueue = number }
            case "head_timeout":
                if let number = int(value, "serve.head_timeout", in: 1...3_600) { serve.headTimeout = number }
            case "idle_timeout":
                if let number = int(value, "serve.idle_timeout", in: 1...3_600) { serve.idleTimeout = number }
            case "body_timeout":
                if let number = int(value, "serve.body_timeout", in: 1...3_600) { serve.bodyTimeout = number }
            case "send_timeout":
                if let number = int(value, "serve.send_timeout", in: 1...3_600) { serve.sendTimeout = number }
            case "max_connections":
                if let number = int(value, "serve.max_connections", in: 1...1_000_000) { serve.maxConnections = number }
            case "multipart_max_uploads":
                if let number = int(value, "serve.multipart_max_uploads", in: 0...100_000) { serve.multipartMaxUploads = number }
            case "multipart_max_bytes":
                if let number = int(value, "serve.multipart_max_bytes", in: 0...Int(Int64.max / 4)) { serve.multipartMaxBytes = number }
            case "multipart_max_anonymous_uploads":
                if let number = int(value, "serve.multipart_max_anonymous_uploads", in: 0...100_000) {
                    serve.multipartMaxAnonymousUploads = number
                    anonymousUploads = (number, value)
                }
            case "multipart_max_anonymous_bytes":
                if let number = int(value, "serve.multipart_max_anonymous_bytes", in: 0...Int(Int64.max / 4)) {
                    serve.multipartMaxAnonymousBytes = number
                    anonymousBytes = (number, value)
                }
            case "appendable_max_objects":
                if let number = int(value, "serve.appendable_max_objects", in: 0...1_000_000) { serve.appendableMaxObjects = number }
            case "appendable_max_anonymous":
                if let number = int(value, "serve.appendable_max_anonymous", in: 0...1_000_000) {
                    serve.appendableMaxAnonymous = number
                    anonymousAppendables = (number, value)
                }
            case "multipart_expiry_hours":
                if let number = int(value, "serve.multipart_expiry_hours", in: 1...87_600) { serve.multipartExpiryHours = number }
            case "list_max_entries":
                if let number = int(value, "serve.list_max_entries", in: ServeSettings.listEntriesRange) { serve.listMaxEntries = number }
            case "list_max_concurrent":
                if let number = int(value, "serve.list_max_concurrent", in: ServeSettings.listConcurrencyRange) { serve.listMaxConcurrent = number }
            default: break
            }
        }
        // Anonymous callers' share of the multipart budgets stays below the totals, so signed
        // callers always keep some (attack 9: `multipart_max_uploads: 8` alone left anonymous
        // callers 20 of 8 slots). Set explicitly at or above its total: an error naming both;
        // left out: a fifth of the uploads and a quarter of the bytes, at most the defaults.
        let defaults = ServeSettings()
        if let (number, node) = anonymousUploads {
            if number > 0, number >= serve.multipartMaxUploads {
                diagnostics.error(node.location, "serve.multipart_max_anonymous_uploads (\(number)) must be smaller than serve.multipart_max_uploads (\(serve.multipartMaxUploads)), so that signed callers always keep uploads of their own (0 refuses anonymous multipart uploads)")
            }
        } else {
            serve.multipartMaxAnonymousUploads = min(defaults.multipartMaxAnonymousUploads, serve.multipartMaxUploads / 5)
        }
        if let (number, node) = anonymousBytes {
            if number > 0, number >= serve.multipartMaxBytes {
                diagnostics.error(node.location, "serve.multipart_max_anonymous_bytes (\(number)) must be smaller than serve.multipart_max_bytes (\(serve.multipartMaxBytes)), so that signed callers always keep room of their own (0 refuses anonymous parts)")
            }
        } else {
            serve.multipartMaxAnonymousBytes = min(defaults.multipartMaxAnonymousBytes, serve.multipartMaxBytes / 4)
        }
        // The same for appendable objects (attack 10, B): left out, half of the total.
        if let (number, node) = anonymousAppendables {
            if number > 0, number >= serve.appendableMaxObjects {
                diagnostics.error(node.location, "serve.appendable_max_anonymous (\(number)) must be smaller than serve.appendable_max_objects (\(serve.appendableMaxObjects)), so that signed callers always keep appendable objects of their own (0 refuses new appendable objects to anonymous callers)")
            }
        } else {
            serve.appendableMaxAnonymous = serve.appendableMaxObjects / 2
        }
    }

    // MARK: Finishing: rules need every bucket and style.

    mutating func finish(rootFile: String, display: String) -> Manifest {
        let folder = URL(literalFilePath: rootFile).deletingLastPathComponent().path
        let known = Set(styleNodes.map(\.name))
        let catalogue = Dictionary(styles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var names: [String: SourceLocation] = [:]
        for (node, _, relative) in ruleNodes {
            guard let syntax = rule(node, file: relative, knownStyles: known, catalogue: catalogue) else { continue }
            if let name = syntax.rule.name {
                if let previous = names[name] {
                    diagnostics.error(node.location, "rule name '\(name)' is already used at \(previous.file):\(previous.line)")
                }
                names[name] = node.location
            }
            ruleSyntax.append(syntax)
        }
        nameStyleUsers()

        var index: (bucket: String, path: String)?
        if let node = indexNode, let text = string(node, "index") {
            if let (bucket, path) = bucketPath(text, at: node, what: "index") {
                if (try? PathTemplate(path))?.escapeProblem != nil || path.contains("{") || (try? ObjectKey(path)) == nil {
                    diagnostics.error(node.location, "index path '\(path)' must be a plain path inside bucket '\(bucket)'")
                } else {
                    if !path.hasSuffix(".json") { diagnostics.warning(node.location, "the index is JSON; '\(path)' does not end in .json") }
                    index = (bucket, path)
                }
            }
        }
        // Each manifest owns its state and lock, named after its file: site.yaml → .derive/site/, site.lock.
        let base = URL(literalFilePath: folder + "/")
        let stem = URL(literalFilePath: rootFile).deletingPathExtension().lastPathComponent
        var stateFolder = URL(literalFilePath: ".derive/" + stem, relativeTo: base).standardizedFileURL.path
        if let node = stateNode, let text = string(node, "state") {
            if text.isEmpty {
                diagnostics.error(node.location, "'state' must name a folder, e.g. .derive/\(stem)")
            } else {
                stateFolder = URL(literalFilePath: text, relativeTo: base).standardizedFileURL.path
            }
        }
        var lockFile = URL(literalFilePath: stem + ".lock", relativeTo: base).standardizedFileURL.path
        if let node = lockNode, let text = string(node, "lock") {
            if text.isEmpty || text.hasSuffix("/") {
                diagnostics.error(node.location, "'lock' must name a file, e.g. \(stem).lock")
            } else {
                lockFile = URL(literalFilePath: text, relativeTo: base).standardizedFileURL.path
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: lockFile, isDirectory: &isFolder), isFolder.boolValue {
                    diagnostics.error(node.location, "'lock' names \(text), which is a folder; name a file, e.g. \(stem).lock")
                }
            }
        }
        controlLocations.state = stateNode?.location
        controlLocations.lock = lockNode?.location
        controlLocations.index = indexNode?.location
        // Read once the buckets are known (a sample names one).
        let catalogSamples = catalogNode.map { loadCatalog($0) } ?? []
        var manifest = Manifest(file: display, version: version ?? ManifestLoader.currentVersion, buckets: buckets, styles: styles,
                        rules: ruleSyntax.map(\.rule), region: region, accessKeys: accessKeys, limits: limits,
                        index: index, stateFolder: stateFolder, lockFile: lockFile, files: fileOrder, serve: serve)
        manifest.catalogSamples = catalogSamples
        manifest.unreadIncludes = unreadIncludes.filter { !loadedFiles.contains($0) }
        return manifest
    }

    /// Each style's errors name the rules that use it: said once, at the style's line.
    mutating func nameStyleUsers() {
        for (style, errors) in styleErrors {
            guard let users = styleUsers[style], !users.isEmpty else { continue }
            let shown = users.count <= 5 ? users : Array(users.prefix(4)) + ["\(users.count - 4) more"]
            let list = shown.count == 1 ? shown[0] : shown.dropLast().joined(separator: ", ") + " and " + shown.last!
            for index in errors { diagnostics.amend(index) { $0 + "; style '\(style)' is used by \(list)" } }
        }
    }

    /// `file`: the rule's file relative to the root manifest's folder (`Rule.manifestFile`).
    mutating func rule(_ node: YAMLNode, file: String, knownStyles: Set<String>, catalogue: [String: Style]) -> RuleSyntax? {
        guard let fields = mapping(node, "a derivative rule") else { return nil }
        checkKeys(fields, allowed: ManifestSchema.ruleNames, context: "in a derivative rule")
        func field(_ key: String) -> YAMLNode? { fields.first { $0.key == key }?.value }
        var ok = true
        let name = field("name").flatMap { string($0, "name") }
        // The index keys a rule's pictures `rule/style` and plans print the name: no `/`, so
        // `g/thumb` cannot be rule `g`'s style `thumb` (attack 15's M5), and nothing that prints
        // as another name (controls, bidi); spaces and accents are fine (attack 16's V8).
        if let name, let nameNode = field("name"), let problem = RuleName.problem(name) {
            diagnostics.error(nameNode.location, "rule name '\(RuleName.shown(name, forPrinter: true))' is invalid: \(problem); a rule name is 1-\(RuleName.maxScalars) "
                              + "characters other than '/', control, invisible format (bidirectional, zero-width) and separator characters, "
                              + "with plain spaces (U+0020) only, none at either end (U+200D only between two emoji, a variation selector only right after one)")
            ok = false
        }
        let label = name.map { "rule '\(Self.shown($0))'" } ?? "the rule at line \(node.location.line)"
        let user = name.map { "rule '\(Self.shown($0))'" } ?? "rule at \(file):\(node.location.line)"
        func useStyle(_ style: String) {
            if styleUsers[style]?.last != user { styleUsers[style, default: []].append(user) }
        }

        var sourceBucket = "", fromGlob: Glob?
        if let fromNode = field("from") {
            if let text = string(fromNode, "from"), let (bucket, pattern) = bucketPath(text, at: fromNode, what: "from") {
                sourceBucket = bucket
                fromGlob = glob(pattern, at: fromNode)
            }
        } else {
            diagnostics.error(node.location, "\(label) needs 'from' (bucket/glob, e.g. photos/**/*.jpg)")
        }
        ok = ok && fromGlob != nil

        var exclude: [Glob] = []
        if let excludeNode = field("exclude") {
            let items: [YAMLNode]
            if case .sequence(let list) = excludeNode.kind { items = list } else { items = [excludeNode] }
            for item in items {
                guard var pattern = string(item, "exclude") else { continue }
                let prefix = (sourceBucket + "/").unicodeScalars
                if !sourceBucket.isEmpty, pattern.unicodeScalars.starts(with: prefix) {
                    pattern = String(pattern.unicodeScalars.dropFirst(prefix.count))
                }
                if let compiled = glob(pattern, at: item) { exclude.append(compiled) }
            }
        }

        var matrix: [MatrixVariable] = []
        // Declared under a name refused at its key: a use of it is not "unknown" as well (attack 39b's L3).
        var refusedNames: Set<String> = []
        if let matrixNode = field("matrix"), let entries = mapping(matrixNode, "'matrix'") {
            var combinations = 1
            for (variable, valuesNode, keyNode) in entries {
                guard variable.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    diagnostics.error(keyNode.location, "matrix variable '\(Self.shown(variable))' must hold only ASCII letters, digits and '_', starting with a letter or '_' (e.g. w or size_2)")
                    refusedNames.insert(variable)
                    ok = false; continue
                }
                guard variable.first.map({ $0.isLetter || $0 == "_" }) == true else {
                    diagnostics.error(keyNode.location, "matrix variable '\(variable)' must start with a letter or '_' (e.g. w\(variable) or _\(variable)); digits may follow")
                    refusedNames.insert(variable)
                    ok = false; continue
                }
                if PathTemplate.builtins.contains(variable) {
                    diagnostics.error(keyNode.location, "matrix variable '\(variable)' shadows the built-in {\(variable)}; choose another name")
                    ok = false; continue
                }
                // `{HASH}` beside `{hash}` reads as the built-in and is not: refused in any case,
                // which lets the JSON Schema refuse `{HASH}` in `to:` too (attack 39b's L2).
                if let builtin = PathTemplate.builtins.first(where: { $0 == variable.lowercased() }) {
                    diagnostics.error(keyNode.location, "matrix variable '\(variable)' differs from the built-in {\(builtin)} only in case; choose another name, e.g. \(builtin)2")
                    refusedNames.insert(variable)
                    ok = false; continue
                }
                guard case .sequence(let list) = valuesNode.kind, !list.isEmpty else {
                    diagnostics.error(valuesNode.location, "matrix variable '\(variable)' needs a non-empty list of values, e.g. [320, 640]")
                    ok = false; continue
                }
                // Refused before the values are read: a list longer than the whole limit
                // cannot fit, and reading it cost time the limit is meant to bound.
                guard list.count <= ManifestLoader.maxMatrixCombinations / combinations else {
                    diagnostics.error(valuesNode.location, "matrix variable '\(variable)' has \(list.count) values; with the variables before it the matrix would make over \(ManifestLoader.maxMatrixCombinations) combinations, the most allowed per rule")
                    ok = false; combinations = 0; break
                }
                var values: [String] = []
                var seen = Set<String>()
                for item in list {
                    guard let value = string(item, "a matrix value") else { ok = false; continue }
                    // On bytes: as Characters, "../" followed by a combining mark has no "/".
                    let bytes = Array(value.utf8)
                    if bytes.isEmpty || bytes.contains(UInt8(ascii: "/")) || bytes.contains(UInt8(ascii: ",")) {
                        diagnostics.error(item.location, "matrix value '\(value)' cannot be empty or contain '/' or ','")
                        ok = false; continue
                    }
                    if bytes == [0x2E] || bytes == [0x2E, 0x2E] {
                        diagnostics.error(item.location, "matrix value '\(value)' would name a '.' or '..' folder where a template puts it between slashes",
                                          hint: "use another value, e.g. 'up'")
                        ok = false; continue
                    }
                    // No object key holds a control character (serve refuses them), and they hide in terminals and logs.
                    if value.unicodeScalars.contains(where: Self.isWrittenControl) {
                        diagnostics.error(item.location, "matrix value '\(value)' contains a control character; \(Self.controlCharacterWhy(value))",
                                          hint: "remove the control character from the value")
                        ok = false; continue
                    }
                    // `0800` beside `800` named two files of the same bytes, and was never taken as a
                    // width to narrow to the source's (attack 15's L4): a number is written as one.
                    if bytes.count > 1, bytes[0] == UInt8(ascii: "0"), bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
                        let digits = value.drop { $0 == "0" }
                        let number = digits.isEmpty ? "0" : String(digits)
                        diagnostics.error(item.location, "matrix value '\(value)' is a number with a leading zero; write it as \(number) "
                                          + "(the value names the outputs: '\(value)' and '\(number)' would name two files of the same bytes)")
                        ok = false; continue
                    }
                    if !seen.insert(value).inserted { diagnostics.warning(item.location, "matrix value '\(value)' is listed twice") ; continue }
                    values.append(value)
                }
                combinations *= max(1, values.count)
                matrix.append(MatrixVariable(name: variable, values: values))
            }
            if combinations > ManifestLoader.maxMatrixCombinations {
                diagnostics.error(matrixNode.location, "the matrix makes \(combinations) combinations; at most \(ManifestLoader.maxMatrixCombinations) are allowed per rule")
                ok = false
            }
        }

        var recipe: Rule.Recipe?
        var processLocation: SourceLocation?
        /// Each recipe's values (matrix and style) and pipeline when it parsed, for the outline.
        var recipes: [(values: [String: String], pipeline: Pipeline?)] = []
        let stylesNode = field("styles"), processNode = field("process")
        if stylesNode != nil, processNode != nil {
            diagnostics.error(processNode!.location, "\(label) has both 'styles' and 'process'; keep one")
            ok = false
        } else if let stylesNode {
            let items: [YAMLNode]
            if case .sequence(let list) = stylesNode.kind { items = list } else { items = [stylesNode] }
            var names: [String] = []
            defer {
                for values in MatrixVariable.combinations(matrix) {
                    for style in names { recipes.append((values.merging(["style": style]) { $1 }, catalogue[style]?.pipeline)) }
                }
            }
            for item in items {
                guard let style = string(item, "a style name") else { ok = false; continue }
                if !knownStyles.contains(style) {
                    let hint = Suggest.closest(to: style, in: knownStyles.sorted()).map { "did you mean '\($0)'?" }
                    diagnostics.error(item.location, "unknown style '\(style)' in \(label)", hint: hint)
                    ok = false; continue
                }
                names.append(style)
                useStyle(style)
            }
            if items.isEmpty { diagnostics.error(stylesNode.location, "\(label) lists no styles"); ok = false }
            recipe = .styles(names)
        } else if let processNode {
            if let text = string(processNode, "process") {
                processLocation = processNode.location
                // Every matrix combination must parse; report the first failure of each kind once.
                let variables = Set(matrix.map(\.name))
                var reported: Set<String> = []
                let combinations = MatrixVariable.combinations(matrix)
                for values in combinations {
                    var expanded = text
                    for (variable, value) in values { expanded = expanded.replacingOccurrences(of: "{\(variable)}", with: value) }
                    if let unknown = firstVariable(in: expanded), !variables.contains(unknown) {
                        if !refusedNames.contains(unknown), reported.insert("var:" + unknown).inserted {
                            diagnostics.error(processNode.location.advanced(by: offset(of: "{\(unknown)}", in: text, node: processNode)),
                                              "unknown variable '{\(unknown)}' in the process of \(label); declare it under 'matrix'")
                        }
                        ok = false; break
                    }
                    // `style/NAME` of a style written here: the style's own checks said what is wrong
                    // with it, at its line, once; the rule is named there, not told again (round 39).
                    let styleName = expanded.hasPrefix("style/") ? String(expanded.dropFirst("style/".count)) : nil
                    let ownStyle = styleName.flatMap { name in styleNodes.contains { $0.name == name } ? name : nil }
                    if let ownStyle { useStyle(ownStyle) }
                    if let pipeline = try? Pipeline.parse(expanded, styles: catalogue.mapValues(\.process)) {
                        recipes.append((values, pipeline))
                        guard ownStyle == nil else { continue }
                        if reported.insert("fonts").inserted { checkFonts(pipeline, at: processNode, context: "the process of \(label)") }
                        // Once per text and font: a matrix repeats a watermark in every recipe.
                        checkTexts(pipeline, context: "the process of \(label)", reported: &reported) { _ in processNode.location }
                    } else if let error = processError(expanded, catalogue: catalogue) {
                        recipes.append((values, nil))
                        // A style written here that did not load: its errors are at its line.
                        if let ownStyle, catalogue[ownStyle] == nil { ok = false; continue }
                        if reported.insert(error.message).inserted {
                            report(error, in: text, expanded: expanded, at: processNode, context: "the process of \(label)")
                        }
                        ok = false
                    }
                }
                recipe = .process(text)
            } else { ok = false }
        } else {
            diagnostics.error(node.location, "\(label) needs 'styles' (a list of style names) or 'process' (an image/ chain)")
            ok = false
        }

        var targetBucket = "", template: PathTemplate?
        var toLocation = node.location, toOffset = 0
        if let toNode = field("to") {
            toLocation = toNode.location
            if let text = string(toNode, "to"), let (bucket, path) = bucketPath(text, at: toNode, what: "to") {
                targetBucket = bucket
                toOffset = bucket.unicodeScalars.count + 1 + (isQuoted(toNode) ? 1 : 0)
                do {
                    let parsed = try PathTemplate(path)
                    var allowed = Set(PathTemplate.builtins + matrix.map(\.name))
                    if case .process? = recipe { allowed.remove("style") }
                    for variable in parsed.variables where !allowed.contains(variable) && !refusedNames.contains(variable) {
                        let hint = Suggest.closest(to: variable, in: allowed.sorted()).map { "did you mean '{\($0)}'?" }
                        let why = variable == "style" ? "{style} needs a 'styles:' rule" : "unknown variable '{\(variable)}' in 'to'"
                        diagnostics.error(toNode.location.advanced(by: toOffset + parsed.offset(of: variable)), why, hint: variable == "style" ? nil : hint)
                        ok = false
                    }
                    if let problem = parsed.escapeProblem {
                        diagnostics.error(toNode.location.advanced(by: toOffset), problem)
                        ok = false
                    }
                    if let problem = parsed.dotPartProblem {
                        diagnostics.error(toNode.location.advanced(by: toOffset), problem, hint: "leave the '.' part out of 'to'")
                        ok = false
                    }
                    if let problem = parsed.stateFolderProblem {
                        diagnostics.error(toNode.location.advanced(by: toOffset), problem, hint: "give that folder in 'to' another name")
                        ok = false
                    }
                    if let problem = parsed.temporaryNameProblem {
                        diagnostics.error(toNode.location.advanced(by: toOffset), problem, hint: "end the file name in 'to' otherwise")
                        ok = false
                    }
                    // No object key holds a C0 control or DEL (serve refuses them): a literal one in
                    // 'to' would fail every output at build (attack 42c's L5), so it is refused here,
                    // as a matrix value with one is. A C1 control (U+0080–U+009F) is refused too
                    // (attack 43's M-a): a key may hold one, but one the manifest writes would name
                    // every output with a character terminals take as a command. The message holds
                    // the text as written: the printer escapes it (`--json` keeps it, JSON-escaped).
                    if let index = Array(path.unicodeScalars).firstIndex(where: Self.isWrittenControl) {
                        diagnostics.error(toNode.location.advanced(by: toOffset + index),
                                          "the output path '\(path)' contains a control character; \(Self.controlCharacterWhy(path))",
                                          hint: "remove the control character from 'to'")
                        ok = false
                    }
                    for variable in matrix where !parsed.variables.contains(variable.name) && variable.values.count > 1 {
                        diagnostics.error(toNode.location.advanced(by: toOffset),
                                          "matrix variable '\(variable.name)' is not used in 'to', so its outputs would overwrite each other; add {\(variable.name)}")
                        ok = false
                    }
                    // The collision check runs on the paths before any bytes exist, where every
                    // `{hash}` is the same placeholder: without {name} or {key}, two sources'
                    // outputs are one path (attack 15/16's L5). Refused here, once, at `{hash}`.
                    if parsed.variables.contains("hash"), !parsed.variables.contains("name"), !parsed.variables.contains("key"),
                       let fromGlob, fromGlob.pattern.unicodeScalars.contains(where: { "*?[{".unicodeScalars.contains($0) }) {
                        diagnostics.error(toNode.location.advanced(by: toOffset + parsed.offset(of: "hash")),
                                          "{hash} alone does not name each source's outputs apart: 'from' may match several sources, "
                                          + "and outputs are told apart by path before their bytes are known",
                                          hint: "add {name} or {key}, e.g. \(targetBucket)/{name}.{hash}.{ext}")
                        ok = false
                    }
                    template = parsed
                } catch let problem as PathTemplate.Problem {
                    diagnostics.error(toNode.location.advanced(by: toOffset + problem.offset), problem.message)
                    ok = false
                } catch {}
            } else { ok = false }
        } else {
            diagnostics.error(node.location, "\(label) needs 'to' (bucket/path template, e.g. site/img/{name}.{style}.{ext})")
            ok = false
        }

        var acl: BucketACL?
        if let aclNode = field("acl") {
            acl = choice(aclNode, "acl", BucketACL.self)
            if acl == nil { ok = false }
        }
        // What is known even when something above was wrong (whole-manifest checks use it).
        var watermarks: [String] = []
        for case .object(let key) in recipes.flatMap({ $0.pipeline?.dependencies ?? [] }) where !watermarks.contains(key) {
            watermarks.append(key)
            // The build reads a watermark image as an object key of the source bucket (attack
            // 36a's L7: `image: "../x.png"` passed validate, and every render refused it).
            do { _ = try ObjectKey(key) } catch {
                diagnostics.error(node.location, "the watermark image '\(key)' of rule \(name.map { "'\($0)'" } ?? "at line \(node.location.line)") is not a key inside the bucket: \(error)",
                                  hint: "name an object of the source bucket by its key, e.g. logo.png or brand/logo.png")
                ok = false
            }
        }
        ruleOutlines.append(RuleOutline(
            label: name.map { "'\($0)'" } ?? "at \(file):\(node.location.line)", location: node.location,
            sourceBucket: sourceBucket.isEmpty ? nil : sourceBucket, from: fromGlob, exclude: exclude,
            targetBucket: targetBucket.isEmpty ? nil : targetBucket, to: template, toLocation: toLocation, toOffset: toOffset,
            hasExplicitACL: field("acl") != nil, watermarkKeys: watermarks,
            outputPatterns: template.map { OutputPatterns.of($0, from: fromGlob, recipes: recipes) } ?? []))
        var placeholder = false
        if let placeholderNode = field("placeholder"), placeholderNode.isNull {
            diagnostics.error(placeholderNode.location, "'placeholder' must be true or false, got null")
            ok = false
        } else if let placeholderNode = field("placeholder"), let text = string(placeholderNode, "placeholder") {
            switch text {
            case "true": placeholder = true
            case "false": placeholder = false
            default:
                diagnostics.error(placeholderNode.location, "'placeholder' must be true or false, got '\(text)'")
                ok = false
            }
        }
        var budget: RuleBudget?
        if let budgetNode = field("budget") {
            budget = ruleBudget(budgetNode, label: label)
            if budget == nil { ok = false }
        }
        guard ok, let fromGlob, let recipe, let template else { return nil }
        return RuleSyntax(rule: Rule(name: name, location: node.location, manifestFile: file, sourceBucket: sourceBucket, from: fromGlob, exclude: exclude,
                                     recipe: recipe, matrix: matrix, targetBucket: targetBucket, to: template, acl: acl,
                                     placeholder: placeholder, budget: budget),
                          toLocation: toLocation, toOffset: toOffset, processLocation: processLocation)
    }

    /// A rule's `budget:` mapping; nil (with diagnostics) when any part of it is wrong.
    mutating func ruleBudget(_ node: YAMLNode, label: String) -> RuleBudget? {
        guard let fields = mapping(node, "'budget' of \(label)") else { return nil }
        let before = diagnostics.errors.count
        checkKeys(fields, allowed: ManifestSchema.budget.names, context: "in the budget of \(label)")
        var budget = RuleBudget()
        for (key, value, _) in fields {
            switch key {
            case "max_bytes": budget.maxBytes = int(value, "budget.max_bytes", in: 1...Int(Int64.max / 4)).map(Int64.init)
            case "max_total_bytes": budget.maxTotalBytes = int(value, "budget.max_total_bytes", in: 1...Int(Int64.max / 4)).map(Int64.init)
            case "min_ssim":
                if case .scalar(let text, _) = value.kind, let number = Double(text), number.isFinite, number >= 0, number <= 1 {
                    budget.minSSIM = number
                } else {
                    diagnostics.error(value.location, "budget.min_ssim must be a number from 0 to 1 (1: identical to the lossless reference), got \(value.scalar.map { "'\($0)'" } ?? value.kindName)")
                }
            default: break
            }
        }
        if fields.isEmpty { diagnostics.error(node.location, "the budget of \(label) is empty; give max_bytes, max_total_bytes or min_ssim") }
        return diagnostics.errors.count == before ? budget : nil
    }

    // MARK: Process strings

    func processError(_ text: String, catalogue: [String: Style]) -> ProcessError? {
        do {
            _ = try Pipeline.parse(text, styles: catalogue.mapValues(\.process))
            return nil
        } catch let error as ProcessError {
            return error
        } catch {
            return ProcessError(.invalidArgument, "\(error)")
        }
    }

    mutating func process(_ text: String, at node: YAMLNode, context: String) -> Pipeline? {
        do {
            let pipeline = try Pipeline.parse(text)
            for warning in pipeline.warnings { diagnostics.warning(node.location, "\(warning.message) in \(context)") }
            return pipeline
        } catch let error as ProcessError {
            report(error, in: text, expanded: text, at: node, context: context)
            return nil
        } catch {
            diagnostics.error(node.location, "\(error) in \(context)")
            return nil
        }
    }

    mutating func report(_ error: ProcessError, in written: String, expanded: String, at node: YAMLNode, context: String) {
        var offset = 0
        if let at = error.offset {
            // Map the offset in the expanded text back to the written text through the action's text.
            let prefix = String(expanded.prefix(at))
            let actionText = expanded.dropFirst(at).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            if let range = written.range(of: actionText.isEmpty ? prefix : actionText) {
                offset = written.distance(from: written.startIndex, to: range.lowerBound)
            } else {
                offset = at
            }
        }
        var message = error.message + " in \(context)"
        if let ec = error.ec { message += " [\(error.code.rawValue) EC \(ec)]" }
        diagnostics.error(node.location.advanced(by: offset + (isQuoted(node) ? 1 : 0)), message, hint: error.hint)
    }

    func firstVariable(in text: String) -> String? {
        guard let open = text.firstIndex(of: "{"), let close = text[open...].firstIndex(of: "}") else { return nil }
        return String(text[text.index(after: open)..<close])
    }

    func offset(of needle: String, in text: String, node: YAMLNode) -> Int {
        guard let range = text.range(of: needle) else { return 0 }
        return text.distance(from: text.startIndex, to: range.lowerBound) + (isQuoted(node) ? 1 : 0)
    }

    func isQuoted(_ node: YAMLNode) -> Bool {
        if case .scalar(_, let plain) = node.kind { return !plain }
        return false
    }

    // MARK: Typed readers that report instead of throwing

    mutating func mapping(_ node: YAMLNode, _ what: String) -> [(key: String, value: YAMLNode, keyNode: YAMLNode)]? {
        guard case .mapping(let pairs) = node.kind else {
            diagnostics.error(node.location, "\(what) must be a mapping, got \(node.kindName)")
            return nil
        }
        var result: [(key: String, value: YAMLNode, keyNode: YAMLNode)] = []
        for (keyNode, value) in pairs {
            guard let key = keyNode.scalar else {
                diagnostics.error(keyNode.location, "keys in \(what) must be plain names, got \(keyNode.kindName)")
                continue
            }
            if let previous = result.first(where: { $0.key == key }) {
                diagnostics.error(keyNode.location, "duplicate key '\(key)' (first at line \(previous.keyNode.location.line))")
                continue
            }
            result.append((key, value, keyNode))
        }
        return result
    }

    mutating func checkKeys(_ entries: [(key: String, value: YAMLNode, keyNode: YAMLNode)], allowed: [String], context: String) {
        for entry in entries where !allowed.contains(entry.key) {
            let hint = Suggest.closest(to: entry.key, in: allowed).map { "did you mean '\($0)'?" }
            diagnostics.error(entry.keyNode.location, "unknown key '\(entry.key)' \(context)", hint: hint)
        }
    }

    mutating func string(_ node: YAMLNode, _ what: String) -> String? {
        guard case .scalar(let text, _) = node.kind, !node.isNull else {
            diagnostics.error(node.location, "\(what) must be a string, got \(node.kindName)")
            return nil
        }
        return text
    }

    mutating func int(_ node: YAMLNode, _ what: String, in range: ClosedRange<Int>) -> Int? {
        if case .scalar(let text, _) = node.kind, LimitNumber.isOutOfRange(text) {
            let bound = text.hasPrefix("-") ? "at least \(range.lowerBound)" : "at most \(range.upperBound)"
            diagnostics.error(node.location, "\(what) must be \(bound), got \(text)")
            return nil
        }
        guard case .scalar(let text, _) = node.kind, let value = LimitNumber.parse(text) else {
            diagnostics.error(node.location, "\(what) must be an integer, got \(node.scalar.map { "'\($0)'" } ?? node.kindName)")
            return nil
        }
        guard range.contains(value) else {
            let bound = value < range.lowerBound ? "at least \(range.lowerBound)" : "at most \(range.upperBound)"
            diagnostics.error(node.location, "\(what) must be \(bound), got \(value)")
            return nil
        }
        return value
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: YAMLNode, _ what: String, _ type: T.Type) -> T? where T.RawValue == String {
        guard let text = string(node, what) else { return nil }
        guard let value = T(rawValue: text) else {
            let options = T.allCases.map(\.rawValue)
            let hint = Suggest.closest(to: text, in: options).map { "did you mean '\($0)'?" }
            diagnostics.error(node.location, "\(what) '\(text)' must be one of \(options.joined(separator: ", "))", hint: hint)
            return nil
        }
        return value
    }

    mutating func glob(_ pattern: String, at node: YAMLNode) -> Glob? {
        guard !pattern.isEmpty else {
            diagnostics.error(node.location, "an empty pattern matches nothing")
            return nil
        }
        do { return try Glob(pattern) } catch let error as GlobError {
            diagnostics.error(node.location, error.message)
        } catch {}
        return nil
    }

    /// `bucket/rest`: the bucket must be declared.
    mutating func bucketPath(_ text: String, at node: YAMLNode, what: String) -> (String, String)? {
        // Split on the scalar '/': as Characters, '/' and a combining mark after it are one.
        let scalars = text.unicodeScalars
        guard let slash = scalars.firstIndex(of: "/"), slash != scalars.startIndex else {
            diagnostics.error(node.location, "'\(what)' must start with a bucket name: bucket/path, got '\(text)'")
            return nil
        }
        let bucket = String(scalars[..<slash]), rest = String(scalars[scalars.index(after: slash)...])
        guard buckets.contains(where: { $0.name == bucket }) else {
            let hint = Suggest.closest(to: bucket, in: buckets.map(\.name)).map { "did you mean '\($0)'?" }
            diagnostics.error(node.location.advanced(by: isQuoted(node) ? 1 : 0), "unknown bucket '\(bucket)' in '\(what)'", hint: hint)
            return nil
        }
        guard !rest.isEmpty else {
            diagnostics.error(node.location, "'\(what)' names bucket '\(bucket)' but no path after it")
            return nil
        }
        return (bucket, rest)
    }
}

extension LoadState {
    /// A control character the manifest itself writes into output names (`to:`, a matrix value):
    /// C0, DEL and C1. Those that came from a source's name are its own (serve answers C1 ones).
    static func isWrittenControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) }

    /// Why a control character in `text` (a `to:` or a matrix value) is refused.
    static func controlCharacterWhy(_ text: String) -> String {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
            ? "outputs named with it could not be served"
            : "a C1 control (U+0080–U+009F) in every output's name would be a command to terminals that show it"
    }

    /// A name as a message shows it: controls, format characters (U+202E reorders what the reader
    /// sees) and line separators as `\u{…}`, so an error names what is really there.
    static func shown(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
