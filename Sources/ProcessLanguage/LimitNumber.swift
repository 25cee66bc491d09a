/// The one syntax of limit numbers, shared by the manifest's `limits:` and the CLI's limit flags
/// (README, "Limits and errors"): a decimal integer, optionally negative (so a range error can
/// name it), with `_` between digits allowed. No hex, fractions, exponents, `+`, infinities or
/// NaN: both places accept exactly the same forms.
public enum LimitNumber {
    public static func parse(_ text: String) -> Int? {
        var digits = Substring(text)
        let negative = digits.first == "-"
        if negative { digits = digits.dropFirst() }
        guard let first = digits.first, first.isASCII, first.isNumber, digits.last != "_",
              digits.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }),
              !digits.contains("__"),
              let value = Int(digits.filter { $0 != "_" }) else { return nil }
        return negative ? -value : value
    }
}
