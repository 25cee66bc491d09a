import Foundation
import ProcessLanguage

/// The shape of a manifest value, as far as a JSON Schema can say it (ranges, names, choices);
/// what it cannot say (globs, process strings, paths inside buckets) `derive validate` checks.
public indirect enum SchemaShape: Sendable {
    case string(pattern: String? = nil)
    /// A scalar the loader reads as its text (`path: 2024` is the folder "2024"): a string that
    /// matches `pattern`, or a YAML value of one of `also` ("integer", "number", "boolean"),
    /// whose text the loader takes as written. Patterns test strings only in JSON Schema, so
    /// `also` names only types every text of which passes the loader's rule for the field.
    case text(pattern: String? = nil, also: [String] = ["number", "boolean"])
    case choice([String])
    /// `true` or `false` (YAML booleans; the loader reads them as the words).
    case boolean
    /// An integer in the limit-number syntax (README, "Limits and errors"): a YAML integer, or
    /// a string of digits with `_` between them.
    case integer(ClosedRange<Int>)
    case constant(Int)
    /// A decimal number in this range (`min_ssim: 0.95`).
    case number(ClosedRange<Double>)
    case list(SchemaShape, minItems: Int = 0)
    /// One value or a list of them (`include: a.yaml` or `include: [a.yaml, b.yaml]`).
    case oneOrList(SchemaShape)
    /// A mapping with known keys only (besides `x-` keys at the top level).
    case object([SchemaField], required: [String] = [], extensions: Bool = false)
    /// A mapping of free names (buckets, styles, matrix variables) to one shape; names matching
    /// `refusedNames` are refused (`hash` and `HASH` as matrix variables).
    case map(SchemaShape, namePattern: String? = nil, refusedNames: String? = nil)
    case anyOf([SchemaShape])
    /// A style written as a list of actions (`- resize: {w: 400}`).
    case actionList
}

/// One key of a mapping: the parser accepts exactly the keys these tables name.
public struct SchemaField: Sendable {
    public var name: String
    public var shape: SchemaShape
    public var description: String

    public init(_ name: String, _ shape: SchemaShape, _ description: String) {
        self.name = name
        self.shape = shape
        self.description = description
    }
}

/// Every key of the manifest and the shape of its value. `ManifestLoader` checks keys against
/// these tables and `derive schema` prints them as JSON Schema, so the two cannot drift apart.
public enum ManifestSchema {
    /// The end of the text: Python's `$` (jsonschema) also matches before a last newline.
    static let end = "(?![\\s\\S])"
    /// `Bucket.isValidName`, without anchors: also the bucket part of `from`, `to` and `index`.
    static let bucketNameBody = "[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
    static let bucketName = "^" + bucketNameBody + end
    static let styleName = "^[A-Za-z0-9_.-]{1,63}" + end
    /// bucket/key of a source or output: a bucket name, '/', then something.
    static let bucketPath = "^" + bucketNameBody + "/."
    /// `ObjectKey` (website.error): not empty, no control character, no '/' at either end, no
    /// empty, '.' or '..' segment. (Its 1 023-byte bound is validate's: patterns count characters.)
    static let objectKey = #"^(?!/)(?!.*/$)(?!.*//)(?!(?:.*/)?\.\.?(?:/|$))[^\u0000-\u001F\u007F]+"# + end
    /// website.index: an object key without '/'.
    static let fileName = #"^(?!\.\.?$)[^/\u0000-\u001F\u007F]+"# + end
    /// A built-in variable of `to` in any case (`HASH`, `Name`), as a regular expression.
    static func anyCase(_ word: String) -> String {
        word.map { $0.isLetter ? "[" + $0.uppercased() + $0.lowercased() + "]" : String($0) }.joined()
    }
    /// Matrix variable names the loader refuses: a built-in in any case (`name`, `HASH`).
    static let builtinNamesAnyCase = "^(?:" + PathTemplate.builtins.map(anyCase).joined(separator: "|") + ")" + end
    /// `RuleName`: 1-128 scalars but those of `ruleNameForbidden`, no space at either end, not
    /// `rule at …`; U+200D (forbidden) only right after a pictograph of `ruleNamePictographs`
    /// (maybe followed by U+FE0F, then skin tones, `RuleName.joinsEmoji`) and right before one;
    /// U+FE0E/U+FE0F (forbidden) only right after a pictograph, U+FE0F in a keycap too
    /// (`RuleName.presentsEmoji`). The end is `(?![\s\S])`, not `$`: Python's `$` also matches
    /// before a last newline.
    static let ruleName: String = {
        let end = "(?![\\s\\S])"
        let pictograph = "[" + ruleNamePictographs.map(characterClass).joined() + "]"
        let emojiSelector = "[" + characterClass(0xFE0E...0xFE0F) + "]"
        let emojiPresentation = characterClass(0xFE0F...0xFE0F)
        let joined = pictograph + emojiPresentation + "?[" + characterClass(RuleName.skinTones) + "]*" + characterClass(0x200D...0x200D) + "(?=" + pictograph + ")"
        let presented = pictograph + emojiSelector
        let keycap = "[" + RuleName.keycapBases + "]" + emojiPresentation + characterClass(0x20E3...0x20E3)
        return "^(?!rule at )(?! )(?!.* $)(?=[\\s\\S]{1,\(RuleName.maxScalars)}" + end + ")(?:[^" + ruleNameForbidden.map(characterClass).joined() + "]|"
            + joined + "|" + presented + "|" + keycap + ")+" + end
    }()
    /// The scalars `RuleName.isForbidden` refuses (Unicode 15.0: C0, DEL and C1 controls, `/`,
    /// format characters (Cf), line and paragraph separators, spaces but U+0020, the invisible
    /// characters of `RuleName.isInvisible` and the variation selectors), as ranges.
    /// `SiteRound17Tests` compares them with Swift's Unicode tables, scalar by scalar.
    static let ruleNameForbidden: [ClosedRange<UInt32>] = [
        0x0000...0x001F, 0x002F...0x002F, 0x007F...0x00A0, 0x00AD...0x00AD, 0x034F...0x034F, 0x0600...0x0605, 0x061C...0x061C,
        0x06DD...0x06DD, 0x070F...0x070F, 0x0890...0x0891, 0x08E2...0x08E2, 0x115F...0x1160, 0x1680...0x1680, 0x17B4...0x17B5,
        0x180B...0x180F, 0x2000...0x200F, 0x2028...0x202F, 0x205F...0x206F, 0x2800...0x2800, 0x3000...0x3000, 0x3164...0x3164,
        0xFE00...0xFE0F, 0xFEFF...0xFEFF, 0xFFA0...0xFFA0, 0xFFF0...0xFFFB, 0x110BD...0x110BD, 0x110CD...0x110CD, 0x13430...0x1343F,
        0x1BCA0...0x1BCA3, 0x1D173...0x1D17A, 0xE0000...0xE0FFF,
    ]

    /// The pictographs (Extended_Pictographic) U+200D may join in a rule name (`👩‍💻`): the
    /// scalars Swift's own Unicode data joins into one Character as `X U+200D X` (grapheme rule
    /// GB11). `IndexACLManifestTests` compares them with Swift's data, scalar by scalar. (Swift
    /// 6.3 knows 2 848 of them; Unicode's emoji-data lists 3 537, e.g. U+2605 too.)
    static let ruleNamePictographs: [ClosedRange<UInt32>] = [
        0x00A9...0x00A9, 0x00AE...0x00AE, 0x203C...0x203C, 0x2049...0x2049, 0x2122...0x2122, 0x2139...0x2139, 0x2194...0x2199,
        0x21A9...0x21AA, 0x231A...0x231B, 0x2328...0x2328, 0x23CF...0x23CF, 0x23E9...0x23F3, 0x23F8...0x23FA, 0x24C2...0x24C2,
        0x25AA...0x25AB, 0x25B6...0x25B6, 0x25C0...0x25C0, 0x25FB...0x25FE, 0x2600...0x2604, 0x260E...0x260E, 0x2611...0x2611,
        0x2614...0x2615, 0x2618...0x2618, 0x261D...0x261D, 0x2620...0x2620, 0x2622...0x2623, 0x2626...0x2626, 0x262A...0x262A,
        0x262E...0x262F, 0x2638...0x263A, 0x2640...0x2640, 0x2642...0x2642, 0x2648...0x2653, 0x265F...0x2660, 0x2663...0x2663,
        0x2665...0x2666, 0x2668...0x2668, 0x267B...0x267B, 0x267E...0x267F, 0x2692...0x2697, 0x2699...0x2699, 0x269B...0x269C,
        0x26A0...0x26A1, 0x26A7...0x26A7, 0x26AA...0x26AB, 0x26B0...0x26B1, 0x26BD...0x26BE, 0x26C4...0x26C5, 0x26C8...0x26C8,
        0x26CE...0x26CF, 0x26D1...0x26D1, 0x26D3...0x26D4, 0x26E9...0x26EA, 0x26F0...0x26F5, 0x26F7...0x26FA, 0x26FD...0x26FD,
        0x2702...0x2702, 0x2705...0x2705, 0x2708...0x270D, 0x270F...0x270F, 0x2712...0x2712, 0x2714...0x2714, 0x2716...0x2716,
        0x271D...0x271D, 0x2721...0x2721, 0x2728...0x2728, 0x2733...0x2734, 0x2744...0x2744, 0x2747...0x2747, 0x274C...0x274C,
        0x274E...0x274E, 0x2753...0x2755, 0x2757...0x2757, 0x2763...0x2764, 0x2795...0x2797, 0x27A1...0x27A1, 0x27B0...0x27B0,
        0x27BF...0x27BF, 0x2934...0x2935, 0x2B05...0x2B07, 0x2B1B...0x2B1C, 0x2B50...0x2B50, 0x2B55...0x2B55, 0x3030...0x3030,
        0x303D...0x303D, 0x3297...0x3297, 0x3299...0x3299, 0x1F004...0x1F004, 0x1F02C...0x1F02F, 0x1F094...0x1F09F,
        0x1F0AF...0x1F0B0, 0x1F0C0...0x1F0C0, 0x1F0CF...0x1F0D0, 0x1F0F6...0x1F0FF, 0x1F170...0x1F171, 0x1F17E...0x1F17F,
        0x1F18E...0x1F18E, 0x1F191...0x1F19A, 0x1F1AE...0x1F1E5, 0x1F201...0x1F20F, 0x1F21A...0x1F21A, 0x1F22F...0x1F22F,
        0x1F232...0x1F23A, 0x1F23C...0x1F23F, 0x1F249...0x1F25F, 0x1F266...0x1F321, 0x1F324...0x1F393, 0x1F396...0x1F397,
        0x1F399...0x1F39B, 0x1F39E...0x1F3F0, 0x1F3F3...0x1F3F5, 0x1F3F7...0x1F3FA, 0x1F400...0x1F4FD, 0x1F4FF...0x1F53D,
        0x1F549...0x1F54E, 0x1F550...0x1F567, 0x1F56F...0x1F570, 0x1F573...0x1F57A, 0x1F587...0x1F587, 0x1F58A...0x1F58D,
        0x1F590...0x1F590, 0x1F595...0x1F596, 0x1F5A4...0x1F5A5, 0x1F5A8...0x1F5A8, 0x1F5B1...0x1F5B2, 0x1F5BC...0x1F5BC,
        0x1F5C2...0x1F5C4, 0x1F5D1...0x1F5D3, 0x1F5DC...0x1F5DE, 0x1F5E1...0x1F5E1, 0x1F5E3...0x1F5E3, 0x1F5E8...0x1F5E8,
        0x1F5EF...0x1F5EF, 0x1F5F3...0x1F5F3, 0x1F5FA...0x1F64F, 0x1F680...0x1F6C5, 0x1F6CB...0x1F6D2, 0x1F6D5...0x1F6E5,
        0x1F6E9...0x1F6E9, 0x1F6EB...0x1F6F0, 0x1F6F3...0x1F6FF, 0x1F7DA...0x1F7FF, 0x1F80C...0x1F80F, 0x1F848...0x1F84F,
        0x1F85A...0x1F85F, 0x1F888...0x1F88F, 0x1F8AE...0x1F8AF, 0x1F8BC...0x1F8BF, 0x1F8C2...0x1F8CF, 0x1F8D9...0x1F8FF,
        0x1F90C...0x1F93A, 0x1F93C...0x1F945, 0x1F947...0x1F9FF, 0x1FA58...0x1FA5F, 0x1FA6E...0x1FAFF, 0x1FC00...0x1FFFD,
    ]

    /// One range of a regular expression's character class: `\u0600-\u0605` in the Basic
    /// Multilingual Plane; beyond it the characters themselves (JSON Schema's ECMA-262 patterns
    /// and Python's `re` read those alike, neither reads the other's escape for them).
    static func characterClass(_ range: ClosedRange<UInt32>) -> String {
        func one(_ value: UInt32) -> String {
            if value > 0xFFFF, let scalar = Unicode.Scalar(value) { return String(Character(scalar)) }
            let hex = String(value, radix: 16, uppercase: true)
            return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        }
        return range.count == 1 ? one(range.lowerBound) : one(range.lowerBound) + "-" + one(range.upperBound)
    }
    static let limitRange = 1...Int(Int64.max / 4)
    /// `Bucket.urlProblem` as far as a pattern can say it: https:// or http:// with a host (and a
    /// port 1-99999; the loader also checks ≤ 65535) and no user, or a path from `/` (not `//`),
    /// `./` or `../`; no empty folder (`//`), space, quote, `<>,?#\\` or backquote.
    static let bucketURL = #"^(?:[Hh][Tt][Tt][Pp][Ss]?://(?:\[[0-9A-Fa-f:.]+\]|[^/@:\s"'<>,?#\\`\[\]]+)(?::[1-9][0-9]{0,4})?(?=/|$)|(?=/(?!/))|(?=\.\.?(?:/|$)))(?!.*//)[^\s"'<>,?#\\`]*$"#
    /// bucket/template; `{hash:N}` only with N in 4-64 and at most one `{hash}`.
    /// A built-in in another case (`{HASH}`, `{Name:8}`) is refused: no matrix variable has such a name.
    static let toTemplate = #"^(?!.*\{hash:(?!(?:[4-9]|[1-5][0-9]|6[0-4])\}))(?!.*\{hash(?::[0-9]+)?\}.*\{hash(?::[0-9]+)?\})"#
        + #"(?!.*\{(?!(?:"# + PathTemplate.builtins.joined(separator: "|") + #")[}:])(?:"# + PathTemplate.builtins.map(anyCase).joined(separator: "|") + #")[}:])"#
        + bucketNameBody + "/.+"
    /// `to` of a rule without a matrix: every `{…}` is a built-in variable (`PathTemplate.builtins`).
    static let builtinsOnlyTemplate = "^[^{}]*(?:\\{(?:" + PathTemplate.builtins.map { $0 == "hash" ? "hash(?::[0-9]+)?" : $0 }.joined(separator: "|") + ")\\}[^{}]*)*$"
    static let acls = BucketACL.allCases.map(\.rawValue)

    public static let objectRule: [SchemaField] = [
        SchemaField("match", .text(), "A glob of object keys, e.g. \"press/**\"."),
        SchemaField("acl", .choice(ObjectACL.allCases.map(\.rawValue)), "The ACL of the matching objects; the first matching rule wins."),
    ]

    public static let website: [SchemaField] = [
        SchemaField("index", .text(pattern: fileName), "The index document served for / and for keys ending in / (OSS static website hosting)."),
        SchemaField("error", .text(pattern: objectKey), "The object served with status 404 when a key is missing."),
    ]

    public static let bucket: [SchemaField] = [
        SchemaField("path", .text(), "The bucket's folder, relative to the file that declares it."),
        SchemaField("acl", .choice(acls), "The bucket ACL (default private)."),
        SchemaField("objects", .list(.object(objectRule, required: ["match", "acl"])), "Object ACL overrides; the first match wins."),
        SchemaField("style_delimiters", .oneOrList(.choice(["-", "_", "/", "!"])), "Delimiters enabled for key<d>style URLs in derive serve."),
        SchemaField("website", .object(website, required: ["index"]), "Static website hosting for derive serve: index and error documents."),
        SchemaField("url", .string(pattern: bucketURL), "The public base URL of the bucket's root (https://…, /path, ./ or ../): index paths become URLs."),
    ]

    public static let budget: [SchemaField] = [
        SchemaField("max_bytes", .integer(limitRange), "Largest output of this rule, in bytes: a larger render fails and is not written."),
        SchemaField("max_total_bytes", .integer(limitRange), "Most bytes all outputs of this rule may take together."),
        SchemaField("min_ssim", .number(0...1), "Lowest SSIM of an output against a lossless reference render of the same geometry."),
    ]

    public static let rule: [SchemaField] = [
        SchemaField("name", .text(pattern: ruleName), "The rule's name (shown in plans and errors, and keying its pictures in the index): 1-128 characters but '/', control, invisible format (bidirectional, zero-width) and filler (U+3164, U+034F, ...) characters, separator characters, spaces other than U+0020 and a space at either end; not starting with 'rule at '. U+200D (zero width joiner) only between two emoji, as in an emoji ZWJ sequence; variation selectors only where they present an emoji (U+FE0E or U+FE0F right after one, U+FE0F in a keycap such as #\u{FE0F}\u{20E3})."),
        SchemaField("from", .string(pattern: bucketPath), "bucket/glob of the sources, e.g. photos/**/*.jpg."),
        SchemaField("exclude", .oneOrList(.text()), "Globs of sources to leave out."),
        SchemaField("styles", .oneOrList(.text(pattern: styleName, also: ["integer"])), "Style names from the catalogue."),
        SchemaField("process", .string(), "An image/ chain; may use matrix variables such as {w}."),
        // A value is used as its text: numbers (1.5) and booleans (true) are values too.
        SchemaField("matrix", .map(.list(.anyOf([.string(), .integer(Int.min...Int.max), .number(-Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude),
                                                  .boolean]), minItems: 1), namePattern: "^[A-Za-z_][A-Za-z0-9_]*" + end,
                                   refusedNames: builtinNamesAnyCase),
                    "Variables and their values; every combination is built."),
        SchemaField("to", .string(pattern: toTemplate), "bucket/path template of the outputs, e.g. site/img/{name}.{style}.{ext}."),
        SchemaField("acl", .choice(acls), "The ACL recorded for the outputs."),
        SchemaField("placeholder", .boolean, "Inline a tiny blurred image and a ThumbHash per source in the index."),
        SchemaField("budget", .object(budget), "Byte and quality budgets of the outputs, enforced by build, check and diff --fail-on."),
    ]

    public static let accessKey: [SchemaField] = [
        SchemaField("id", .text(pattern: "[\\s\\S]"), "The access key id."),
        SchemaField("secret_env", .string(pattern: "^[A-Za-z_][A-Za-z0-9_]*" + end), "The environment variable that holds the secret."),
    ]

    public static let limits: [SchemaField] = [
        SchemaField("bytes", .integer(limitRange), "Largest source file, in bytes."),
        SchemaField("side", .integer(limitRange), "Longest source side, in pixels."),
        SchemaField("pixels", .integer(limitRange), "Most source pixels."),
        SchemaField("output_side", .integer(limitRange), "Longest output side, in pixels."),
        SchemaField("render_seconds", .integer(0...86_400), "Deadline of one render in seconds (0: none)."),
        SchemaField("work", .integer(limitRange), "Largest work estimate of one render."),
        SchemaField("memory", .integer(limitRange), "Largest memory estimate of one render, in bytes."),
    ]

    public static let serve: [SchemaField] = [
        SchemaField("cache_max_bytes", .integer(0...Int(Int64.max / 4)), "Render cache size in bytes."),
        SchemaField("render_queue", .integer(0...1_000_000), "Renders that may wait for a slot."),
        SchemaField("head_timeout", .integer(1...3_600), "Seconds to send a whole request head."),
        SchemaField("idle_timeout", .integer(1...3_600), "Seconds a kept-alive connection may idle."),
        SchemaField("body_timeout", .integer(1...3_600), "Seconds a request body may go without a byte."),
        SchemaField("send_timeout", .integer(1...3_600), "Seconds an answer may go without the client taking any of it."),
        SchemaField("max_connections", .integer(1...1_000_000), "Most open connections."),
        SchemaField("multipart_max_uploads", .integer(0...100_000), "Multipart uploads open at once."),
        SchemaField("multipart_max_bytes", .integer(0...Int(Int64.max / 4)), "Bytes held by open multipart uploads."),
        SchemaField("multipart_expiry_hours", .integer(1...87_600), "Hours after which an abandoned multipart upload is removed."),
        SchemaField("multipart_max_anonymous_uploads", .integer(0...100_000), "Multipart uploads anonymous callers may hold open at once: below multipart_max_uploads (default 20, or a fifth of a smaller total)."),
        SchemaField("multipart_max_anonymous_bytes", .integer(0...Int(Int64.max / 4)), "Bytes anonymous callers' open multipart uploads may hold: below multipart_max_bytes (default 1 GiB, or a quarter of a smaller total)."),
        SchemaField("appendable_max_objects", .integer(0...1_000_000), "Appendable objects remembered (AppendObject); one more new one is refused."),
        SchemaField("appendable_max_anonymous", .integer(0...1_000_000), "Appendable objects anonymous callers may create: below appendable_max_objects (default half of it)."),
        SchemaField("list_max_entries", .integer(ServeSettings.listEntriesRange), "Folder entries read plus hidden keys walked past per listing page."),
        SchemaField("list_max_concurrent", .integer(ServeSettings.listConcurrencyRange), "Listings that may walk folders at once (fewer than the 4 I/O threads)."),
    ]

    /// The most sources `catalog.samples` may list (each costs one render per style).
    public static let maxCatalogSamples = 100

    public static let catalog: [SchemaField] = [
        SchemaField("samples", .list(.string(pattern: bucketPath)), "bucket/key of the sources every style is applied to (default: the first source of each rule)."),
    ]

    /// The names of `topLevel`, `bucket` and `rule`, the keys the loader checks every manifest
    /// against. Written out: the tables themselves build every pattern and description (the
    /// rule name's character class among them), a fortieth of a 2 000-output no-op whose
    /// manifest only needs the names (issue 15). `ManifestSchemaNamesTests` pins them to the tables.
    public static let topLevelNames = ["version", "include", "buckets", "styles", "derivatives", "region", "access_keys", "limits", "index",
                                       "state", "lock", "serve", "catalog"]
    public static let bucketNames = ["path", "acl", "objects", "style_delimiters", "website", "url"]
    public static let ruleNames = ["name", "from", "exclude", "styles", "process", "matrix", "to", "acl", "placeholder", "budget"]

    /// Keys an included file may hold.
    public static let includable = ["version", "include", "buckets", "styles", "derivatives"]

    public static let topLevel: [SchemaField] = [
        SchemaField("version", .constant(ManifestLoader.currentVersion), "The manifest format version."),
        SchemaField("include", .oneOrList(.text()), "Manifest files to read too, relative to this one."),
        SchemaField("buckets", .map(.object(bucket, required: ["path"]), namePattern: bucketName), "Folders served and written as OSS buckets."),
        SchemaField("styles", .map(.anyOf([.string(), .actionList]), namePattern: styleName),
                    "Named recipes: an image/ chain, or a list of actions with plain values."),
        SchemaField("derivatives", .list(.object(rule, required: ["from", "to"])), "The derivative rules."),
        SchemaField("region", .text(pattern: "^[a-z0-9-]+" + end, also: ["integer", "boolean"]), "The OSS region derive serve reports."),
        SchemaField("access_keys", .list(.object(accessKey, required: ["id", "secret_env"])), "Access keys derive serve accepts."),
        SchemaField("limits", .object(limits), "Overrides of the engine's limits."),
        SchemaField("index", .string(pattern: bucketPath), "bucket/path of the output index for site generators."),
        SchemaField("state", .text(pattern: "[\\s\\S]"), "The state folder."),
        SchemaField("lock", .text(pattern: "[^/]" + end), "The lock file."),
        SchemaField("serve", .object(serve), "Settings of derive serve."),
        SchemaField("catalog", .object(catalog), "The contact sheet of derive catalog."),
    ]

    /// Top-level keys starting with this are the author's own (YAML anchors), ignored as in
    /// Compose files.
    public static let extensionPrefix = "x-"

    /// The manifest's JSON Schema (draft 2020-12), pretty-printed with sorted keys.
    public static func json() -> Data {
        let root = jsonObject(.object(topLevel, required: ["version"], extensions: true), description: nil)
        var document: [String: Any] = [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://derive.invalid/manifest.schema.json",
            "title": "Derive manifest",
            "description": "A Derive manifest (derive.yaml). Generated by `derive schema` from the tables the manifest loader checks keys against.",
        ]
        document.merge(root) { $1 }
        return (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }

    static func jsonObject(_ shape: SchemaShape, description: String?) -> [String: Any] {
        var node: [String: Any]
        switch shape {
        case .string(let pattern):
            node = ["type": "string"]
            if let pattern { node["pattern"] = pattern }
        case .text(let pattern, let also):
            var text: [String: Any] = ["type": "string"]
            if let pattern { text["pattern"] = pattern }
            node = ["anyOf": [text, ["type": also]] as [[String: Any]]]
        case .choice(let values):
            node = ["enum": values]
        case .boolean:
            node = ["anyOf": [["type": "boolean"], ["enum": ["true", "false"]]] as [[String: Any]]]
        case .integer(let range):
            var number: [String: Any] = ["type": "integer"]
            if range.lowerBound != Int.min { number["minimum"] = range.lowerBound }
            if range.upperBound != Int.max { number["maximum"] = range.upperBound }
            // A string of digits: one with a '-' (or all zeros) is below a range from 0 (from 1).
            let sign = range.lowerBound >= 1 ? "(?!0+(?:_0+)*" + end + ")" : range.lowerBound >= 0 ? "" : "-?"
            let digits: [String: Any] = ["type": "string", "pattern": "^" + sign + "[0-9]+(_[0-9]+)*" + end]
            node = ["anyOf": [number, digits] as [[String: Any]]]
        case .constant(let value):
            // The loader reads integers in the limit-number syntax: `version: "1"` is 1 too.
            node = ["anyOf": [["const": value], ["const": String(value)]] as [[String: Any]]]
        case .number(let range):
            node = ["type": "number", "minimum": range.lowerBound, "maximum": range.upperBound]
        case .list(let item, let minItems):
            node = ["type": "array", "items": jsonObject(item, description: nil)]
            if minItems > 0 { node["minItems"] = minItems }
        case .oneOrList(let item):
            let one = jsonObject(item, description: nil)
            let many: [String: Any] = ["type": "array", "items": one]
            node = ["anyOf": [one, many] as [[String: Any]]]
        case .object(let fields, let required, let extensions):
            var properties: [String: Any] = [:]
            for field in fields { properties[field.name] = jsonObject(field.shape, description: field.description) }
            node = ["type": "object", "properties": properties, "additionalProperties": false]
            // A rule without `matrix:` has no variables but the built-ins (attack 36a's L6:
            // `{HASH}` passed the schema, which a matrix variable so named would allow).
            if properties["matrix"] != nil, properties["to"] != nil {
                node["if"] = ["not": ["required": ["matrix"]]] as [String: Any]
                node["then"] = ["properties": ["to": ["pattern": builtinsOnlyTemplate]]] as [String: Any]
            }
            // A rule has a recipe: its styles or its process, not both (as the loader says).
            if properties["styles"] != nil, properties["process"] != nil {
                node["oneOf"] = [["required": ["styles"]], ["required": ["process"]]] as [[String: Any]]
            }
            if !required.isEmpty { node["required"] = required }
            if extensions {
                let ignored: [String: Any] = ["description": "Ignored: for YAML anchors (&name) reused with *name or <<: *name."]
                node["patternProperties"] = ["^" + extensionPrefix: ignored] as [String: Any]
            }
        case .map(let value, let namePattern, let refusedNames):
            node = ["type": "object", "additionalProperties": jsonObject(value, description: nil)]
            var names: [String: Any] = [:]
            if let namePattern { names["pattern"] = namePattern }
            if let refusedNames { names["not"] = ["pattern": refusedNames] as [String: Any] }
            if !names.isEmpty { node["propertyNames"] = names }
        case .anyOf(let shapes):
            node = ["anyOf": shapes.map { jsonObject($0, description: nil) }]
        case .actionList:
            let scalar: [String: Any] = ["type": ["string", "integer", "number", "boolean"]]
            let null: [String: Any] = ["type": "null"]
            let parameters: [String: Any] = ["type": "object", "additionalProperties": scalar]
            let bare: [String: Any] = ["enum": Action.names]
            let action: [String: Any] = [
                "type": "object", "minProperties": 1, "maxProperties": 1,
                "propertyNames": ["enum": Action.names] as [String: Any],
                "additionalProperties": ["anyOf": [scalar, null, parameters] as [[String: Any]]] as [String: Any],
            ]
            node = ["type": "array", "minItems": 1, "items": ["anyOf": [bare, action] as [[String: Any]]] as [String: Any]]
        }
        if let description { node["description"] = description }
        return node
    }
}

extension Array where Element == SchemaField {
    /// The keys, in the order written.
    public var names: [String] { map(\.name) }
}
