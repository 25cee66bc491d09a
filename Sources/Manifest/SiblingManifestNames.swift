import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The names a manifest of one stem could have: Derive reads a manifest of any name, so
/// `derive.yaml`, `derive.yml`, `derive.json` and `derive` all default to `derive.lock`.
extension ControlFiles {
    static let manifestExtensions = ["yaml", "yml", "json"]

    static func manifestNames(stem: String) -> [String] {
        manifestExtensions.map { stem + "." + $0 } + [stem]
    }

    /// A regular file (through links) at one of those names. A file without an extension counts
    /// only when it reads as a manifest (text, no NUL byte, naming `buckets`), so a program or notes file
    /// called `derive` beside `derive.yaml` is not taken for one.
    static func couldBeManifest(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        guard (path as NSString).pathExtension.isEmpty else { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 65_536)) ?? Data()
        guard !head.contains(0) else { return false }
        return String(decoding: head, as: UTF8.self).contains("buckets")
    }
}
