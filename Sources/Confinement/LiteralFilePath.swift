import Foundation

extension URL {
    /// A file URL for `path` taken literally. Foundation's `URL(fileURLWithPath:)` expands a leading
    /// `~` or `~user` to a home folder from passwd (even relative to a base), so a bucket, state or
    /// option path spelt `~photos` would name a folder elsewhere on the machine. Derive's paths are
    /// relative to their manifest or the working folder: `~photos` is the folder of that name there.
    /// A relative path with no base is made absolute against `CurrentFolder.path`, never
    /// against the "" Foundation answers for a current folder past its reach.
    public init(literalFilePath path: String, relativeTo base: URL? = nil) {
        if path.hasPrefix("/") || !path.hasPrefix("~") && base != nil {
            self.init(fileURLWithPath: path, relativeTo: base)
            return
        }
        // Made absolute by hand: a path that starts with '/' is never expanded.
        let folder = base?.path ?? CurrentFolder.path
        self.init(fileURLWithPath: (folder.hasSuffix("/") ? folder : folder + "/") + path)
    }

    /// `path` standardised (`.` and `..` read as text) without expanding a leading `~`.
    public static func literalStandardPath(_ path: String) -> String {
        URL(literalFilePath: path).standardizedFileURL.path
    }
}
