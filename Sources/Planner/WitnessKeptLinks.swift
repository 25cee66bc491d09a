import Confinement
import Foundation

/// The no-op witness's answer names the old outputs kept behind a symbolic link as the full plan
/// names them (attack 37a's M1: once the witness was saved, `build`, `plan` and `check` said only
/// "Nothing to do"). The witness keeps the links (`@` lines), not the outputs: those are the
/// lock's lines (the lock keeps a kept output's line) whose file is no output the witness lists,
/// each found behind one of those links as the plan finds it (`SymbolicLinks.first`) and named
/// in the plan's words (`OrphanBehindLink`); a mount point it keeps (`WitnessMountPoints`) likewise. Read only when the witness has links. Anything else
/// (such a line behind no saved link, a saved link with no line behind it, no lock to read) and
/// the witness does not answer: the full plan does.
extension WitnessCheck {
    /// The outputs kept behind `saved`'s links, in the plan's order; nil when they cannot be named.
    static func keptOutputsBehindLinks(_ saved: NoOpWitness.Saved, _ inputs: NoOpWitness.Inputs) -> [OrphanBehindLink]? {
        guard !saved.links.isEmpty else { return [] }
        guard let data = FileManager.default.contents(atPath: inputs.lockPath),
              let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) else { return nil }
        let outputs = PathSet(saved.outputs), links = PathSet(saved.links)
        var kept: [OrphanBehindLink] = []
        var behind: PathSet = []
        let display = { (path: String) in Planner.display(path, manifestPath: inputs.manifestPath) }
        for (output, _) in lock.entries {
            guard let (name, key) = PathKey.split(output), let bucket = inputs.manifest.bucket(named: name) else { return nil }
            let file = bucket.path + "/" + key
            if outputs.contains(file) { continue }
            // Behind a mount point the witness kept (the plan's words for it), else a link.
            if !saved.mounts.isEmpty, let mount = SymbolicLinks.firstMountPoint(on: file, from: bucket.path), saved.mounts[mount] != nil {
                behind.insert(mount)
                kept.append(OrphanBehindLink(output: output, file: file, link: mount, message: OrphanBehindLink.message(file, mount: mount, display: display)))
                continue
            }
            guard let link = SymbolicLinks.first(on: file, below: bucket.path), links.contains(link) else { return nil }
            behind.insert(link)
            kept.append(OrphanBehindLink(output: output, file: file, link: link, message: OrphanBehindLink.message(file, link: link, display: display)))
        }
        guard behind == links else { return nil }
        return kept.sorted { PathKey.ordered($0.output, $1.output) }
    }
}
