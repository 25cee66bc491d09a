import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Binds a build state to the user whose Derive made it (attack 17's N4). Every proof a state
/// gives (a record's folder, its device and inode, the index's file) lives in the state itself,
/// so a state Derive did not write for this user (a `.derive/` committed to a repository, a
/// project unpacked from someone's tarball, rows edited by hand) could vouch for anything. A
/// state therefore holds a random token, and the user holds the same token in a file of their
/// own, outside every project: `$XDG_STATE_HOME/derive/states/<key>` (else
/// `~/.local/state/derive/states/<key>`), the key being the SHA-256 of the state database's real
/// path. A state with records whose token the user does not hold is foreign: it is moved aside
/// and the build starts as a fresh clone would (nothing is deleted on its word).
///
/// What it does not protect against: anything running as the same user (it can read the token,
/// or delete the files itself), and a state copied back to the same path by the user (it is theirs).
public enum StateBinding {
    /// The user's folder of tokens, nil when neither `XDG_STATE_HOME` nor a home folder is known.
    public static func folder() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let base = environment["XDG_STATE_HOME"], base.hasPrefix("/") { return base + "/derive/states" }
        if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.local/state/derive/states" }
        if let entry = getpwuid(getuid()), let home = entry.pointee.pw_dir {
            let path = String(cString: home)
            if path.hasPrefix("/") { return path + "/.local/state/derive/states" }
        }
        return nil
    }

    /// The key a state database's token is kept under: its real path (folder links resolved).
    static func key(forState database: String) -> (key: String, path: String) {
        let folder = RealFolder.of((database as NSString).deletingLastPathComponent)
        let path = (folder == "/" ? "" : folder) + "/" + (database as NSString).lastPathComponent
        return (ContentDigests.digest(Data(path.utf8)), path)
    }

    /// The file holding this user's token for the state at `database`, nil when no folder is known.
    public static func file(forState database: String) -> String? {
        folder().map { $0 + "/" + key(forState: database).key }
    }

    /// The token this user holds for the state at `database`, nil when none.
    public static func held(forState database: String) -> String? {
        guard let data = StateFolderTrust.readToken(name: key(forState: database).key) else { return nil }   // never through a link or another's folder
        let first = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
        let token = first.hasPrefix("token ") ? String(first.dropFirst(6)) : ""
        return isToken(token) ? token : nil
    }

    /// Keeps `token` as this user's for the state at `database` (written to a temporary file,
    /// then renamed; the folder made private). Throws when it cannot be written.
    public static func hold(_ token: String, forState database: String) throws {
        guard folder() != nil else {
            throw PlanError(message: "no folder to keep the build state's token in: set HOME or XDG_STATE_HOME")
        }
        // The folders on the way opened without following links, each the user's (attack 18's S12);
        // the path as a JSON string: a newline in it never makes a line of its own.
        try StateFolderTrust.writeToken("token \(token)\nstate \(StateFolderTrust.quoted(key(forState: database).path))\n", name: key(forState: database).key)
    }

    /// A new random token (256 bits, hex).
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    static func isToken(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
