import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether relative paths can be resolved here. Foundation reads the current folder into a
/// buffer of about 1 024 bytes and answers an empty path past it (or when the folder was
/// removed); a relative path then resolved against nothing, so `../out` named `/out` (attack
/// 58c's 1: a project 1 237 bytes deep wrote its outputs to `/out`, `check` called them up to
/// date, and `--overwrite` and `clean` replaced and deleted a file at the root). Every command is
/// refused then, before anything is read.
enum CurrentFolderCheck {
    static func refusal() -> String? {
        guard FileManager.default.currentDirectoryPath.isEmpty else { return nil }
        guard let length = CurrentFolder.kernelPath()?.utf8.count else {
            return "the current folder cannot be read (removed since this shell entered it, or not searchable): relative paths cannot be resolved; cd to an existing folder and run derive again"
        }
        return "the current folder's path is \(length) bytes long, past the 1 025 bytes Derive's runtime (Foundation) can resolve relative paths against: "
            + "every relative path would resolve against the wrong folder; cd to a folder with a shorter path (nearer /) and give the manifest's path from there"
    }
}
