import Foundation

/// `watermark` (spec §2.13): text, an image object, or both, placed on a 3×3 grid or tiled.
///
/// Choices where the spec is open (§6.9–6.11): `g` defaults to `se`; `padx`/`pady` default to 0;
/// a positive `voffset` moves the mark up; `align` defaults to 2 (bottom), as in the 2021 docs;
/// `color` is raw hex as in every example (a base64url colour is also accepted); text length is
/// counted in UTF-8 bytes. Drawing is the watermark issue's work; this file is the grammar.
public struct Watermark: ProcessAction {
    public static let name = "watermark"

    public struct Mark: Sendable, Hashable {
        /// The watermark object's key.
        public var key: String
        /// Its own pre-process (resize, crop, indexcrop, rounded-corners, rotate), if any.
        public var process: Pipeline?
    }

    public var opacity = 100
    public var gravity: Gravity = .se
    public var x = 10
    public var y = 10
    public var voffset = 0
    public var fill = false
    public var padx = 0
    public var pady = 0
    public var text: String?
    public var font = "wqy-zenhei"
    public var color = "000000"
    public var size = 40
    public var shadow = 0
    public var rotate = 0
    public var image: Mark?
    public var order = 0
    public var align = 2
    public var interval = 0

    public static let fonts = ["wqy-zenhei", "wqy-microhei", "fangzhengshusong", "fangzhengkaiti",
                               "fangzhengheiti", "fangzhengfangsong", "droidsansfallback"]

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        opacity = try p.int("t", in: 0...100, ec: "0040-00000263") ?? opacity
        if let g = try p.choice("g", of: Gravity.allCases.map(\.rawValue)) { gravity = Gravity(rawValue: g)! }
        x = try p.int("x", in: 0...4096) ?? x
        y = try p.int("y", in: 0...4096) ?? y
        voffset = try p.int("voffset", in: -1000...1000, ec: "0040-00000268") ?? voffset
        fill = (try p.int("fill", in: 0...1, ec: "0040-00000274") ?? 0) == 1
        padx = try p.int("padx", in: 0...4096, ec: "0040-00000276") ?? padx
        pady = try p.int("pady", in: 0...4096, ec: "0040-00000276") ?? pady

        if let raw = p.string("text") {
            guard let decoded = Base64URL.decodeString(raw), !decoded.isEmpty else {
                throw ProcessError(.invalidArgument, ec: "0040-00000257",
                                   "watermark: parameter 'text' is not base64url-encoded UTF-8 text", parameter: "text")
            }
            guard decoded.utf8.count <= 64 else {
                throw ProcessError(.invalidArgument, ec: "0040-00000259",
                                   "watermark: text is \(decoded.utf8.count) bytes long once decoded; at most 64 are allowed", parameter: "text")
            }
            // Text with nothing to draw (spaces, tabs, NUL, zero-width characters) is a bad value.
            if decoded.unicodeScalars.allSatisfy({ scalar in
                scalar.properties.isWhitespace || [.control, .format, .nonspacingMark, .enclosingMark, .unassigned]
                    .contains(scalar.properties.generalCategory) || scalar.properties.isDefaultIgnorableCodePoint
            }) {
                throw ProcessError(.invalidArgument, ec: "0040-00000257",
                                   "watermark: the text has nothing to draw (only spaces, control or zero-width characters)",
                                   parameter: "text")
            }
            text = decoded
        }
        if let raw = p.string("type") {
            guard let decoded = Base64URL.decodeString(raw) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250",
                                   "watermark: parameter 'type' is not base64url-encoded", parameter: "type")
            }
            guard Self.fonts.contains(decoded) || Self.isFamilyName(decoded) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250",
                                   "watermark: unknown font '\(decoded)'; use one of \(Self.fonts.joined(separator: ", ")) or an installed font family (fc-list : family), whose name is 1-64 bytes of letters, digits, spaces and -_.'+&()",
                                   parameter: "type")
            }
            font = decoded
        }
        if let raw = p.string("color") {
            if let hex = Parameters.hexColor(raw) {
                color = hex
            } else if let decoded = Base64URL.decodeString(raw), let hex = Parameters.hexColor(decoded) {
                color = hex
            } else {
                throw ProcessError(.invalidArgument, "watermark: parameter 'color' must be six hex digits like FF0000, got '\(raw)'", parameter: "color")
            }
        }
        size = try p.int("size", in: 1...1000) ?? size
        shadow = try p.int("shadow", in: 0...100) ?? shadow
        rotate = try p.int("rotate", in: 0...360, ec: "0040-00000272") ?? rotate
        if let raw = p.string("image") {
            guard let decoded = Base64URL.decodeString(raw), !decoded.isEmpty else {
                throw ProcessError(.invalidArgument, ec: "0040-00000265",
                                   "watermark: parameter 'image' is not a base64url-encoded object key", parameter: "image")
            }
            image = try Self.mark(decoded)
        }
        order = try p.int("order", in: 0...1) ?? order
        align = try p.int("align", in: 0...2) ?? align
        interval = try p.int("interval", in: 0...1000) ?? interval
        if text == nil, image == nil {
            throw ProcessError(.missingArgument, "watermark: give text_ (base64url text) or image_ (base64url object key)")
        }
    }

    /// Besides the seven OSS names, `type` may name a fontconfig family (Derive's extension, for
    /// manifests): 1-64 bytes of letters (with their marks, in any script), digits, spaces and
    /// `-_.'+&()`, so the name can never be read as a fontconfig pattern or a Pango size or style
    /// (`fc-list : family` prints names such as "M+ 1p" too).
    public static func isFamilyName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.first != " " && name.last != " "
            && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == " " || familyPunctuation.contains($0) }
    }

    static let familyPunctuation: Set<Character> = ["-", "_", ".", "'", "+", "&", "(", ")"]

    static func mark(_ decoded: String) throws -> Mark {
        let marker = "?x-oss-process="
        guard let range = decoded.range(of: marker) else { return Mark(key: decoded, process: nil) }
        let key = String(decoded[..<range.lowerBound])
        let process = String(decoded[range.upperBound...])
        do {
            return Mark(key: key, process: try Pipeline.parse(process, context: .watermark))
        } catch var error as ProcessError {
            error.parameter = "image"
            error.message = "watermark image '\(key)': " + error.message
            error.offset = nil
            throw error
        }
    }

    public var dependencies: [Dependency] {
        var result: [Dependency] = []
        if let image { result.append(.object(key: image.key)) }
        if let text { result.append(.font(name: font, text: text, size: size)) }
        return result
    }

    public var canonicalItems: [String] {
        var items = ["t_\(opacity)", "g_\(gravity.rawValue)", "x_\(x)", "y_\(y)", "voffset_\(voffset)",
                     "fill_\(fill ? 1 : 0)", "padx_\(padx)", "pady_\(pady)"]
        if let image {
            var value = image.key
            if let process = image.process { value += "?x-oss-process=" + process.canonical }
            items.append("image_" + Base64URL.encode(value))
        }
        if let text {
            items += ["text_" + Base64URL.encode(text), "type_" + Base64URL.encode(font), "color_\(color)",
                      "size_\(size)", "shadow_\(shadow)", "rotate_\(rotate)"]
        }
        if image != nil, text != nil {
            items += ["order_\(order)", "align_\(align)", "interval_\(interval)"]
        }
        return items
    }
}
