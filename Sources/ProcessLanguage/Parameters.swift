/// The items of one action (`w_100`, `90`), read with the rules of spec §1.2:
/// keyed items split at the first `_`, keys case-sensitive, a bare item is positional.
/// A key given twice keeps its last value (OSS leaves this open; last-wins is what URL
/// builders that append overrides expect). Keys nobody asked for become warnings.
public struct Parameters: Sendable {
    public let action: String
    private var values: [String: String] = [:]
    private var keyOrder: [String] = []
    private var positionalValues: [String] = []
    private var consumed: Set<String> = []
    private var positionalConsumed = false

    public init(action: String, items: [Substring]) {
        self.action = action
        for item in items where !item.isEmpty {
            if let underscore = item.firstIndex(of: "_") {
                let key = String(item[..<underscore])
                let value = String(item[item.index(after: underscore)...])
                if values[key] == nil { keyOrder.append(key) }
                values[key] = value
            } else {
                positionalValues.append(String(item))
            }
        }
    }

    public var isEmpty: Bool { values.isEmpty && positionalValues.isEmpty }

    public func has(_ key: String) -> Bool { values[key] != nil }

    /// The raw value of a keyed item, marking it as understood.
    public mutating func string(_ key: String) -> String? {
        guard let value = values[key] else { return nil }
        consumed.insert(key)
        return value
    }

    /// The first bare value (`rotate,90`), marking it as understood.
    public mutating func positional() -> String? {
        positionalConsumed = true
        return positionalValues.first
    }

    /// An integer parameter checked against its range. A non-number or a value out of range
    /// is an `InvalidArgument` carrying `ec`.
    public mutating func int(_ key: String, in range: ClosedRange<Int>, ec: String? = nil) throws -> Int? {
        guard let raw = string(key) else { return nil }
        return try Parameters.integer(raw, in: range, action: action, parameter: key, ec: ec)
    }

    public mutating func positionalInt(in range: ClosedRange<Int>, ec: String? = nil,
                                       missingEC: String? = nil) throws -> Int {
        guard let raw = positional() else {
            throw ProcessError(.missingArgument, ec: missingEC,
                               "\(action): a value is required, e.g. '\(action),\(range.lowerBound)'",
                               action: action)
        }
        return try Parameters.integer(raw, in: range, action: action, parameter: nil, ec: ec)
    }

    public mutating func choice(_ key: String, of allowed: [String], ec: String? = nil) throws -> String? {
        guard let raw = string(key) else { return nil }
        guard allowed.contains(raw) else {
            throw ProcessError(.invalidArgument, ec: ec,
                               "\(action): parameter '\(key)' must be one of \(allowed.joined(separator: ", ")), got '\(raw)'",
                               action: action, parameter: key)
        }
        return raw
    }

    /// A colour as six hex digits `RRGGBB` (case-insensitive), returned upper-case.
    public mutating func color(_ key: String, ec: String? = nil) throws -> String? {
        guard let raw = string(key) else { return nil }
        guard let color = Parameters.hexColor(raw) else {
            throw ProcessError(.invalidArgument, ec: ec,
                               "\(action): parameter '\(key)' must be a colour of six hex digits like FF8800, got '\(raw)'",
                               action: action, parameter: key)
        }
        return color
    }

    static func hexColor(_ raw: String) -> String? {
        guard raw.count == 6, raw.allSatisfy({ $0.isHexDigit }) else { return nil }
        return raw.uppercased()
    }

    static func integer(_ raw: String, in range: ClosedRange<Int>, action: String,
                        parameter: String?, ec: String?) throws -> Int {
        let name = parameter.map { "parameter '\($0)'" } ?? "the value"
        guard !raw.isEmpty, raw.count <= 12,
              raw.dropFirst(raw.first == "-" ? 1 : 0).allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int(raw) else {
            throw ProcessError(.invalidArgument, ec: ec,
                               "\(action): \(name) must be an integer in [\(range.lowerBound), \(range.upperBound)], got '\(raw)'",
                               action: action, parameter: parameter)
        }
        guard range.contains(value) else {
            throw ProcessError(.invalidArgument, ec: ec,
                               "\(action): \(name) must be in [\(range.lowerBound), \(range.upperBound)], got \(value)",
                               action: action, parameter: parameter)
        }
        return value
    }

    /// Warnings for every item that no reader asked for.
    public func unusedWarnings() -> [ProcessWarning] {
        var warnings: [ProcessWarning] = []
        for key in keyOrder where !consumed.contains(key) {
            warnings.append(ProcessWarning(action: action, parameter: key,
                                           message: "\(action): unknown parameter '\(key)' ignored"))
        }
        let extraPositional = positionalConsumed ? positionalValues.dropFirst() : positionalValues[...]
        for value in extraPositional {
            warnings.append(ProcessWarning(action: action, parameter: nil,
                                           message: "\(action): unexpected value '\(value)' ignored"))
        }
        return warnings
    }
}
