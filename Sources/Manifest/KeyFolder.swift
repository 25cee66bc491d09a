extension PathTemplate {
    /// `{dir}` of an object key: the folders before its last '/', "" at the bucket's top. Not
    /// `NSString.deletingLastPathComponent`, which traps on a one-character string in
    /// swift-corelibs-foundation: a source named `a` at a bucket's top crashed `derive plan` and
    /// `build` (found under issue 15). Keys are as listings give them (no trailing or doubled '/').
    public static func folder(ofKey key: String) -> String {
        guard let slash = key.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        return String(key[..<slash])
    }
}
