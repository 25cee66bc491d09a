import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// No bucket, lock or index lies inside a folder holding another manifest's build state, whatever
/// folder that manifest is in (attack 29's finding 10: `out: {path: ../b/.derive/derive}` passed
/// validation, its build wrote there, and b's next build stopped on a file that was not its
/// own). The checks of manifests in this manifest's own folder (`validateSiblings`) find their
/// state folders by name; a state elsewhere is found by what it holds: a `state.sqlite` stamped
/// Derive's ("DrSt"), or one beside Derive's `build.lock` (a state from before the stamp), or by
/// its name: `.derive/<stem>` beside a manifest of that stem (its default, made or not yet).
/// A folder that holds a manifest too (`state: .`) is its user's folder, not refused here.
extension ControlFiles {
    func validateForeignStates(into diagnostics: inout Diagnostics) {
        let own = FileSystemPath(manifest: manifest.stateFolder)
        var targets = [(what: "the lock file \(display(manifest.lockFile))", path: manifest.lockFile, location: locations.lock ?? rootLocation)]
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            targets.append(("the index \(display(bucket.path + "/" + index.path))", bucket.path + "/" + index.path, locations.index ?? rootLocation))
        }
        for bucket in manifest.buckets {
            targets.append(("bucket '\(bucket.name)' (\(bucket.declaredPath))", bucket.path, bucket.pathLocation))
        }
        for target in targets {
            // Said already (a neighbour's state folder in this folder): once is enough.
            let location = target.location
            guard !diagnostics.errors.contains(where: { $0.file == location.file && $0.line == location.line && $0.column == location.column }),
                  let state = Self.foreignStateFolder(holding: target.path, own: own) else { continue }
            diagnostics.error(location,
                              "\(target.what) is inside \(display(state)), a folder holding another manifest's Derive build state; that manifest's builds would open, overwrite, move aside or delete what this one writes there, and this one's would break its state",
                              hint: "choose a path outside \(display(state))")
        }
    }

    /// The folder at or above `path` that holds a Derive build state other than `own`, nil when none does.
    static func foreignStateFolder(holding path: String, own: FileSystemPath) -> String? {
        var folder = FileSystemPath(manifest: path).real
        while true {
            if holdsDerivesState(folder) || isDefaultStateFolder(folder), !FileSystemPath(manifest: folder).sameFile(as: own),
               manifests(in: folder).isEmpty { return folder }
            if folder == "/" || folder.isEmpty { return nil }
            folder = (folder as NSString).deletingLastPathComponent
        }
    }

    /// Whether `folder` is `.derive/<stem>` beside a manifest of that stem: its default state
    /// folder, made or not yet (a neighbour not built yet).
    static func isDefaultStateFolder(_ folder: String) -> Bool {
        let parent = (folder as NSString).deletingLastPathComponent
        guard (parent as NSString).lastPathComponent == ".derive" else { return false }
        let owners = manifestCandidates(stem: (folder as NSString).lastPathComponent, in: (parent as NSString).deletingLastPathComponent)
        return owners.contains(where: couldBeManifest)
    }

    /// Whether `folder` holds Derive's state database: stamped "DrSt" (bytes 68 to 71 of its
    /// header), or, unstamped, beside a `build.lock` holding Derive's `pid …` line.
    static func holdsDerivesState(_ folder: String) -> Bool {
        let fd = open(folder + "/" + StateFiles.database, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 100)
        guard pread(fd, &header, 100, 0) == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else { return false }
        if header[68..<72].elementsEqual(Array("DrSt".utf8)) { return true }
        let lock = FileManager.default.contents(atPath: folder + "/" + StateFiles.buildLock)
        return lock?.starts(with: Data("pid ".utf8)) ?? false
    }
}
