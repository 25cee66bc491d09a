import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A state folder whose recorded manifest is not there now but which is still that manifest's:
/// shown here by a mount of its folder, or lying in that manifest's own folder at the place
/// recorded. The one definition the builds (`StateOwner.refuseShared`) and validate ask (attack
/// 49a's F8: `state: sub/.derive/n`, a removed neighbour's state folder, validated while plan,
/// check, build and clean refused it).
public enum GoneOwnersStateFolder {
    /// Where the manifest named `owner` (its state owner name) lies seen from the state folder
    /// `folder`: the path from the folder's real path to it (`../../derive.yaml`). A project moved
    /// or copied with its state folder keeps this place; another manifest whose `state:` names
    /// the same folder (from another folder, through a link, or under another name) has another.
    public static func place(owner: String, stateFolder folder: String) -> String {
        let real: String
        if let resolved = realpath(folder, nil) {
            real = String(cString: resolved)
            free(resolved)
        } else {
            real = URL(literalFilePath: folder).standardizedFileURL.path
        }
        let from = real.split(separator: "/", omittingEmptySubsequences: true)
        let to = owner.split(separator: "/", omittingEmptySubsequences: true)
        var common = 0
        while common < from.count, common < to.count - 1, from[common] == to[common] { common += 1 }
        return (Array(repeating: "..", count: from.count - common) + to[common...].map(String.init)).joined(separator: "/")
    }

    /// Why the state folder, recorded for the manifest `recorded` that is not there now, is still
    /// that manifest's and not `owner`'s (`manifest`: this manifest's path as the user gave it),
    /// without the trailing "nothing was written" a build adds; nil when `owner` may take it over:
    /// a manifest renamed in its folder, a project moved or copied with its state, a manifest
    /// moved away from a state folder outside its folder.
    public static func refusal(stateFolder folder: String, recorded: String, recordedPlace: String, owner: String, manifest: String) -> String? {
        guard !recordedPlace.isEmpty else { return nil }
        let absent = "whose manifest is not there now (renamed or moved for a moment, or mid-checkout?)"
        let fix = "two manifests cannot share a state folder (this build would move its state aside, and its records with it); "
            + "put \(recorded) back, or set 'state:' in \(manifest) to a folder of its own (e.g. .derive/\(ownName(owner)))"
        if recordedPlace == place(owner: owner, stateFolder: folder) {
            guard sharedThroughMount(stateFolder: folder, recorded: recorded, recordedPlace: recordedPlace, owner: owner) else { return nil }
            return "the state folder \(folder) is the state folder of \(recorded), \(absent), shown here by a mount (a bind mount of that folder, or of one holding it), "
                + "and holds its build state, not \(owner)'s: " + fix
        }
        // Inside the recorded manifest's folder (`../../derive.yaml`), and still at that place
        // from its real path, while this manifest lies in another folder.
        let inside = recordedPlace.split(separator: "/").dropLast().allSatisfy { $0 == ".." }
        guard inside, place(owner: recorded, stateFolder: folder) == recordedPlace,
              (recorded as NSString).deletingLastPathComponent != (owner as NSString).deletingLastPathComponent else { return nil }
        return "the state folder \(folder) lies in the folder of \(recorded), \(absent), and holds its build state, not \(owner)'s: " + fix
    }

    /// A state folder name of the manifest `owner`'s own, for hints (`derive-own`).
    public static func ownName(_ owner: String) -> String {
        (((owner as NSString).lastPathComponent as NSString).deletingPathExtension) + "-own"
    }

    /// Whether the state folder is, on its file system, the folder from which `recordedPlace`
    /// leads to the recorded manifest (still there): a bind mount of another project's state
    /// folder has a real path of its own, so the place seen from that path matches this project
    /// while the files are the other's. Compared as `MountTable.place` compares bucket folders:
    /// by device and the path on it. Not when this manifest is the recorded one reached through
    /// another mount (one file, two paths).
    public static func sharedThroughMount(stateFolder folder: String, recorded: String, recordedPlace: String, owner: String) -> Bool {
        let mounts = MountTable.current()
        let real: String
        if let resolved = realpath(folder, nil) {
            real = String(cString: resolved)
            free(resolved)
        } else {
            real = folder
        }
        guard let folderPlace = mounts.place(of: real), let recordedAt = mounts.place(of: recorded),
              let ownerAt = mounts.place(of: owner), ownerAt != recordedAt else { return false }
        var steps = folderPlace.path.split(separator: "/").map(String.init)
        for step in recordedPlace.split(separator: "/") {
            if step == ".." { guard !steps.isEmpty else { return false }; steps.removeLast() } else { steps.append(String(step)) }
        }
        return folderPlace.device == recordedAt.device && "/" + steps.joined(separator: "/") == recordedAt.path
    }
}

extension ControlFiles {
    /// This manifest's state folder when it is a removed manifest's that the builds refuse
    /// (`GoneOwnersStateFolder.refusal`): refused here with the same words.
    func validateGoneOwnersStateFolder(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first, case .owned = Self.stateDatabase(in: manifest.stateFolder),
              let (recorded, place) = Self.recordedOwnerAndPlace(database: manifest.stateFolder + "/" + StateFiles.database) else { return }
        let manifestPath = URL(literalFilePath: root).standardizedFileURL.path
        let owner = Self.stateOwnerName(manifestPath)
        guard recorded != owner, recorded != FileSystemPath(manifest: manifestPath).real, Self.isGone(recorded),
              let refusal = GoneOwnersStateFolder.refusal(stateFolder: manifest.stateFolder, recorded: recorded, recordedPlace: place,
                                                          owner: owner, manifest: manifestPath) else { return }
        diagnostics.error(locations.state ?? rootLocation, refusal)
    }
}
