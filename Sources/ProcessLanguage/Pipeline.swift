/// Where an action is parsed: the main chain, or a watermark image's own pre-process, which
/// allows fewer actions and one more parameter (`resize,P_`).
public enum ParseContext: Sendable, Hashable {
    case main
    case watermark
}

/// One action of the language: typed parameters with their ranges and defaults, and the
/// canonical spelling (parameters in a fixed order, defaults explicit).
public protocol ProcessAction: Sendable, Hashable {
    static var name: String { get }
    init(parameters: inout Parameters, context: ParseContext) throws
    /// Parameters in canonical order with defaults explicit, e.g. `["m_lfit", "w_100", "limit_1"]`.
    var canonicalItems: [String] { get }
}

extension ProcessAction {
    public var canonical: String { ([Self.name] + canonicalItems).joined(separator: ",") }
}

public enum Action: Sendable, Hashable {
    case resize(Resize)
    case crop(Crop)
    case indexCrop(IndexCrop)
    case circle(Circle)
    case roundedCorners(RoundedCorners)
    case autoOrient(AutoOrient)
    case rotate(Rotate)
    case blur(Blur)
    case bright(Bright)
    case contrast(Contrast)
    case sharpen(Sharpen)
    case watermark(Watermark)
    case format(Format)
    case quality(Quality)
    case interlace(Interlace)
    case info(Info)
    case averageHue(AverageHue)

    public var value: any ProcessAction {
        switch self {
        case .resize(let a): return a
        case .crop(let a): return a
        case .indexCrop(let a): return a
        case .circle(let a): return a
        case .roundedCorners(let a): return a
        case .autoOrient(let a): return a
        case .rotate(let a): return a
        case .blur(let a): return a
        case .bright(let a): return a
        case .contrast(let a): return a
        case .sharpen(let a): return a
        case .watermark(let a): return a
        case .format(let a): return a
        case .quality(let a): return a
        case .interlace(let a): return a
        case .info(let a): return a
        case .averageHue(let a): return a
        }
    }

    public var name: String { type(of: value).name }
    public var canonical: String { value.canonical }

    typealias Builder = @Sendable (inout Parameters, ParseContext) throws -> Action

    private static func entry<A: ProcessAction>(_ type: A.Type, _ wrap: @escaping @Sendable (A) -> Action)
        -> (String, Builder) {
        (A.name, { parameters, context in wrap(try A(parameters: &parameters, context: context)) })
    }

    /// Every action of spec §2, by name.
    static let registry: [String: Builder] = Dictionary(uniqueKeysWithValues: [
        entry(Resize.self, Action.resize),
        entry(Crop.self, Action.crop),
        entry(IndexCrop.self, Action.indexCrop),
        entry(Circle.self, Action.circle),
        entry(RoundedCorners.self, Action.roundedCorners),
        entry(AutoOrient.self, Action.autoOrient),
        entry(Rotate.self, Action.rotate),
        entry(Blur.self, Action.blur),
        entry(Bright.self, Action.bright),
        entry(Contrast.self, Action.contrast),
        entry(Sharpen.self, Action.sharpen),
        entry(Watermark.self, Action.watermark),
        entry(Format.self, Action.format),
        entry(Quality.self, Action.quality),
        entry(Interlace.self, Action.interlace),
        entry(Info.self, Action.info),
        entry(AverageHue.self, Action.averageHue),
    ])

    public static var names: [String] { registry.keys.sorted() }

    /// Actions a watermark image may apply to itself before it is placed (spec §2.13).
    static let watermarkPreProcess: Set<String> = ["resize", "crop", "indexcrop", "rounded-corners", "rotate"]
}

/// Something the rendering reads besides the source object: the planner hashes these into a
/// derivative's fingerprint.
public enum Dependency: Sendable, Hashable {
    case object(key: String)
    /// The font of a text watermark's `type`, with the text and its size in px: the faces that
    /// draw it depend on which characters the font has, and a configuration may pick or draw a
    /// face by size.
    case font(name: String, text: String, size: Int)
}

/// An ordered list of actions parsed from an `x-oss-process` string. Two pipelines are equal when
/// their canonical strings are, so `resize,w_100` and `resize,m_lfit,w_100` are the same recipe.
public struct Pipeline: Sendable, Hashable, CustomStringConvertible {
    public let actions: [Action]
    /// Legal but ignored parts of the string (unknown keys, superseded parameters).
    public let warnings: [ProcessWarning]
    /// The style name, when the string was `style/<name>`.
    public let style: String?

    public init(actions: [Action], warnings: [ProcessWarning] = [], style: String? = nil) {
        self.actions = actions
        self.warnings = warnings
        self.style = style
    }

    /// `image/` followed by each action's canonical form; what fingerprints hash.
    public var canonical: String {
        "image/" + actions.map(\.canonical).joined(separator: "/")
    }

    public var description: String { canonical }

    public static func == (lhs: Pipeline, rhs: Pipeline) -> Bool { lhs.canonical == rhs.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    /// Objects and fonts the pipeline reads besides its source, in order of appearance.
    public var dependencies: [Dependency] {
        var seen: [Dependency] = []
        for case .watermark(let mark) in actions {
            for dependency in mark.dependencies where !seen.contains(dependency) {
                seen.append(dependency)
            }
        }
        return seen
    }

    /// Parses `image/<action>/...` or `style/<name>` (looked up in `styles`, whose values are
    /// `image/...` strings). A style that names another style is an error, as is anything after
    /// `style/<name>`.
    public static func parse(_ text: String, styles: [String: String] = [:],
                             context: ParseContext = .main) throws -> Pipeline {
        try checkLength(text)
        if text.hasPrefix("style/") {
            let name = String(text.dropFirst("style/".count))
            guard StyleName.isValid(name) else {
                throw ProcessError(.invalidArgument, ec: "0017-00000251",
                                   "The value: \(name) of parameter: stylename is invalid. Style names are 1-63 characters of letters, digits, '_', '-' and '.'",
                                   offset: 6)
            }
            guard let content = styles[name] else {
                throw ProcessError(.noSuchStyle, "The specified style '\(name)' does not exist.", offset: 6)
            }
            if content.hasPrefix("style/") {
                throw ProcessError(.invalidArgument,
                                   "style '\(name)' names another style ('\(content)'); a style must be an image/ chain",
                                   offset: 6)
            }
            let pipeline = try parseChain(content, context: context)
            return Pipeline(actions: pipeline.actions, warnings: pipeline.warnings, style: name)
        }
        return try parseChain(text, context: context)
    }

    /// Longest process string, in bytes (spec §4.1: limited, EC 0017-00000288; OSS publishes no
    /// value). Room for three image watermarks with long keys and pre-processes.
    public static let maxLength = 8192
    /// Most actions in one chain: every action deepens libvips' pipeline, whose evaluation
    /// recurses once per step, so a chain of hundreds would overflow a thread's stack.
    public static let maxActions = 32

    static func checkLength(_ text: String) throws {
        if text.utf8.count > maxLength {
            throw ProcessError(.invalidArgument, ec: "0017-00000288",
                               "the process string is \(text.utf8.count) bytes long; at most \(maxLength) are allowed")
        }
    }

    static func parseChain(_ text: String, context: ParseContext) throws -> Pipeline {
        try checkLength(text)
        guard text.hasPrefix("image/") || text == "image" else {
            let category = text.split(separator: "/", maxSplits: 1).first.map(String.init) ?? text
            throw ProcessError(.invalidArgument,
                               "unknown process category '\(category)': a process string starts with 'image/' or 'style/'",
                               offset: 0)
        }
        var actions: [Action] = []
        var warnings: [ProcessWarning] = []
        var offset = "image/".count
        let body = text.dropFirst(min(text.count, "image/".count))
        for segment in body.split(separator: "/", omittingEmptySubsequences: false) {
            defer { offset += segment.count + 1 }
            if segment.isEmpty { continue }
            if actions.count == maxActions {
                throw ProcessError(.invalidArgument, ec: "0017-00000288",
                                   "the process string has more than \(maxActions) actions; at most \(maxActions) are allowed",
                                   offset: offset)
            }
            let items = segment.split(separator: ",", omittingEmptySubsequences: false)
            let name = String(items[0])
            guard let build = Action.registry[name] else {
                let hint = Suggest.closest(to: name, in: Action.names).map { "did you mean '\($0)'?" }
                throw ProcessError(.invalidArgument, ec: "0040-00000213", "unknown action '\(name)'",
                                   action: name, offset: offset, hint: hint)
            }
            if context == .watermark {
                if name == "watermark" {
                    throw ProcessError(.invalidArgument, ec: "0040-00000373",
                                       "watermark: a watermark image's pre-process cannot contain another watermark",
                                       action: name, offset: offset)
                }
                guard Action.watermarkPreProcess.contains(name) else {
                    throw ProcessError(.invalidArgument,
                                       "watermark: a watermark image's pre-process allows only \(Action.watermarkPreProcess.sorted().joined(separator: ", ")), not '\(name)'",
                                       action: name, offset: offset)
                }
            }
            var parameters = Parameters(action: name, items: Array(items.dropFirst()))
            do {
                let action = try build(&parameters, context)
                actions.append(action)
                warnings += parameters.unusedWarnings()
                if case .resize(let resize) = action { warnings += resize.ignoredWarnings }
                if case .quality(let quality) = action { warnings += quality.ignoredWarnings }
                if case .indexCrop(let crop) = action { warnings += crop.ignoredWarnings }
            } catch var error as ProcessError {
                error.offset = error.offset ?? offset
                if error.action == nil { error.action = name }
                throw error
            }
        }
        guard !actions.isEmpty else {
            throw ProcessError(.invalidArgument, ec: "0040-00000212",
                               "the process string 'image/' names no action", offset: offset - 1)
        }
        return Pipeline(actions: actions, warnings: warnings)
    }
}

/// Style names: 1-63 of `[A-Za-z0-9_.-]` (spec §1.4).
public enum StyleName {
    public static func isValid(_ name: String) -> Bool {
        (1...63).contains(name.count) && name.allSatisfy {
            $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".")
        }
    }
}

/// "Did you mean" by edit distance.
public enum Suggest {
    public static func closest(to word: String, in candidates: [String], maxDistance: Int = 2) -> String? {
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(Array(word), Array(candidate))
            if distance <= maxDistance, distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
        }
        return best?.0
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            previous = current
        }
        return previous[b.count]
    }
}
