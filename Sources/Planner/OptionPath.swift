import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A path a command-line option names for Derive to write (`diff --junit FILE`, `--html`/
/// `--renders DIR`, `catalog --html DIR`, `process -o FILE`) or to name in a manifest (`init
/// DIR`), resolved once by the file system: every existing folder on the way is replaced by its
/// real path (a link followed, as the kernel follows it), the names not made yet are appended,
/// and the last name is kept as given (a link there is the caller's to refuse). That one path is
/// then both checked and written.
///
/// A `..` is taken only where it means the same folder read as text and by the kernel: after a
/// symbolic link, `lnk/..` is the parent of where the link leads, not the folder holding `lnk`,
/// and the check and the write once took one reading each (attack 13b: the manifest replaced by
/// `--junit d/../derive.yaml`, renders in a public bucket by `--html lnk/../report`). Where the
/// two differ, or `..` follows a folder that is not there yet, the path is refused, naming both.
public enum OptionPath {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `path`, as `option` (`--junit`, `-o`, `DIR`) named it, resolved as above: absolute, with
    /// no link, `.` or `..` before its last name.
    public static func resolve(_ path: String, option: String) throws -> String {
        let start = path.hasPrefix("/") ? "/" : currentFolder()
        let components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let kernel = try walk(components, from: start, path: path, option: option)
        guard components.contains("..") else { return kernel }
        let lexical = textual(components, from: start)
        let read = try walk(lexical.split(separator: "/").map(String.init), from: "/", path: path, option: option)
        guard read == kernel else {
            throw Failure(description: "\(option) \(path) goes through a symbolic link and then '..': the file system reads it as \(kernel), the text as \(read). "
                          + "Derive does not guess which one you mean: give the path without '..' (\(kernel) or \(read))")
        }
        return kernel
    }

    /// The real path of the current folder (as getcwd gives it, links resolved).
    static func currentFolder() -> String {
        let here = CurrentFolder.path
        return realPath(here) ?? here
    }

    /// `components` from `start` (a real path) as the kernel resolves them, the last one kept as named.
    private static func walk(_ components: [String], from start: String, path: String, option: String) throws -> String {
        var current = start
        var missing: String?
        let last = components.lastIndex { $0 != "." } ?? -1
        for (index, component) in components.enumerated() {
            if component == "." { continue }
            if component == ".." {
                if let missing {
                    throw Failure(description: "\(option) \(path) has '..' after \(missing), which does not exist yet; give the path without '..' (\(textual(components, from: start)))")
                }
                current = parent(current)
                continue
            }
            let next = join(current, component)
            if missing != nil || index == last {
                current = next
                continue
            }
            var info = stat()
            guard lstat(next, &info) == 0 else {
                missing = next
                current = next
                continue
            }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                guard let real = realPath(next) else {
                    throw Failure(description: "\(option) \(path): \(next) is a symbolic link that leads nowhere; make it lead to a folder, or give another path")
                }
                current = real
            } else {
                current = next
            }
        }
        return current
    }

    /// `components` from `start` with `.` and `..` taken as text (the path as it reads).
    private static func textual(_ components: [String], from start: String) -> String {
        var current = start
        for component in components where component != "." {
            current = component == ".." ? parent(current) : join(current, component)
        }
        return current
    }

    private static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), path != "/" else { return "/" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func join(_ folder: String, _ name: String) -> String {
        folder == "/" ? "/" + name : folder + "/" + name
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
