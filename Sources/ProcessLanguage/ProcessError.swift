/// An error in an `x-oss-process` string or while rendering it, shaped like OSS's answer:
/// the error code, the HTTP status that goes with it, the EC number where OSS documents one,
/// and a message naming the action and parameter.
public struct ProcessError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case invalidArgument = "InvalidArgument"
        case badRequest = "BadRequest"
        case missingArgument = "MissingArgument"
        case imageTooLarge = "ImageTooLarge"
        case watermarkError = "WatermarkError"
        case noSuchKey = "NoSuchKey"
        case noSuchStyle = "NoSuchStyle"
        case internalError = "InternalError"
        /// A render stopped by its deadline or cancelled (no EC: OSS documents none).
        case requestTimeout = "RequestTimeout"

        public var httpStatus: Int {
            switch self {
            case .noSuchKey, .noSuchStyle: return 404
            case .internalError: return 500
            default: return 400
            }
        }
    }

    public var code: Code
    /// OSS's troubleshooting number, e.g. `0040-00000312`; nil where OSS documents none.
    public var ec: String?
    public var message: String
    /// The action the error is about (`resize`), if any.
    public var action: String?
    /// The parameter the error is about (`w`), if any.
    public var parameter: String?
    /// Character offset of the failing action inside the process string, for diagnostics.
    public var offset: Int?
    /// A suggestion such as "did you mean 'resize'?".
    public var hint: String?

    public init(_ code: Code, ec: String? = nil, _ message: String,
                action: String? = nil, parameter: String? = nil, offset: Int? = nil, hint: String? = nil) {
        self.code = code
        self.ec = ec
        self.message = message
        self.action = action
        self.parameter = parameter
        self.offset = offset
        self.hint = hint
    }

    public var httpStatus: Int { code.httpStatus }

    public var description: String {
        var text = "\(code.rawValue)"
        if let ec { text += " (EC \(ec))" }
        text += ": " + message
        if let hint { text += " (\(hint))" }
        return text
    }
}

/// Something legal but ignored, such as an unknown key inside a known action.
public struct ProcessWarning: Hashable, Sendable, CustomStringConvertible {
    public var action: String
    public var parameter: String?
    public var message: String

    public init(action: String, parameter: String?, message: String) {
        self.action = action
        self.parameter = parameter
        self.message = message
    }

    public var description: String { message }
}
