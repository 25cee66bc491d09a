import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What Derive's project discovery reads as another project: a file's name, its bytes and whether
/// its folder holds Derive's state folder decide. One definition for discovery (`NeighbourProjects`,
/// `ForeignProjectFiles`, `ControlFiles.manifests`, `ForeignStateFolders`, the planner's gone
/// manifests' locks) and for `derive serve`'s writers, which never create such a file (issue #9,
/// attack 43b's finding 3: one anonymous PUT of a three-line manifest into a public-read-write
/// bucket's folder made every request 503 and stopped the site's own validate, plan and build;
/// one into a sub-folder froze that folder for every writer; finding 5: a signed `derive.yml`
/// beside a project's `derive.yaml` made that project invalid).
public enum ProjectMarkers {
    /// Derive's state folder: a folder holding an entry of this name is a project's
    /// (`NeighbourProjects.holdsProject`), whatever else it holds.
    public static let stateFolderName = ".derive"
    /// A larger file is never read as a manifest.
    public static let maxManifestBytes = 4 << 20
    /// The first bytes of a Derive lock (`LockFile.isDeriveLock`).
    public static let lockMarker = Data(#"{"format":"derive.lock/"#.utf8)
    /// The first bytes of an SQLite database (a build state, `ControlFiles.stateDatabase`).
    public static let sqliteMagic = Data("SQLite format 3\0".utf8)
    /// The bytes `why` needs of a file larger than `maxManifestBytes` (its lock or database header).
    public static let headerBytes = 64

    /// Whether a file name is one the planner reads as a lock in a manifest's folder
    /// (`ForeignClaims.goneManifestLocks`): a name ending in `.lock` with a stem.
    public static func isLockName(_ name: String) -> Bool { name.count > 5 && name.hasSuffix(".lock") }

    /// Why a file named `name` holding `contents` (all of its `size` bytes, or when it is larger
    /// than `maxManifestBytes` at least its first `headerBytes`), in a folder that holds Derive's
    /// state folder when `besideState`, makes discovery see a project or a project's control file;
    /// nil when it does not. The manifest tests are discovery's own (`couldBeManifest`,
    /// `looksLikeBrokenManifest`).
    public static func why(name: String, contents: Data, size: Int, besideState: Bool) -> String? {
        if name == stateFolderName {
            return "a folder holding '\(stateFolderName)' is a Derive project's (its build state)"
        }
        if size <= maxManifestBytes, ControlFiles.couldBeManifest(contents: contents) {
            return "its bytes parse as a Derive manifest (a mapping with 'version' and 'buckets', 'derivatives' or 'include' at its top), which Derive reads at any name it looks for one (derive.yaml, derive.yml, the stem of a lock)"
        }
        if size <= maxManifestBytes, ControlFiles.hasManifestExtension(name), ControlFiles.looksLikeBrokenManifest(contents: contents, besideState: besideState) {
            return contents.isEmpty
                ? "it is an empty file at a manifest's name beside Derive's state folder or its Derive lock (a project's manifest mid-edit)"
                : "it has a manifest's name and reads like a Derive manifest being edited (a 'version:', 'buckets:' or 'derivatives:' line that does not parse)"
        }
        // One that does not parse and says where its lock or state is, in any spelling: discovery
        // takes it for a project once that lock or state exists (`declaresOwnState`), which serve
        // cannot tell for the folder a writer aims at, so it is never created.
        if size <= maxManifestBytes, ControlFiles.hasManifestExtension(name), ControlFiles.declaresControlFiles(contents: contents) {
            return "it has a manifest's name and reads like a Derive manifest being edited that names its lock or state folder (a 'lock' or 'state' key, and 'version', 'buckets' or 'derivatives', in text that does not parse)"
        }
        // At any name: discovery knows a gone project's lock by its first line, not its name
        // (`LeftLockFiles`, attack 49a's F3), so a planted one would claim files there.
        if contents.starts(with: lockMarker) {
            return "it is a Derive lock, which records another project's outputs"
        }
        if name == StateFiles.database, contents.starts(with: sqliteMagic) {
            return "it is an SQLite database at the name of Derive's build state"
        }
        return nil
    }
}

extension ControlFiles {
    /// The regular file (through links) at `path`, when it is small enough to be a manifest and
    /// holds no NUL byte (no manifest does). Read once per `ReadSnapshot` (each sibling's manifest
    /// was read 13 times by one no-op's checks).
    static func manifestText(_ path: String) -> Data? {
        ReadSnapshot.answer("manifest text", path) { manifestTextReadNow(path) }
    }

    /// `manifestText` read now.
    static func manifestTextReadNow(_ path: String) -> Data? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= ProjectMarkers.maxManifestBytes,
              let data = FileManager.default.contents(atPath: path), !data.contains(0) else { return nil }
        return data
    }

    /// Whether the folder holding `path` holds Derive's state folder (any kind of entry), or
    /// the file has its Derive lock beside it (`<stem>.lock` starting as a lock does: its state
    /// folder gone, the lock still records its outputs; attack 43b's finding 2).
    static func besideState(_ path: String) -> Bool {
        var state = stat()
        if lstat((path as NSString).deletingLastPathComponent + "/" + ProjectMarkers.stateFolderName, &state) == 0 { return true }
        return isDeriveLock(URL(literalFilePath: path).deletingPathExtension().path + ".lock")
    }

    /// Whether this very file's state folder (`.derive/STEM`) or Derive lock (`STEM.lock`) is
    /// beside it.
    static func besideOwnState(_ path: String) -> Bool {
        var state = stat()
        let stem = URL(literalFilePath: path).deletingPathExtension()
        if lstat(stem.deletingLastPathComponent().path + "/" + ProjectMarkers.stateFolderName + "/" + stem.lastPathComponent, &state) == 0 { return true }
        return isDeriveLock(stem.path + ".lock")
    }

    /// Whether the regular file at `path` starts as a Derive lock does (`LockFirstLine`: no link
    /// followed, a FIFO at a lock's name never stalls discovery).
    public static func isDeriveLock(_ path: String) -> Bool { LockFirstLine.lockHeader(path) != nil }

    /// Whether the file at `path` (a manifest's name: `manifestNames`) is a project's manifest as
    /// discovery reads it: one that parses as a manifest, or one mid-edit (`looksLikeBrokenManifest`).
    public static func isProjectManifest(_ path: String) -> Bool {
        guard let data = manifestText(path) else { return false }
        return couldBeManifest(contents: data) || looksLikeBrokenManifest(contents: data, besideState: besideState(path), ownState: besideOwnState(path), path: path)
    }
}
