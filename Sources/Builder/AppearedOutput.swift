import Confinement
import Foundation
import Manifest
import Planner

extension Builder {
    /// The refusal of a file that appeared at an output's path while this build rendered it
    /// (`what`: "appeared" or "appeared or changed"). When another manifest of this folder
    /// records the file now, or is building right now, the file is most likely that build's
    /// output (two manifests whose narrowing gave one name, built at once): building again is
    /// right, since the next plan sees the name taken and plans the variant under its name as
    /// written; moving the file would break that manifest's output and `--overwrite` would take
    /// it over (attack 48a's F4). Otherwise the file is someone's: move it, or `--overwrite`.
    func appearedRefusal(_ path: String, output: String, what: String) -> String {
        let shown = planner.display(path)
        let manifestPath = URL(literalFilePath: planner.manifestPath).standardizedFileURL.path
        let folder = RealFolder.of((manifestPath as NSString).deletingLastPathComponent)
        let claims = ForeignClaimLookup(stateFolder: planner.manifest.stateFolder, owner: BuildSession.ownerName(manifestPath))
        if let claim = claims.files.claimant(of: path, output: output),
           PathKey.same(RealFolder.of((claim.manifest as NSString).deletingLastPathComponent), folder) {
            let name = (claim.manifest as NSString).lastPathComponent
            return "\(shown) \(what) while building: \(name), another manifest of this folder, wrote it meanwhile (\(claim.reason)); it was kept as \(name)'s output: "
                + "build again (derive build), which plans this variant under its name as written"
        }
        for sibling in SiblingManifests.neighbourLocks(of: manifestPath) where sibling.parses {
            var loader = ManifestLoader()
            loader.crossChecks = false
            loader.neighbourChecks = false
            guard let state = loader.load(sibling.manifest).manifest?.stateFolder,
                  let holder = BuildLock.holder(folder: state, manifest: sibling.manifest), holder.isDerive else { continue }
            let name = (sibling.manifest as NSString).lastPathComponent
            return "\(shown) \(what) while building, while \(name), another manifest of this folder, was building (\(holder.name)): most likely its output; it was kept: "
                + "build again once that build is done (derive build), which plans this variant under its name as written if \(name) records the file "
                + "(if the file is yours instead, move it and build again, or pass --overwrite)"
        }
        return "\(shown) \(what) while building and was not written by Derive; it was kept (move it and build again, or pass --overwrite)"
    }
}
