/// `format` (spec §2.12): the output format. `jpeg` is accepted as a spelling of `jpg`.
/// An encoder setting: the last one in the chain wins.
public struct Format: ProcessAction {
    public static let name = "format"

    public enum Kind: String, Sendable, CaseIterable {
        case jpg, png, webp, bmp, gif, tiff, heic, avif

        public var hasAlpha: Bool { self != .jpg }
        public var mimeType: String {
            switch self {
            case .jpg: return "image/jpeg"
            case .png: return "image/png"
            case .webp: return "image/webp"
            case .bmp: return "image/bmp"
            case .gif: return "image/gif"
            case .tiff: return "image/tiff"
            case .heic: return "image/heic"
            case .avif: return "image/avif"
            }
        }
        public var fileExtension: String { rawValue }
    }

    public var kind: Kind

    public init(kind: Kind) { self.kind = kind }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        guard let raw = p.positional() else {
            throw ProcessError(.missingArgument, ec: "0040-00000207", "format: a format is required, e.g. 'format,webp'")
        }
        guard let kind = Kind(rawValue: raw == "jpeg" ? "jpg" : raw) else {
            throw ProcessError(.invalidArgument, ec: "0040-00000206",
                               "format: unsupported format '\(raw)'; use one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.kind = kind
    }

    public var canonicalItems: [String] { [kind.rawValue] }
}
