import Confinement
import Foundation
import GRDB
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Which manifest a build state belongs to (its `owner` record), one identity for a manifest
/// however it is reached.
///
/// The name is the manifest's absolute path with every folder's links resolved but the manifest's
/// own name kept: a `derive.yaml` that is a link to a file elsewhere (a dotfiles or stow checkout)
/// belongs to the project it lies in, whose buckets, state and lock are all resolved from its
/// folder, so a link swapped for a copy (or back, or an editor replacing the link by a file) is
/// the same project (attack 15/16's static M7b: the state became "another manifest's" and the
/// project's own outputs were refused).
public enum StateOwner {
    public static func name(_ manifestPath: String) -> String {
        let absolute = URL(literalFilePath: manifestPath).standardizedFileURL.path
        let folder = (absolute as NSString).deletingLastPathComponent
        guard let resolved = realpath(folder, nil) else { return absolute }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return (base == "/" ? "" : base) + "/" + (absolute as NSString).lastPathComponent
    }

    /// Whether a state's recorded owner is the manifest named `owner`: its name, or the name
    /// Derive before 0.14 recorded for it (the path with the manifest's own link resolved too), so
    /// a linked manifest's state is its own after the upgrade (its owner record is then rewritten).
    public static func isSame(recorded: String, owner: String) -> Bool {
        if recorded == owner { return true }
        guard let resolved = realpath(owner, nil) else { return false }
        defer { free(resolved) }
        return recorded == String(cString: resolved)
    }

    /// Where the manifest named `owner` (`name(_:)`) lies seen from the state folder `folder`: the
    /// path from the folder's real path to it (`../../derive.yaml`). A project moved or copied
    /// with its state folder keeps this place; another manifest whose `state:` names the same
    /// folder (from another folder, through a link, or under another name) has another.
    public static func place(owner: String, stateFolder folder: String) -> String {
        GoneOwnersStateFolder.place(owner: owner, stateFolder: folder)
    }

    /// Refuses a state in `folder` recorded for another manifest at another place beside it
    /// (see `place`) while that manifest is still there: two manifests' `state:` name one folder,
    /// and each would move the other's state aside (its records, and what they prove, lost) for
    /// ever. Read-only, before anything is written. A state recorded for a manifest at this same
    /// place (this project moved or copied with its state), for one no longer there (moved away
    /// from a state folder outside it), or before places were recorded is left to `StateStore`,
    /// which moves it aside as before.
    public static func refuseShared(stateFolder folder: String, manifest: String) throws {
        let owner = name(manifest)
        let path = folder + "/" + StateFiles.database
        var info = stat()
        // Opened only once the folder, the database and its journal are known to be this user's
        // (SQLite replays a hot journal on opening: StateTrustRound18Tests); otherwise the
        // checks that follow refuse it with their own message.
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0,
              (try? StateFolderTrust.check(stateFolder: folder)) != nil,
              (try? StateFolderTrust.checkDatabaseFiles(path)) != nil else { return }
        var configuration = Configuration()
        configuration.readonly = true
        guard let (recorded, recordedPlace, sealedHere) = (try? recordedOwner(database: path, configuration: configuration)) ?? nil else { return }
        guard !isSame(recorded: recorded, owner: owner) else { return }
        guard lstat(recorded, &info) == 0 else {
            // The recorded manifest is not there now (renamed a moment, mid-checkout): its state is
            // still its own when the folder is its very state folder, shown here by a mount or
            // reached from another project's folder (attack 37b's F8: Q's build moved P's state
            // aside and wrote its own in P's folder). A manifest moved away from a state folder
            // outside its folder, or a copy moved with its state, still takes it over.
            if let refusal = absentOwnersFolder(stateFolder: folder, recorded: recorded, recordedPlace: recordedPlace, owner: owner, manifest: manifest) {
                throw PlanError(message: refusal)
            }
            return
        }
        if recordedPlace.isEmpty {
            // Before places were recorded (v11) nothing tells a copy from a sharer but this: a
            // state this user's Derive sealed at this very path was used here, by `recorded`, still
            // there, so it is that manifest's (attack 31's F5: claiming it moved its records aside).
            guard sealedHere else { return }
        } else if recordedPlace == place(owner: owner, stateFolder: folder) {
            // The same place from this folder's real path: a copy moved with its state, unless
            // the folder is the recorded manifest's own shown here by a mount (attack 36c's M6).
            guard sharedThroughMount(stateFolder: folder, recorded: recorded, recordedPlace: recordedPlace, owner: owner) else { return }
            throw PlanError(message: "the state folder \(folder) is the state folder of \(recorded), shown here by a mount (a bind mount of that folder, or of one holding it), "
                + "and holds its build state, not \(owner)'s: two manifests cannot share a state folder (each build would move the other's state aside); "
                + "unmount it, or set 'state:' in \(manifest) to a folder of its own (e.g. .derive/\(ownName(owner))); nothing was written")
        }
        // Deleting the other manifest passes its state to this one only where a build would then
        // take it over (attack 48b's F4: the advice was given where the next build refused again).
        let passes = absentOwnersFolder(stateFolder: folder, recorded: recorded, recordedPlace: recordedPlace, owner: owner, manifest: manifest) == nil
        throw PlanError(message: "the state folder \(folder) holds the build state of \(recorded), whose 'state:' names this folder too, "
            + "not of \(owner): two manifests cannot share a state folder (each build would move the other's state aside); "
            + "give each its own 'state:' (set 'state:' in \(manifest) to a folder of its own, e.g. .derive/\(ownName(owner)))"
            + (passes ? ", or, if \(recorded) is no longer used, delete it (its state then passes to this manifest)" : "") + "; nothing was written")
    }

    /// Why the state folder, recorded for the manifest `recorded` that is not there now, is still
    /// that manifest's and not `owner`'s: shown here by a mount of its folder (`sharedThroughMount`),
    /// or lying in the recorded manifest's own folder, at the place recorded (`.derive/derive`
    /// beside it, reached from another folder through a link or an absolute `state:`). Nil when
    /// `owner` may take it over: a manifest renamed in its folder, a project moved or copied with
    /// its state, a manifest moved away from a state folder outside its folder.
    static func absentOwnersFolder(stateFolder folder: String, recorded: String, recordedPlace: String, owner: String, manifest: String) -> String? {
        GoneOwnersStateFolder.refusal(stateFolder: folder, recorded: recorded, recordedPlace: recordedPlace, owner: owner, manifest: manifest)
            .map { $0 + "; nothing was written" }
    }

    /// A state folder name of the manifest `owner`'s own, for hints (`derive-own`).
    static func ownName(_ owner: String) -> String { GoneOwnersStateFolder.ownName(owner) }

    /// `GoneOwnersStateFolder.sharedThroughMount`.
    static func sharedThroughMount(stateFolder folder: String, recorded: String, recordedPlace: String, owner: String) -> Bool {
        GoneOwnersStateFolder.sharedThroughMount(stateFolder: folder, recorded: recorded, recordedPlace: recordedPlace, owner: owner)
    }

    /// The owner record of the database at `path`, and whether this user's secret kept for that
    /// path seals it; nil when there is no owner record.
    static func recordedOwner(database path: String, configuration: Configuration) throws -> (manifest: String, place: String, sealed: Bool)? {
        let file = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? file.close() }
        guard let (manifest, place) = try file.read({ db in try recordedOwner(db) }) else { return nil }
        if case .sealed = try StateStore.binding(file, database: path) { return (manifest, place, true) }
        return (manifest, place, false)
    }

    /// The owner record (manifest, place; the place empty before v11), nil when there is none.
    static func recordedOwner(_ db: Database) throws -> (manifest: String, place: String)? {
        guard try db.tableExists("owner") else { return nil }
        let hasPlace = try db.columns(in: "owner").contains { $0.name == "place" }
        guard let row = try Row.fetchOne(db, sql: hasPlace ? "SELECT manifest, place FROM owner" : "SELECT manifest, '' FROM owner") else { return nil }
        return (row[0], row[1])
    }
}
