/// A face a text watermark is drawn with: the font of its `type`, or a fallback Pango takes the
/// characters that font lacks from. Its file, family and how its glyphs are drawn. Part of every
/// fingerprint of that text: a configuration that picks another face, or draws it otherwise,
/// changes the bytes.
public struct DrawnFace: Sendable, Hashable, Codable {
    public var family: String
    public var file: String
    /// The face's whole resolved fontconfig pattern as Pango draws it (`TextFaces`), at the
    /// drawn size and in the run's language.
    public var rendering: String

    public init(family: String, file: String, rendering: String) {
        self.family = family; self.file = file; self.rendering = rendering
    }
}

/// How the render draws a text at a size in the font of a `type`, as the render worker lays it
/// out: the faces, the environment it reads that may change the drawing though every face is
/// the same (locale, FreeType's properties), and why it cannot draw it, if it cannot.
public struct TextDrawing: Sendable, Hashable, Codable {
    public var faces: [DrawnFace]
    /// `NAME=value` words of `TextDrawing.fingerprintWords`, as the worker saw them.
    public var environment: String
    /// Why the text cannot be drawn (`FontCatalog.checkDrawable`'s message); nil when it can.
    public var undrawable: String?

    public init(faces: [DrawnFace], environment: String, undrawable: String? = nil) {
        self.faces = faces; self.environment = environment; self.undrawable = undrawable
    }

    /// The variables Pango, fontconfig and FreeType read that change how text is drawn: the
    /// locale picks the language (hence the fallback face and its shaping), `FC_LANG` fontconfig's
    /// default language, `FREETYPE_PROPERTIES` the rasterizer (attack 50b's H4, M1).
    public static let environmentVariables = ["LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE", "PANGO_LANGUAGE", "FC_LANG", "FREETYPE_PROPERTIES"]

    /// Families of variables those libraries (and HarfBuzz, which shapes, and cairo) read, not
    /// listed one by one: `HB_SHAPER_LIST=fallback` turns kerning and ligatures off (attack 51c's
    /// 1). A name counts when a loaded text library holds it (`LoadedLibraryNames`): one none of
    /// them holds (`HB_FOO`) is read by none (attack 52c's 4). When in doubt a variable counts: a
    /// rebuild too many, never a stale output.
    public static let environmentPrefixes = ["HB_", "PANGO", "FC_", "FREETYPE", "CAIRO_"]

    /// Names of those families that only make fontconfig print what it does (its debug flags and
    /// the filter of its match dump): they choose nothing and draw nothing (attack 52c's 4).
    /// Cairo's `CAIRO_DEBUG` is not one: it sets options of its X backends, and when in doubt a
    /// variable counts.
    public static let debugVariables: Set<String> = ["FC_DEBUG", "FC_DBG_MATCH_FILTER"]

    /// The names in `environment` that change how text is drawn: `environmentVariables` and every
    /// name of `environmentPrefixes`' families that a loaded text library holds, but
    /// `debugVariables`; sorted.
    public static func drawingVariables(_ environment: [String: String]) -> [String] {
        Set(environmentVariables + environment.keys.filter { name in
            environmentPrefixes.contains { name.hasPrefix($0) } && !debugVariables.contains(name) && LoadedLibraryNames.mayBeRead(name)
        }).sorted()
    }

    /// The drawing variables as `environment` holds them: each set one as `NAME=value`, sorted.
    /// The key of kept answers (the faces depend on the locale too).
    public static func environmentWords(_ environment: [String: String]) -> String {
        drawingVariables(environment).compactMap { name in environment[name].map { "\(name)=\($0)" } }.joined(separator: " ")
    }

    /// The variables that only pick the language: fontconfig's (`FC_LANG`, else the locale) and
    /// Pango's. What that language changes is in every `DrawnFace`: the face chosen, its pattern
    /// and the language Pango shapes the run in. Left out of a drawing's fingerprint so that two
    /// team members whose locales draw the same pixels agree on the lock (s51's "Noticed").
    public static let languageVariables: Set<String> = ["LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE", "PANGO_LANGUAGE", "FC_LANG"]

    /// The drawing variables in a fingerprint: `environmentWords` without `languageVariables`.
    public static func fingerprintWords(_ environment: [String: String]) -> String {
        drawingVariables(environment).filter { !languageVariables.contains($0) }
            .compactMap { name in environment[name].map { "\(name)=\($0)" } }.joined(separator: " ")
    }

    /// What stands for a drawing the worker could not report (never a real face): the plan
    /// rebuilds rather than calling an output up to date, and asks again next time.
    public static let unknown = TextDrawing(faces: [DrawnFace(family: "unknown", file: "", rendering: "the render worker did not answer")],
                                            environment: "unknown")
}

/// A text a watermark draws: in the font of `type`, at `size` px. The faces, hence the
/// fingerprint, depend on all three (a fonts.conf rule may test the size: attack 50b's H5).
public struct TextToDraw: Sendable, Hashable {
    public var type: String
    public var text: String
    public var size: Int

    public init(type: String, text: String, size: Int) {
        self.type = type; self.text = text; self.size = size
    }

    /// The key of its `TextDrawing` in a report and in the kept answers (NUL is in neither
    /// type nor text: both were arguments).
    public var key: String { type + "\u{0}" + text + "\u{0}" + String(size) }
}
