import Crypto
import Foundation

/// The witness files' own check (attack round 30, finding 2): the witness alone makes `build`
/// say `Nothing to do` and `check` exit 0, so a hand-edited one (an output's line taken out, an
/// input's digest swapped for new bytes') must never be taken at its word. Each file ends with a
/// `!seal <hex>` line: an HMAC-SHA256 of every byte before it, keyed by the secret this user keeps
/// for the state (`StateBinding`; a state with no secret held, as in a test's in-memory disk,
/// uses an empty key: a digest of the body, which still catches an edit by hand). A file whose
/// seal is missing or does not verify is not read: the full plan runs, never an error. An older
/// Derive reads a `!seal` line as not its format and plans, which is safe.
enum WitnessSeal {
    static let prefix = "!seal "

    /// The key for the state in `stateFolder`: the user's secret for it, else empty.
    static func key(stateFolder: String) -> SymmetricKey {
        SymmetricKey(data: StateBinding.secret(forState: stateFolder + "/" + StateStore.fileName) ?? Data())
    }

    static func mac<Bytes: DataProtocol>(_ body: Bytes, domain: String, key: SymmetricKey) -> String {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Data((domain + "\u{0}").utf8))
        mac.update(data: body)
        return ContentDigests.hex(mac.finalize())
    }

    /// `text` with its seal line appended.
    static func sealed(_ text: String, domain: String, key: SymmetricKey) -> Data {
        var data = Data(text.utf8)
        data.append(contentsOf: (prefix + mac(data, domain: domain, key: key) + "\n").utf8)
        return data
    }

    /// The body of `bytes` (everything before its last line, a seal that verifies), nil otherwise.
    static func opened(_ bytes: [UInt8], domain: String, key: SymmetricKey) -> ArraySlice<UInt8>? {
        guard bytes.last == 0x0A else { return nil }
        let end = bytes.endIndex - 1
        let start = bytes[..<end].lastIndex(of: 0x0A).map { $0 + 1 } ?? bytes.startIndex
        let line = bytes[start..<end]
        guard line.starts(with: Array(prefix.utf8)) else { return nil }
        let body = bytes[..<start]
        let written = String(decoding: line.dropFirst(prefix.utf8.count), as: UTF8.self)
        // Compared whole: a seal is 64 hex digits, and one that differs is an edit, not a secret to guess at.
        guard written == mac(body, domain: domain, key: key) else { return nil }
        return body
    }
}
