import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The folder relative paths are resolved against. Foundation reads the current folder into a
/// buffer of about 1 024 bytes and answers "" past it (or when the folder was removed); a
/// relative path made absolute against that named a file at `/` (attack 58d's H1: a watch whose
/// project moved under a long path made `/.derive/derive`). Commands refuse to start in such a
/// folder (the `derive` executable's check), but a watch runs on while its project moves: the
/// kernel's name is taken then.
public enum CurrentFolder {
    /// Foundation's answer, else the kernel's; `/proc/self/cwd` when neither can name it (a removed
    /// folder): a path through it reaches nothing, where `/` would reach the root.
    public static var path: String {
        let foundation = FileManager.default.currentDirectoryPath
        if !foundation.isEmpty { return foundation }
        return kernelPath() ?? "/proc/self/cwd"
    }

    /// The current folder's path as the kernel gives it, whatever its length (nil when it cannot
    /// be read: removed, or a folder above it not searchable).
    public static func kernelPath() -> String? {
        var size = 4_096
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            if getcwd(&buffer, size) != nil {
                let path = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                // Linux names an unreachable folder "(unreachable)/…": not a path.
                return path.hasPrefix("/") ? path : nil
            }
            guard errno == ERANGE else { return nil }
            size *= 2
        }
        return nil
    }
}
