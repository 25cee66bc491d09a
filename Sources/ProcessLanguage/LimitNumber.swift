/// The one syntax of limit numbers, shared by the manifest's `limits:` and the CLI's limit flags
/// (README, "Limits and errors"): a decimal integer, optionally negative (so a range error can
/// name it), with `_` between digits allowed. No hex, fractions, exponents, `+`, infinities or
/// NaN: both places accept exactly the same forms.
public enum LimitNumber {
    public static func parse(_ text: String) -> Int? {
        guard let digits = integerDigits(text), let value = Int(digits.filter { $0 != "_" }) else { return nil }
        return text.first == "-" ? -value : value
    }

    /// True for text in the syntax whose value does not fit an `Int` (past ±9.2e18): a range
    /// error ("must be at most …"), not "must be an integer".
    public static func isOutOfRange(_ text: String) -> Bool {
        integerDigits(text) != nil && parse(text) == nil
    }

    /// The digits (with `_`) of text in the syntax, without its sign; nil for other text.
    private static func integerDigits(_ text: String) -> Substring? {
        var digits = Substring(text)
        if digits.first == "-" { digits = digits.dropFirst() }
        guard let first = digits.first, first.isASCII, first.isNumber, digits.last != "_",
              digits.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }),
              !digits.contains("__") else { return nil }
        return digits
    }
}
