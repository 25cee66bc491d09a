import Crypto
import Foundation
import Manifest
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// Binds a build state to the user whose Derive made it (attack 17's N4, attack 18's S1). Every
/// proof a state gives (a record's folder, its device and inode, the index's file) lives in the
/// state itself, a file in the project that others may read or replace (a `.derive/` committed to
/// a repository, a project unpacked from someone's tarball, rows edited by hand). So the user
/// holds a random secret in a file of their own, outside every project:
/// `$XDG_STATE_HOME/derive/states/<key>` (else `~/.local/state/derive/states/<key>`; mode 0600),
/// the key being the SHA-256 of the state database's real path. The state never holds the
/// secret: it holds a mark (an HMAC of its path keyed by the secret) saying which secret sealed
/// it, and a seal on each record (`StateSeals`). A state with records whose mark is not this
/// user's is foreign: it is moved aside and the build starts as a fresh clone would (nothing is
/// deleted on its word); a record whose seal does not verify is not Derive's.
///
/// Build-17 kept a bearer token in both places (`token …`): such a state is re-sealed once with
/// a new secret (the old token may have been read by anyone who could read the project).
///
/// What it does not protect against: anything running as the same user (it can read the secret,
/// or delete the files itself), and a state copied back to the same path by the user (it is theirs).
public enum StateBinding {
    /// The user's folder of tokens, nil when neither `XDG_STATE_HOME` nor a home folder is known.
    public static func folder() -> String? { StateHome.tokenFolder() }

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

    /// What this user keeps for a state: its secret, or (build-17) a bearer token.
    public enum Held: Sendable, Equatable {
        case secret(Data)
        case token(String)
    }

    /// What this user keeps for the state at `database`, nil when nothing (or nothing readable).
    public static func held(forState database: String) -> Held? {
        guard let data = StateFolderTrust.readToken(name: key(forState: database).key) else { return nil }   // never through a link or another's folder
        let first = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
        if first.hasPrefix("secret "), let secret = bytes(hex: String(first.dropFirst(7))) { return .secret(secret) }
        let token = first.hasPrefix("token ") ? String(first.dropFirst(6)) : ""
        return isToken(token) ? .token(token) : nil
    }

    /// The secret this user keeps for the state at `database`, nil when none.
    public static func secret(forState database: String) -> Data? {
        if case .secret(let secret) = held(forState: database) { return secret }
        return nil
    }

    /// Keeps `secret` as this user's for the state at `database` (a temporary file made 0600,
    /// then renamed). Throws when it cannot be written.
    public static func hold(secret: Data, forState database: String) throws {
        guard folder() != nil else {
            throw PlanError(message: "no folder to keep the build state's token in: set HOME or XDG_STATE_HOME")
        }
        // The folders on the way opened without following links, each the user's (attack 18's S12);
        // the path as a JSON string: a newline in it never makes a line of its own.
        try StateFolderTrust.writeToken("secret \(hex(secret))\nstate \(JSONText.string(key(forState: database).path))\n",
                                        name: key(forState: database).key)
    }

    /// A new random secret (256 bits).
    public static func newSecret() -> Data {
        var generator = SystemRandomNumberGenerator()
        var data = Data()
        for _ in 0..<4 { withUnsafeBytes(of: (generator.next() as UInt64)) { data.append(contentsOf: $0) } }
        return data
    }

    /// The mark a state sealed with `secret` carries in its `binding` row: an HMAC of its real
    /// path, so the state says which secret sealed it without holding it.
    public static func mark(secret: Data, forState database: String) -> String {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        mac.update(data: Data(("derive-state-binding/1\u{0}" + key(forState: database).path).utf8))
        return "sealed " + hex(Data(mac.finalize()))
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    static func bytes(hex text: String) -> Data? {
        guard isToken(text) else { return nil }
        var data = Data(capacity: 32)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            data.append(byte)
            index = next
        }
        return data
    }

    static func isToken(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
