import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Seals a report folder's `.derive-report` (attack round 25's F4). The record is a plain file in
/// a folder anyone may write to (a user's `docs/`, a copied report): on its own it proves nothing,
/// so a hand-written one whose digests match the user's files made their folder Derive's. Derive
/// keeps one random secret for report folders among the user's tokens
/// (`$XDG_STATE_HOME/derive/states/reports`, 0600, made once and never replaced: `StateBinding`'s
/// folder, opened the same way), and the record ends with `seal <hex>`: an HMAC-SHA256 keyed by
/// it over the folder's real path and the record's lines. A record that does not verify (written
/// or edited by hand, copied from another folder, made for another user, or by an older Derive
/// that did not seal it) does not make the folder Derive's.
///
/// What it does not protect against: anything running as the same user (it can read the secret).
public enum ReportSeal {
    /// The token file holding the secret (state tokens are named by 64 hex digits: never this).
    static let tokenName = "reports"

    /// This user's secret for report folders; made (once, never replaced) when `create` and none
    /// is kept yet. Nil when none is kept and `create` is false, or when the one kept is unreadable.
    public static func secret(create: Bool) throws -> Data? {
        if let kept = read() { return kept }
        guard create else { return nil }
        let made = StateBinding.newSecret()
        // Made with `link`: two reports written at once keep one secret, never each its own.
        _ = try StateFolderTrust.writeTokenIfAbsent("secret \(StateBinding.hex(made))\nreport folders\n", name: tokenName)
        guard let kept = read() else { throw StateFolderTrust.tokenError("the secret for report folders could not be read back") }
        return kept
    }

    private static func read() -> Data? {
        guard let data = StateFolderTrust.readToken(name: tokenName) else { return nil }
        let first = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
        return first.hasPrefix("secret ") ? StateBinding.bytes(hex: String(first.dropFirst(7))) : nil
    }

    /// The seal (64 hex digits) of `body`, the record's lines, for the folder whose real path is `folder`.
    public static func seal(_ body: String, folder: String, secret: Data) -> String {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        mac.update(data: Data(("derive-report-seal/1\u{0}" + folder + "\u{0}" + body).utf8))
        return StateBinding.hex(Data(mac.finalize()))
    }

    /// Whether `stored` is `body`'s seal for `folder` (compared in constant time).
    public static func verifies(_ stored: String, body: String, folder: String, secret: Data) -> Bool {
        let expected = Array(seal(body, folder: folder, secret: secret).utf8), given = Array(stored.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        return difference == 0
    }
}

extension StateFolderTrust {
    /// Writes `text` as the token file `name` unless one is there (a temporary file linked into
    /// place, 0600): false when one was already there, which is kept.
    static func writeTokenIfAbsent(_ text: String, name: String) throws -> Bool {
        let folder = try openTokenFolder(create: true)
        defer { close(folder) }
        let temporary = name + ".\(getpid()).tmp"
        let fd = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw tokenError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        defer { unlinkat(folder, temporary, 0) }
        let bytes = Array(text.utf8)
        let written = write(fd, bytes, bytes.count)
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else { throw tokenError("cannot write the token file \(name): \(String(cString: strerror(errno)))") }
        if linkat(folder, temporary, folder, name, 0) == 0 { return true }
        if errno == EEXIST { return false }
        throw tokenError("cannot write the token file \(name): \(String(cString: strerror(errno)))")
    }
}
