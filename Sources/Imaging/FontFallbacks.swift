import CVipsShim
import ImagingCore

extension FontCatalog {
    /// The faces other than the font of `type` that Pango draws characters of `text` with (the
    /// first face fontconfig sorts for the family that has each character), each once, in order
    /// of use; empty when the font of `type` has them all, or it is not installed.
    public static func fallbacks(for type: String, text: String) -> [FallbackFont] {
        guard let family = family(for: type), let primary = try? resolved(for: type) else { return [] }
        var seen = Set<UInt32>(), characters: [UInt32] = []
        for scalar in text.unicodeScalars where !FontCoverage.needsNoGlyph(scalar) && seen.insert(scalar.value).inserted {
            characters.append(scalar.value)
        }
        guard !characters.isEmpty, let faces = dv_font_faces(pattern(family), characters, Int32(characters.count)) else { return [] }
        defer { dv_free(faces) }
        var fallbacks: [FallbackFont] = []
        for line in String(cString: faces).split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3, fields[0] != primary.file else { continue }
            fallbacks.append(FallbackFont(family: fields[1], file: fields[0], rendering: fields[2]))
        }
        return fallbacks
    }
}
