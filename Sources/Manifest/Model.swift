import Confinement
import ProcessLanguage

/// A bucket's ACL (OSS: private by default).
public enum BucketACL: String, Sendable, Hashable, CaseIterable, Codable {
    case `private` = "private"
    case publicRead = "public-read"
    case publicReadWrite = "public-read-write"

    public var isPublic: Bool { self != .private }

    /// How far it opens: private 0, public-read 1, public-read-write 2.
    public var openness: Int {
        switch self {
        case .private: return 0
        case .publicRead: return 1
        case .publicReadWrite: return 2
        }
    }

    /// The more private of two ACLs.
    public static func morePrivate(_ a: BucketACL, _ b: BucketACL) -> BucketACL { a.openness <= b.openness ? a : b }
}

/// An object's ACL: `default` means the bucket's.
public enum ObjectACL: String, Sendable, Hashable, CaseIterable {
    case `default` = "default"
    case `private` = "private"
    case publicRead = "public-read"
    case publicReadWrite = "public-read-write"

    public func resolved(bucket: BucketACL) -> BucketACL {
        switch self {
        case .default: return bucket
        case .private: return .private
        case .publicRead: return .publicRead
        case .publicReadWrite: return .publicReadWrite
        }
    }
}

public struct ObjectACLRule: Sendable, Hashable {
    public var match: Glob
    public var acl: ObjectACL
    public var location: SourceLocation
}

/// A folder served and written as an OSS bucket.
public struct Bucket: Sendable, Hashable {
    public var name: String
    /// As written in the manifest (relative to the file that declares the bucket).
    public var declaredPath: String
    /// Absolute folder.
    public var path: String
    public var acl: BucketACL
    /// Object ACL overrides; the first match wins.
    public var objects: [ObjectACLRule]
    /// Style delimiters enabled for `key<d>style` URLs (any of `-`, `_`, `/`, `!`).
    public var styleDelimiters: [Character]
    public var location: SourceLocation
    /// Where `path:` was written (errors about the folder point there).
    public var pathLocation: SourceLocation
    /// OSS static website hosting for `derive serve` (nil: off).
    public var website: Website? = nil
    /// The public base URL of the bucket's root (`url:`), e.g. `https://cdn.example.com/img` or
    /// `/img`: the index writes each output's address as this plus `/` and its key.
    public var url: String? = nil

    /// Why a `url:` cannot be used, or nil: it must be an http(s) URL, a path from the site's
    /// root (`/img`) or from the page (`.`, `./img`, `../img`), at most 2048 characters, without
    /// spaces, quotes, `<`, `>`, `,`, `?` or `#` (it is written into `srcset` and HTML attributes,
    /// where those break or change meaning).
    public static func urlProblem(_ text: String) -> String? {
        // Schemes are case-insensitive (`HTTPS://`); `//host` is another host's address, not a path.
        let lowered = text.lowercased()
        let scheme = ["https://", "http://"].first { lowered.hasPrefix($0) }
        guard scheme != nil || ["/", "./", "../"].contains(where: { text.hasPrefix($0) }) || text == "." || text == ".." else {
            return "must start with https://, http://, / (a path from the site's root), or ./ or ../ (a path from the page)"
        }
        let rest = text.dropFirst(scheme?.count ?? 0)
        if scheme == nil, text.hasPrefix("//") {
            return "starts with //, which browsers read as another host (a protocol-relative URL); write https://host/... or one / for a path from the site's root"
        }
        if rest.contains("//") { return "has an empty folder (//); write each / once" }
        let host = rest.prefix(while: { $0 != "/" })
        if scheme != nil, host.contains("@") {
            return "names a user or password (user@host); addresses written into pages may not carry credentials"
        }
        // `https:///x` has no host (browsers take `x` for it); a port is 1 to 65535.
        if scheme != nil, host.isEmpty || host.hasPrefix(":") { return "has no host after the scheme; write https://host/..." }
        // The port follows the last `:` (after the `]` of an IPv6 address such as `[::1]:8080`).
        let afterAddress = host.hasPrefix("[") ? host[(host.firstIndex(of: "]") ?? host.endIndex)...].dropFirst() : host
        if scheme != nil, let colon = afterAddress.lastIndex(of: ":") {
            let port = afterAddress[afterAddress.index(after: colon)...]
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), !port.hasPrefix("0"), let number = Int(port), (1...65535).contains(number) else {
                return "has port '\(port)', which is not a number from 1 to 65535"
            }
        }
        guard text.utf8.count <= 2048 else { return "is longer than 2048 bytes" }
        if let bad = text.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F || "\"'<>,?#\\`".unicodeScalars.contains($0) }) {
            return "contains \(bad.value <= 0x20 ? "a space or control character" : "'\(bad)'"); percent-encode it"
        }
        // Invisible in a manifest, and part of every address all the same (U+200B, U+00A0, U+2028).
        let invisible: Set<Unicode.GeneralCategory> = [.format, .control, .spaceSeparator, .lineSeparator, .paragraphSeparator]
        if let bad = text.unicodeScalars.first(where: { invisible.contains($0.properties.generalCategory) }) {
            return "contains U+\(String(bad.value, radix: 16, uppercase: true)), an invisible character or space; percent-encode it"
        }
        return nil
    }

    /// The effective ACL of one object: the first matching override, `default` being the bucket's.
    public func effectiveACL(of key: String) -> BucketACL {
        for rule in objects where rule.match.matches(key) { return rule.acl.resolved(bucket: acl) }
        return acl
    }

    /// The effective ACL of a validated key (globs match its scalars).
    public func effectiveACL(of key: ObjectKey) -> BucketACL { effectiveACL(of: key.string) }

    /// OSS bucket names: 3-63 characters of lowercase letters, digits and `-`, not starting or
    /// ending with `-`.
    public static func isValidName(_ name: String) -> Bool {
        (3...63).contains(name.count) && name.first != "-" && name.last != "-"
            && name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    }
}

/// A bucket's static website hosting (OSS `PutBucketWebsite`, as `derive serve` applies it):
/// anonymous GETs of the bucket root or of a key ending in `/` get the index document below it,
/// and of a missing key the error document with status 404. ACLs apply to both documents.
public struct Website: Sendable, Hashable {
    /// A file name (no `/`), e.g. `index.html`.
    public var index: String
    /// An object key, e.g. `404.html`; nil: missing keys answer NoSuchKey as usual.
    public var error: String?

    public init(index: String, error: String? = nil) {
        self.index = index
        self.error = error
    }
}

/// A named entry of the style catalogue.
public struct Style: Sendable, Hashable {
    public var name: String
    /// The process string as written.
    public var process: String
    public var pipeline: Pipeline
    public var location: SourceLocation
}

/// One matrix variable of a rule, e.g. `w: [320, 640, 1280]`.
public struct MatrixVariable: Sendable, Hashable {
    public var name: String
    public var values: [String]

    /// Every combination of values, in declaration order (one empty combination without variables).
    public static func combinations(_ variables: [MatrixVariable]) -> [[String: String]] {
        var combinations: [[String: String]] = [[:]]
        for variable in variables {
            combinations = combinations.flatMap { partial in
                variable.values.map { value in partial.merging([variable.name: value]) { $1 } }
            }
        }
        return combinations
    }
}

/// A rule's `budget:`. An output over `maxBytes`, or below `minSSIM` against a lossless
/// reference render of the same geometry, fails its build; `maxTotalBytes` bounds the rule's
/// outputs together. Budgets are checks, not recipe: they are not part of action keys.
public struct RuleBudget: Sendable, Hashable {
    public var maxBytes: Int64?
    public var maxTotalBytes: Int64?
    public var minSSIM: Double?

    public init(maxBytes: Int64? = nil, maxTotalBytes: Int64? = nil, minSSIM: Double? = nil) {
        self.maxBytes = maxBytes; self.maxTotalBytes = maxTotalBytes; self.minSSIM = minSSIM
    }

    /// `max_bytes 20000, min_ssim 0.95`, for messages.
    public var description: String {
        var parts: [String] = []
        if let maxBytes { parts.append("max_bytes \(maxBytes)") }
        if let maxTotalBytes { parts.append("max_total_bytes \(maxTotalBytes)") }
        if let minSSIM { parts.append("min_ssim \(minSSIM)") }
        return parts.joined(separator: ", ")
    }
}

/// A derivative rule: which sources, which recipe(s), where outputs go.
public struct Rule: Sendable, Hashable {
    public enum Recipe: Sendable, Hashable {
        case styles([String])
        /// A process string that may contain matrix variables such as `{w}`.
        case process(String)
    }

    public var name: String?
    /// Where the rule was written, its file as the user typed it (for messages that point there).
    public var location: SourceLocation
    /// The file the rule is written in, relative to the root manifest's folder (the root's own
    /// file name, an include's path below that folder): what names an unnamed rule, the same
    /// whatever path the manifest was named by (`/abs/derive.yaml`, `./derive.yaml`, a linked folder).
    public var manifestFile: String
    public var sourceBucket: String
    public var from: Glob
    public var exclude: [Glob]
    public var recipe: Recipe
    public var matrix: [MatrixVariable]
    public var targetBucket: String
    public var to: PathTemplate
    public var acl: BucketACL?
    /// `placeholder: true`: the index carries a tiny blurred image (a data URI) and a ThumbHash of
    /// each source of this rule.
    public var placeholder: Bool = false
    /// `budget:`: limits on the outputs' bytes and quality (nil: none).
    public var budget: RuleBudget?

    /// The name plans, records and the index use: `name`, else where the rule is
    /// (`rule at derive.yaml:12`, `rule at rules/web.yaml:3`), its file relative to the root
    /// manifest's folder so that every spelling of the manifest's path gives one name.
    public var planName: String { name ?? RuleName.unnamedPrefix + place }

    /// `name`, or where the rule was written (`at derive.yaml:12`).
    public var label: String {
        if let name { return "'\(name)'" }
        return "at " + place
    }

    /// `derive.yaml:12`: the rule's file relative to the root manifest's folder, and its line.
    public var place: String { "\(manifestFile):\(location.line)" }

    public func includes(_ key: String) -> Bool {
        from.matches(key) && !exclude.contains { $0.matches(key) }
    }

    /// The ACL of a derivative this rule writes of `sourceKey` of `sourceBucket`: the rule's
    /// `acl:`, else the source object's effective ACL. The one definition: the build records it
    /// with each output, and serve applies it from the manifest in force
    /// (`Manifest.derivativeACL(rule:source:)`).
    public func derivativeACL(sourceBucket: Bucket, sourceKey: String) -> BucketACL {
        acl ?? sourceBucket.effectiveACL(of: sourceKey)
    }

    /// Whether the rule takes the listed entry `key`, one that is not a regular file, as a source
    /// (which then fails: it cannot be read). A folder `from` walks into never is: its files are
    /// the sources (`photos/**` matches the folder `photos/sub` too, whose render failed on every
    /// build: attack round 24's M3); a folder it names but cannot walk into (`photos/*.jpg` and a
    /// folder `album.jpg`) still is, so it is not passed over in silence.
    public func takes(_ key: String, kind: String) -> Bool {
        // A name that is not UTF-8 is matched as spelled (`\xE9`): only it matches an exclude
        // that spells its bytes so.
        // A name that is not UTF-8 is taken where the pattern may have named it before its bytes
        // changed (`Glob.mayHaveNamedNotUTF8`); only an exclude spelling its bytes so takes it away.
        if kind == DiskObjectLister.notUTF8 { return from.mayHaveNamedNotUTF8(key, below: false) && !exclude.contains { $0.matchesNotUTF8(key) } }
        // A folder so named is named so too, and only where the pattern cannot walk into it.
        if kind == DiskObjectLister.notUTF8Folder {
            return from.mayHaveNamedNotUTF8(key, below: false) && !exclude.contains { $0.matchesNotUTF8(key) } && !from.mayHaveNamedNotUTF8(key, below: true)
        }
        return includes(key) && !(kind == DiskObjectLister.folder && from.mayMatchBelow(key))
    }

    /// Whether the rule's pattern would take files below the folder `folder` (a key of the
    /// source bucket; for an entry of `kind`) as sources, unless an `exclude:` takes the whole
    /// folder away. A folder whose name is not UTF-8 is matched as the listing spells it.
    public func descends(into folder: String, kind: String = DiskObjectLister.folder) -> Bool {
        let notUTF8 = DiskObjectLister.isNotUTF8(kind)
        return (notUTF8 ? from.mayHaveNamedNotUTF8(folder, below: true) : from.mayMatchBelow(folder))
            && !exclude.contains { $0.matchesEverythingBelow(folder, notUTF8: notUTF8) }
    }

    /// Every combination of matrix values, in declaration order (one empty combination without a matrix).
    public var matrixCombinations: [[String: String]] { MatrixVariable.combinations(matrix) }

    /// One recipe of the rule: a style (or the process string) with one matrix combination.
    public struct Variant: Sendable, Hashable {
        public var style: String?
        public var values: [String: String]
        public var pipeline: Pipeline
        /// The matrix variables that name the chain's leading `resize,w_N`
        /// (`Pipeline.sourceWidthResize`): those whose value is N, each of them used in the chain
        /// only as that width. Nil when a variable whose value is N is used anywhere else in the
        /// chain (`crop,w_{w}`, `circle,r_{w}`, a second `resize,w_{w}`) or not in it at all (a
        /// style, or `{v}` only in `to:`): a narrower source's variant is then planned as written,
        /// since its name or its later actions hold the width as written (attack 48's F1).
        public var widthNames: Set<String>?

        public init(style: String?, values: [String: String], pipeline: Pipeline, widthNames: Set<String>? = []) {
            self.style = style; self.values = values; self.pipeline = pipeline; self.widthNames = widthNames
        }
    }

    /// `Variant.widthNames` of the process `template` expanded with `values` into `pipeline`: each
    /// variable whose value is the leading resize's width N is set to another width alone, and
    /// the chain must then differ from `pipeline` in that width and nothing else.
    static func widthNames(template: String, values: [String: String], pipeline: Pipeline, styles: [String: String]) -> Set<String>? {
        guard let width = pipeline.sourceWidthResize else { return [] }
        let named = values.filter { $0.value == String(width) }.map(\.key)
        let probe = width > 1 ? width - 1 : width + 1
        let expected = pipeline.resizingSource(to: probe).canonical
        for name in named {
            var text = template
            for (other, value) in values { text = text.replacingOccurrences(of: "{\(other)}", with: other == name ? String(probe) : value) }
            guard let probed = try? Pipeline.parse(text, styles: styles), probed.canonical == expected else { return nil }
        }
        return Set(named)
    }

    /// Expands styles × matrix into pipelines, resolving styles in `catalogue`.
    public func variants(catalogue: [String: Style]) throws -> [Variant] {
        var result: [Variant] = []
        for values in matrixCombinations {
            switch recipe {
            case .styles(let names):
                for name in names {
                    guard let style = catalogue[name] else { continue }
                    // A style's chain holds no matrix value: one equal to its width is not its width.
                    let width = style.pipeline.sourceWidthResize.map(String.init)
                    result.append(Variant(style: name, values: values, pipeline: style.pipeline,
                                          widthNames: values.values.contains { $0 == width } ? nil : []))
                }
            case .process(let template):
                var text = template
                for (name, value) in values { text = text.replacingOccurrences(of: "{\(name)}", with: value) }
                let styles = catalogue.mapValues(\.process)
                let pipeline = try Pipeline.parse(text, styles: styles)
                result.append(Variant(style: nil, values: values, pipeline: pipeline,
                                      widthNames: Self.widthNames(template: template, values: values, pipeline: pipeline, styles: styles)))
            }
        }
        return result
    }
}

public struct AccessKey: Sendable, Hashable {
    public var id: String
    /// The environment variable that holds the secret; the secret itself never appears in a manifest.
    public var secretEnv: String
    public var location: SourceLocation
}

/// Overrides of the engine's limits (nil keeps the default).
public struct ManifestLimits: Sendable, Hashable {
    public var bytes: Int?
    public var side: Int?
    public var pixels: Int?
    public var outputSide: Int?
    /// Deadline of one render in seconds (0: none).
    public var renderSeconds: Int?
    /// Largest work estimate of one render, in units.
    public var work: Int?
    /// Largest memory estimate of one render, in bytes.
    public var memory: Int?
}

/// Settings of `derive serve` (top-level `serve:`), with defaults filled in.
public struct ServeSettings: Sendable, Hashable {
    /// Most bytes the render cache (in the state folder) may hold before least-recently-used
    /// entries are evicted.
    public var cacheMaxBytes: Int
    /// Most renders waiting for a slot; beyond it requests get 503 SlowDown.
    public var renderQueue: Int

    /// Seconds a client has to send a whole request head, from the connection's first byte
    /// (or its opening); bytes trickling in do not extend it.
    public var headTimeout: Int = 30
    /// Seconds a kept-alive connection may sit idle between an answer and the next request.
    public var idleTimeout: Int = 60
    /// Seconds a request body may go without a byte before the connection is closed (the
    /// upload is discarded).
    public var bodyTimeout: Int = 30
    /// Seconds an answer being written may go without the client taking any of it before the
    /// connection is closed (attack 23's F1: a client that stopped reading held it for ever).
    public var sendTimeout: Int = 60
    /// Most open connections; nil: derived from the file descriptor limit (`RLIMIT_NOFILE`).
    public var maxConnections: Int?
    /// Multipart uploads open at once, per server; one more Initiate is refused.
    public var multipartMaxUploads: Int = 100
    /// Bytes all open multipart uploads may hold together, per server.
    public var multipartMaxBytes: Int = 4 << 30
    /// Hours after its initiation an unfinished multipart upload is removed (at start-up and
    /// by the server's periodic sweep).
    public var multipartExpiryHours: Int = 24
    /// Of the uploads and bytes above, what uploads initiated by anonymous callers may use.
    public var multipartMaxAnonymousUploads: Int = 20
    public var multipartMaxAnonymousBytes: Int = 1 << 30
    /// Appendable objects `derive serve` remembers (one more new one is refused), and of them
    /// how many anonymous callers may create (below the total: signed callers keep the rest).
    public var appendableMaxObjects: Int = ServeSettings.defaultAppendableMaxObjects
    public var appendableMaxAnonymous: Int = ServeSettings.defaultAppendableMaxObjects / 2
    public static let defaultAppendableMaxObjects = 10_000
    /// Listings (ListObjects, ListObjectsV2) that may walk folders at once; one more is 503
    /// SlowDown. At most 3: fewer than serve's 4 I/O threads, so plain GETs always have one.
    public var listMaxConcurrent: Int = 2
    public static let listConcurrencyRange = 1...3
    /// Units one listing page may spend: folder entries read, plus keys walked past that the
    /// caller may not see. Past it the page ends truncated (or 400 when it examined no key).
    public var listMaxEntries: Int = 100_000
    public static let listEntriesRange = 10...100_000_000

    public static let defaultCacheMaxBytes = 1 << 30
    public static let defaultRenderQueue = 64

    public init(cacheMaxBytes: Int = ServeSettings.defaultCacheMaxBytes, renderQueue: Int = ServeSettings.defaultRenderQueue) {
        self.cacheMaxBytes = cacheMaxBytes
        self.renderQueue = renderQueue
    }
}

/// A loaded, validated manifest.
public struct Manifest: Sendable {
    public var file: String
    public var version: Int
    public var buckets: [Bucket]
    public var styles: [Style]
    public var rules: [Rule]
    public var region: String
    public var accessKeys: [AccessKey]
    public var limits: ManifestLimits
    /// Bucket and path of the output index for site generators.
    public var index: (bucket: String, path: String)?
    /// Absolute state folder (default `.derive/<manifest file stem>/` beside the manifest, so
    /// two manifests in one folder never share it).
    public var stateFolder: String
    /// Absolute lock file (default `<manifest file stem>.lock` beside the manifest: `derive.yaml`
    /// keeps `derive.lock`, `site.yaml` gets `site.lock`; top-level `lock:` overrides it).
    public var lockFile: String
    /// Every manifest file read (the root first, then includes), absolute.
    public var files: [String]
    /// Includes named that could not be read (missing, unreadable) or parsed, absolute: a watch follows
    /// them too, so the one that comes back is seen (attack 42b's L-f).
    public var unreadIncludes: [String] = []
    public var serve: ServeSettings
    /// `catalog.samples`: the sources (`bucket/key`) `derive catalog` applies every style to;
    /// empty: the first source of each rule.
    public var catalogSamples: [String] = []

    public func bucket(named name: String) -> Bucket? { buckets.first { $0.name == name } }

    /// The ACL this manifest gives a derivative the build recorded as written by the rule named
    /// `rule` (its plan name) from `source` (`bucket/key`): `Rule.derivativeACL` of that rule now,
    /// or nil when no rule has that name any more or the source's bucket is gone. A running
    /// serve answers built outputs from the more private of this and the ACL the build recorded
    /// (attack 17's N6: a rule's `acl:` made private kept its outputs public until a build).
    public func derivativeACL(rule name: String, source: String) -> BucketACL? {
        guard let slash = source.firstIndex(of: "/"), let rule = rules.first(where: { $0.planName == name }),
              let bucket = bucket(named: String(source[..<slash])) else { return nil }
        return rule.derivativeACL(sourceBucket: bucket, sourceKey: String(source[source.index(after: slash)...]))
    }

    /// The index's effective ACL, the one an anonymous GET of it meets (`derive serve` and OSS
    /// alike): `EffectiveACL`, i.e. its bucket's first matching `objects:` rule, else the bucket's
    /// ACL, and never more public than a rule whose output template gives its key. Nil without
    /// an index (or with an unknown bucket, an error of its own).
    public var indexACL: BucketACL? { EffectiveACL(self).indexACL }

    public var catalogue: [String: Style] {
        Dictionary(styles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}


/// An index anonymous readers may fetch lists only what they may read (attack 17's N4). For
/// each output the index names its source's bucket/key, width, height, dominant colour and
/// placeholder (a tiny blurred picture of it: a derivative as much as the output) and the
/// output's address. So when the index's effective ACL is public, every output it lists must
/// be public too (`Rule.derivativeACL`): a private output would publish its source's name and a
/// blurred copy of the picture. A rule's explicit `acl: public-read` publishes its derivatives
/// of private sources on purpose (as the leak guard allows), and the index entry with them.
/// Checked when the manifest loads (each rule whose outputs may be private) and again when the
/// build writes the index (each record it would list), with the same words.
public enum PublicIndex {
    /// `public-read (bucket 'site')`: the index's effective ACL and what gives it.
    public static func readable(_ manifest: Manifest, acl: BucketACL) -> String {
        guard let index = manifest.index else { return acl.rawValue }
        return acl.rawValue + (manifest.bucket(named: index.bucket)?.acl == acl ? " (bucket '\(index.bucket)')" : " (an 'objects:' rule of bucket '\(index.bucket)')")
    }

    /// What anyone could read from a public index listing private outputs.
    public static let exposed = "anyone could read their sources' names, sizes, colours and placeholder images and the outputs' addresses"

    /// How to fix it: the index private (site generators read it from the disk), or the outputs public.
    public static func hint(_ manifest: Manifest) -> String {
        guard let index = manifest.index else { return "" }
        return "make the index private: put it in a private bucket, or {match: \"\(index.path)\", acl: private} first in the objects: of bucket '\(index.bucket)' "
            + "(site generators read it from the disk); or publish these outputs with acl: public-read on their rule"
    }
}

/// What a rule's `name` may be: any printable text of 1-128 characters (Unicode scalars) but `/`,
/// control characters (C0, DEL, C1), format characters (Unicode category Cf: the bidirectional
/// controls such as U+202E, which would make a name show as another, and the invisible ones such
/// as U+200B-U+200D, U+2060, U+FEFF, U+00AD), line and paragraph separators, spaces other than
/// U+0020 (U+00A0, U+3000, …), and a space at either end: `xy` and `x<U+200B>y`, or `sp` and
/// ` sp `, would print alike (attack 17's L1). `hero image` and `héro` are names. The index
/// keys a rule's pictures `rule/style` and style names have no `/`, so the key splits one way
/// only; `rule at …` is what an unnamed rule is called, so no name starts with it. The JSON
/// Schema says the same (`ManifestSchema.ruleName`, whose table a test compares with these
/// Unicode categories). One format character is a name's when it joins two emoji: U+200D
/// (ZERO WIDTH JOINER) right after a pictograph (Extended_Pictographic, maybe with U+FE0F or a
/// skin tone after it) and right before one, as in `👩‍💻 desk`, `👩🏽‍💻` or `🏳️‍🌈`; anywhere else
/// (`x<U+200D>y`) it is refused like the others. Likewise a variation selector is a name's only
/// where it presents an emoji: U+FE0E or U+FE0F right after a pictograph (`❤️`), or U+FE0F in a
/// keycap (`#️⃣`); after a letter it shows nothing (`x<U+FE0F>y` prints as `xy`, round 19's V5).
public enum RuleName {
    public static let maxScalars = 128
    public static let unnamedPrefix = "rule at "

    /// A rule by the name plans and records give it, for messages: `rule 'thumbs'`, or an unnamed
    /// rule's place as it is (`rule at derive.yaml:12`, not `rule 'rule at derive.yaml:12'`).
    public static func described(_ planName: String) -> String {
        planName.hasPrefix(unnamedPrefix) ? planName : "rule '\(planName)'"
    }

    /// What may stand between a pictograph and the U+200D that joins it to the next: U+FE0F
    /// (emoji presentation, only right after the pictograph: `presentsEmoji`) and the skin tones.
    static let joinModifiers: [ClosedRange<UInt32>] = [0xFE0F...0xFE0F, skinTones]
    /// The emoji modifiers (skin tones, Fitzpatrick types 1-2 to 6).
    static let skinTones: ClosedRange<UInt32> = 0x1F3FB...0x1F3FF
    /// Unicode's Variation_Selector: the Mongolian free variation selectors U+180B-U+180D and
    /// U+180F, U+FE00-U+FE0F (U+FE0E text and U+FE0F emoji presentation among them) and the
    /// ideographic U+E0100-U+E01EF. Each changes how the character before it is drawn, if at all.
    static let variationSelectors: [ClosedRange<UInt32>] = [0x180B...0x180D, 0x180F...0x180F, 0xFE00...0xFE0F, 0xE0100...0xE01EF]
    /// What a keycap is made of: `0-9 # *`, U+FE0F, U+20E3 (COMBINING ENCLOSING KEYCAP).
    static let keycapBases = "0123456789#*"

    static func isJoinModifier(_ scalar: Unicode.Scalar) -> Bool { joinModifiers.contains { $0.contains(scalar.value) } }

    static func isVariationSelector(_ scalar: Unicode.Scalar) -> Bool { variationSelectors.contains { $0.contains(scalar.value) } }

    /// Whether `scalar` is a pictograph U+200D may join (`ManifestSchema.ruleNamePictographs`).
    public static func isPictograph(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        guard value >= 0xA9 else { return false }
        return ManifestSchema.ruleNamePictographs.contains { $0.contains(value) }
    }

    /// Whether the scalar at `index` is a U+200D joining two emoji: a pictograph before it (maybe
    /// followed by join modifiers) and one right after it.
    static func joinsEmoji(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
        guard scalars[index] == "\u{200D}", index + 1 < scalars.count, isPictograph(scalars[index + 1]) else { return false }
        var before = index - 1
        while before >= 0, isJoinModifier(scalars[before]) { before -= 1 }
        return before >= 0 && isPictograph(scalars[before])
    }

    /// Whether the scalar at `index` is a variation selector that presents an emoji: U+FE0E or
    /// U+FE0F right after a pictograph (`❤️`, `❤︎`), or U+FE0F between a keycap's base and U+20E3
    /// (`#️⃣`). Any other variation selector, and these anywhere else, is refused (round 19's V5).
    static func presentsEmoji(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
        let scalar = scalars[index]
        guard scalar == "\u{FE0E}" || scalar == "\u{FE0F}", index > 0 else { return false }
        if isPictograph(scalars[index - 1]) { return true }
        return scalar == "\u{FE0F}" && keycapBases.unicodeScalars.contains(scalars[index - 1]) && index + 1 < scalars.count && scalars[index + 1] == "\u{20E3}"
    }

    /// Whether the scalar at `index` is a name's though `isForbidden` refuses it in general: a
    /// U+200D joining two emoji, a variation selector presenting one.
    static func isAllowedHere(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
        joinsEmoji(scalars, at: index) || presentsEmoji(scalars, at: index)
    }

    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "/" || isInvisible(scalar) || isVariationSelector(scalar) { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: return true
        case .spaceSeparator: return scalar != " "
        default: return false
        }
    }

    /// Characters that show nothing but are not format characters (attack 18, L1b): the
    /// combining grapheme joiner, Hangul and halfwidth fillers, Khmer inherent vowels, the blank
    /// Braille pattern, and the unassigned default-ignorable code points. Variation selectors are
    /// refused apart (`isVariationSelector`), as they are allowed where they present an emoji.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x034F, 0x115F...0x1160, 0x17B4...0x17B5, 0x2065, 0x2800, 0x3164, 0xFFA0, 0xFFF0...0xFFF8,
             0xE0000, 0xE0002...0xE001F, 0xE0080...0xE00FF, 0xE01F0...0xE0FFF: return true
        default: return false
        }
    }

    /// U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069: format characters that reorder text.
    static func isBidirectional(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    /// Why `name` is refused, nil when it is a name.
    public static func problem(_ name: String) -> String? {
        let scalars = name.unicodeScalars
        if scalars.isEmpty { return "it is empty" }
        if scalars.count > maxScalars { return "it is longer than \(maxScalars) characters" }
        if scalars.contains("/") { return "it holds '/' (the index keys the rule's pictures as rule/style)" }
        let list = Array(scalars)
        if let at = list.indices.first(where: { isForbidden(list[$0]) && !isAllowedHere(list, at: $0) }) {
            let bad = list[at]
            let code = "U+\(String(bad.value, radix: 16, uppercase: true).leftPadded(4))"
            if isInvisible(bad) { return "it holds the invisible character \(code)" }
            if isVariationSelector(bad) {
                return "it holds the variation selector \(code) where it presents no emoji (U+FE0F or U+FE0E may stand only right after an emoji, as in \u{2764}\u{FE0F}, or in a keycap such as #\u{FE0F}\u{20E3}; after a letter it shows nothing)"
            }
            switch bad.properties.generalCategory {
            case .format where isBidirectional(bad): return "it holds the bidirectional control character \(code)"
            case .format where bad == "\u{200D}": return "it holds the invisible format character \(code) where it joins no two emoji (it may stand only right between two, as in an emoji ZWJ sequence)"
            case .format: return "it holds the invisible format character \(code)"
            case .spaceSeparator: return "it holds the space character \(code), which looks like a plain space (write U+0020)"
            default: return "it holds the control or separator character \(code)"
            }
        }
        if scalars.first == " " || scalars.last == " " { return "it starts or ends with a space" }
        if name.hasPrefix(unnamedPrefix) { return "names starting with '\(unnamedPrefix)' are how unnamed rules are shown" }
        return nil
    }

    /// `'a', 'x\u{200B}y'`: names as messages show them, quoted, with invisible characters
    /// written as escapes (a list of names stays readable whatever they hold: `a, b` is one name).
    public static func quoted(_ names: [String]) -> String {
        names.map { "'\(shown($0))'" }.joined(separator: ", ")
    }

    /// `name` with control, format and separator characters written as `\u{…}` (a U+200D joining
    /// two emoji too: on a terminal that draws no such sequence, `👩‍💻` and `👩💻` look alike), and
    /// variation selectors that present no emoji (`x\u{FE0F}y`, which would show as `xy`).
    /// `forPrinter`: the characters every printed line escapes (`TerminalText.isControl`: ESC,
    /// line feeds, bidirectional controls) are left as they are, for a diagnostic's message, which
    /// holds the text as written (`--json` keeps it, JSON-escaped; attack 43's L-c); only what a
    /// terminal shows as nothing or as another name is written as an escape here.
    public static func shown(_ text: String, forPrinter: Bool = false) -> String {
        var result = ""
        let scalars = Array(text.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            if forPrinter, TerminalText.isControl(scalar) {
                result.unicodeScalars.append(scalar)
                continue
            }
            if isVariationSelector(scalar), !presentsEmoji(scalars, at: index) {
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                continue
            }
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            case .spaceSeparator where scalar != " ":
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
