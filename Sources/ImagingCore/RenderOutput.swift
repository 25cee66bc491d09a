import Foundation
import ProcessLanguage

/// What a render produced: encoded image bytes, or a JSON answer (`info`, `average-hue`).
public struct RenderOutput: Sendable {
    public enum Kind: Sendable, Hashable {
        case image(Format.Kind)
        case json
    }

    public var kind: Kind
    public var bytes: Data
    /// Size of the image (of one frame when animated); 0 for JSON answers.
    public var width: Int
    public var height: Int
    public var frames: Int
    /// Pixels the decoder produced (one frame): with shrink-on-load, far fewer than the source has.
    public var decodedPixels: Int = 0

    public init(kind: Kind, bytes: Data, width: Int, height: Int, frames: Int, decodedPixels: Int = 0) {
        self.kind = kind
        self.bytes = bytes
        self.width = width
        self.height = height
        self.frames = frames
        self.decodedPixels = decodedPixels
    }

    public var contentType: String {
        switch kind {
        case .image(let format): return format.mimeType
        case .json: return "application/json"
        }
    }

    public var fileExtension: String {
        switch kind {
        case .image(let format): return format.fileExtension
        case .json: return "json"
        }
    }
}
