/// A face that draws some characters of a text watermark because the font of its `type` lacks
/// them (fontconfig's fallback, the one Pango takes each such character from): its file, family
/// and how its glyphs are drawn. Part of every fingerprint of that text, as the font of `type`
/// is: a configuration that picks another fallback, or draws it otherwise, changes the bytes.
public struct FallbackFont: Sendable, Hashable, Codable {
    public var family: String
    public var file: String
    /// `key=value` words as fontconfig renders the face (`FontCatalog.Resolved.rendering`).
    public var rendering: String

    public init(family: String, file: String, rendering: String) {
        self.family = family; self.file = file; self.rendering = rendering
    }
}
