import CVipsShim
import Foundation
import ImagingCore
import ProcessLanguage

extension FontCatalog {
    /// How the render draws `text` at `size` in the font of `type` (`TextDrawing`): every face
    /// Pango lays it out with (the font of `type` and each fallback), as `dv_text` draws it, with
    /// the environment that changes the drawing, or why it cannot be drawn.
    public static func drawing(of text: String, type: String, size: Int,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> TextDrawing {
        let words = TextDrawing.fingerprintWords(environment)
        do {
            _ = try resolved(for: type)
            try checkDrawable(text, type: type)
        } catch let error as ProcessError {
            return TextDrawing(faces: [], environment: words, undrawable: error.message)
        } catch {
            return TextDrawing(faces: [], environment: words, undrawable: "\(error)")
        }
        guard let description = description(for: type, size: size), let lines = dv_text_faces(text, description, 72) else {
            return TextDrawing(faces: [], environment: words)
        }
        defer { dv_free(lines) }
        var faces: [DrawnFace] = []
        for line in String(cString: lines).split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3 else { continue }
            faces.append(DrawnFace(family: fields[1], file: fields[0], rendering: fields[2]))
        }
        return TextDrawing(faces: faces, environment: words)
    }
}
