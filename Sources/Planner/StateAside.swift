import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Moving a state database aside (corrupt, or another manifest's) without losing an earlier
/// one and without piling them up: names are unique (`state.sqlite.corrupt-<unix ns>-<pid>`)
/// and only the `keep` newest of each kind are kept.
public enum StateAside {
    public static let keep = 3

    /// Renames `path` (and its journal files) aside; returns the new name.
    public static func move(_ path: String, suffix: String) throws -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let stamp = "\(time.tv_sec)\(String(format: "%09d", time.tv_nsec))-\(getpid())"
        var aside = path + "." + suffix + "-" + stamp
        var attempt = 1
        while access(aside, F_OK) == 0 { attempt += 1; aside = path + "." + suffix + "-" + stamp + "-\(attempt)" }
        guard rename(path, aside) == 0 else { throw DiskError("cannot move \(path) aside to \(aside): \(String(cString: strerror(errno)))") }
        for journal in StateFiles.journalSuffixes { _ = rename(path + journal, aside + journal) }
        prune(path, suffix: suffix)
        return aside
    }

    /// Removes all but the `keep` newest files moved aside as `suffix`, with their journals.
    /// Only names this scheme (or the older `-<seconds>` one) produces are touched.
    static func prune(_ path: String, suffix: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let prefix = (path as NSString).lastPathComponent + "." + suffix + "-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        let named = names.filter { name in
            guard name.hasPrefix(prefix) else { return false }
            let rest = name.dropFirst(prefix.count)
            return !rest.isEmpty && rest.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "-") }
        }
        let moved = named.filter { name in StateFolderTrust.isMovedAsideState(folder + "/" + name) }   // a user's file of that name is never removed
        func time(_ name: String) -> (Double, String) {
            var info = stat()
            let seconds = lstat(folder + "/" + name, &info) == 0 ? Double(info.st_ctim.tv_sec) + Double(info.st_ctim.tv_nsec) / 1e9 : 0
            return (seconds, name)
        }
        let newestFirst = moved.map(time).sorted { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 > $1.1 }.map(\.1)
        for name in newestFirst.dropFirst(keep) {
            for journal in [""] + StateFiles.journalSuffixes { _ = unlink(folder + "/" + name + journal) }
            FileHandle.standardError.write(Data("derive: removed \(folder)/\(name), an older build state Derive moved aside (it keeps the \(keep) newest of each kind)\n".utf8))
        }
    }
}
