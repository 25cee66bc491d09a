import Confinement
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// Doubt for a file at an output's path when this manifest's own build state is no longer bound
/// to the state home (its token gone: `rm -rf $XDG_STATE_HOME/derive`, "clearing ~/.local/state")
/// and that state records another file there as the one this manifest installed. The state home
/// held what would name the project that installed the file now there (the registry of built
/// projects, the tokens of its state), so nothing can say it is not another project's output:
/// not "no other project exists" (attack 52a's F12: the site adopted a far taker's file from its
/// lock, said "Up to date", and `clean` deleted it). Asked of the state itself and of the states a
/// build moved aside for it (a build under the new state home sets it aside, and then its records
/// are the only word left; clean keeps those). A state that records this very file (the home
/// changed, nothing replaced) raises no doubt.
enum WipedStateHome {
    /// What the doubt says of the state home (the refusal's advice is chosen by it).
    static let marker = "not sealed with a secret of this state home"

    /// Why `file` (this manifest's output `output`) is in doubt; nil when no unbound state of this
    /// manifest (its owner record naming it at this place) records another file there.
    static func doubt(file: String, output: String, stateFolder: String, owner: String) -> String? {
        guard let now = FileIdentity.ofRegularFile(file) else { return nil }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: stateFolder)) ?? []).filter { name in
            name == StateFiles.database || (name.hasPrefix(StateFiles.database + ".") && StateFiles.movedAsidePrefixes.contains { name.hasPrefix($0) }
                && !StateFiles.journalSuffixes.contains { name.hasSuffix($0) })
        }
        var differing: String?
        for name in names.sorted() {
            guard let recorded = unboundRecord(stateFolder + "/" + name, output: output, owner: owner, current: name == StateFiles.database) else { continue }
            // One of this manifest's build states records the very file: it is this manifest's (a
            // later build replaced what an older state moved aside records: with no writable state
            // home every build moves its state aside; StateTrustRound18Tests in s53's full run).
            if recorded == now { return nil }
            if differing == nil { differing = name }
        }
        guard let name = differing else { return nil }
        return "this manifest's build state (\(stateFolder)/\(name)) records another file there as the one it installed, and it is " + marker
            + " (removed, or another XDG_STATE_HOME or HOME), whose registry of built projects would name the project that installed this one"
    }

    /// The identity the database at `database` records for `output` when it is this manifest's
    /// state at this place (not a copy, not moved) and, for the current state, not bound to this
    /// user's state home; nil otherwise.
    private static func unboundRecord(_ database: String, output: String, owner: String, current: Bool) -> FileIdentity? {
        guard (try? StateFolderTrust.checkDatabaseFiles(database)) != nil else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: database, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        let folder = (database as NSString).deletingLastPathComponent
        if current, let binding = try? StateStore.binding(queue, database: database) {
            switch binding {
            case .sealed, .bearer: return nil
            default: break
            }
        }
        return (try? queue.read { db -> FileIdentity? in
            guard let recorded = try StateOwner.recordedOwner(db), StateOwner.isSame(recorded: recorded.manifest, owner: owner),
                  recorded.place.isEmpty || recorded.place == StateOwner.place(owner: owner, stateFolder: folder) else { return nil }
            guard try db.tableExists("outputFiles"),
                  let row = try Row.fetchOne(db, sql: "SELECT device, inode, birth FROM outputFiles WHERE path = ?", arguments: [output]) else { return nil }
            let identity = FileIdentity(stored: row[0], row[1], birth: row[2])
            return identity.device == 0 && identity.inode == 0 ? nil : identity
        }) ?? nil
    }
}
