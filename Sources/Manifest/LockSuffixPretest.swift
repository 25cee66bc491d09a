/// A cheap first test for `Validator.neighbourLockGuard` (issue 15: building every source ×
/// variant output name through NSString, only to test a `.lock` suffix, was 15 % of a 4 000-output
/// edited plan). It answers false only when the rendered name certainly does not end in `.lock`
/// in any case; any other answer sends the output to the full rendering and test, so the guard
/// judges exactly what it did before (`LockSuffixPretestTests` compares the two).
///
/// Why one byte decides: `PathTemplate.render` joins the parts and only drops slashes, which
/// leaves the last byte as it was (a kept slash stays last); `lowercased().hasSuffix(".lock")`
/// needs the last character to be a `k`, and a string whose last byte is ASCII other than `k`/`K`
/// never has one (lowercasing maps ASCII to ASCII; only a non-ASCII last byte, such as the
/// Kelvin sign's, could become one).
extension PathTemplate {
    /// False only when this template, rendered as the guard renders it for source `key` and
    /// `variant`, cannot end in `.lock`. `{dir}` and `{name}` ending the name always answer true.
    func mayEndInLock(key: String, variant: Rule.Variant) -> Bool {
        let slash = UInt8(ascii: "/"), lowerK = UInt8(ascii: "k"), upperK = UInt8(ascii: "K")
        func couldBeK(_ byte: UInt8) -> Bool { byte >= 0x80 || byte == lowerK || byte == upperK }
        for part in parts.reversed() {
            let value: String
            switch part {
            case .literal(let literal): value = literal
            case .variable(let name):
                switch name {
                case "key": value = key
                case "dir", "name": return true
                case "ext":
                    if let ext = variant.pipeline.templateExtension { value = ext; break }
                    // The source's extension is empty or a tail of the key's last component, so
                    // it ends in the key's last byte (lowercased): when that is plain ASCII and
                    // no `k`, a non-empty one ends in no `k`, and an empty one leaves the answer
                    // to the parts before it; looking on to them is right either way.
                    guard let last = key.utf8.last, last < 0x80, last != slash, !couldBeK(last) else { return true }
                    continue
                case "style": value = variant.style ?? variant.values["style"] ?? ""
                default: value = variant.values[name] ?? ""
                }
            }
            if let last = value.utf8.last { return couldBeK(last) }
        }
        return false   // renders empty
    }
}
