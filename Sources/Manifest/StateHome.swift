import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The user's folder of Derive's own state outside every project: the secrets that seal build
/// states (`states/<sha>`), their provenance, the registry of built projects and the reports'
/// seal. `$XDG_STATE_HOME/derive/states` (an absolute `XDG_STATE_HOME` only, as the XDG spec
/// says), else `~/.local/state/derive/states`. One definition: `StateBinding.folder()` asks it.
public enum StateHome {
    /// The folder of tokens, nil when neither `XDG_STATE_HOME` nor a home folder is known.
    public static func tokenFolder(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let base = environment["XDG_STATE_HOME"], base.hasPrefix("/") { return base + "/derive/states" }
        let folder = defaultTokenFolder(environment: environment)
        if let base = environment["XDG_STATE_HOME"], !base.isEmpty { sayRelativeIgnored(base, folder: folder) }
        return folder
    }

    /// `~/.local/state/derive/states`, from HOME or the user's entry.
    private static func defaultTokenFolder(environment: [String: String]) -> String? {
        if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.local/state/derive/states" }
        if let entry = getpwuid(getuid()), let home = entry.pointee.pw_dir {
            let path = String(cString: home)
            if path.hasPrefix("/") { return path + "/.local/state/derive/states" }
        }
        return nil
    }

    private static let saidRelative = LockedBox<Set<String>>([])

    /// A relative `XDG_STATE_HOME` is ignored, as the XDG spec says, but said once per value
    /// (attack 52b's L5: a user who meant to isolate the state home there got the default,
    /// without a word), with the folder used instead.
    private static func sayRelativeIgnored(_ base: String, folder: String?) {
        guard saidRelative.withLock({ $0.insert(base).inserted }) else { return }
        let used = folder.map { "keeps its per-user secrets and the registry of built projects in \($0) instead" } ?? "knows no other folder for its per-user secrets (set HOME)"
        let line = "derive: warning: XDG_STATE_HOME (\(base)) is not an absolute path, so it is ignored, as the XDG Base Directory spec says: Derive \(used); set it to an absolute path to use another folder"
        FileHandle.standardError.write(Data((TerminalText.escaped(line) + "\n").utf8))
    }

    /// Device and inode of the folder of tokens now (links followed), nil while there is none:
    /// a running serve looks at it before each request (one `stat`), and loads the manifest
    /// again when it changed (a link on its way re-pointed into a bucket).
    public static func tokenFolderIdentity() -> [Int64]? {
        guard let folder = tokenFolder() else { return nil }
        var info = stat()
        guard stat(folder, &info) == 0 else { return nil }
        return [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino))]
    }
}

extension ControlFiles {
    /// No bucket holds the folder of tokens (attack 51a's 3: with `XDG_STATE_HOME` inside a public
    /// bucket, serve listed and answered the secret sealing the build states to anyone, who could
    /// then forge records that make the owner's build delete or overwrite their files; builds
    /// could write outputs over it). Decided by the file system (`FileSystemPath`: real paths and
    /// the identity of every existing ancestor), whether or not the folder exists yet.
    func validateStateHome(_ buckets: [(bucket: Bucket, folder: FileSystemPath)], into diagnostics: inout Diagnostics) {
        guard let tokens = StateHome.tokenFolder() else { return }
        let place = FileSystemPath(manifest: URL(literalFilePath: tokens).standardizedFileURL.path)
        let how = ProcessInfo.processInfo.environment["XDG_STATE_HOME"].map { $0.hasPrefix("/") } == true
            ? "XDG_STATE_HOME (\(ProcessInfo.processInfo.environment["XDG_STATE_HOME"] ?? ""))" : "HOME"
        for (bucket, folder) in buckets where folder.contains(place) {
            diagnostics.error(bucket.pathLocation,
                              "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds Derive's folder of per-user secrets and the registry of built projects, \(tokens) (from \(how)): derive serve would hand out the secrets that seal build states, and anyone holding them can forge records that make a build delete or overwrite files; builds could write outputs over them",
                              hint: "point XDG_STATE_HOME to a folder outside every bucket (e.g. export XDG_STATE_HOME=$HOME/.local/state), or give bucket '\(bucket.name)' a folder that does not hold it")
        }
    }
}
