import Crypto
import Foundation

/// The witness files' own check (attack round 30, finding 2): the witness alone makes `build`
/// say `Nothing to do` and `check` exit 0, so a hand-edited one (an output's line taken out, an
/// input's digest swapped for new bytes') must never be taken at its word. Each file ends with a
/// `!seal gmac1 <nonce> <tag>` line: a GMAC (AES-256-GCM's tag over every byte before it, nothing
/// encrypted) under a key derived from the secret this user keeps for the state (`StateBinding`)
/// and the file's domain, with a fresh random 96-bit nonce per seal (a state with no secret held,
/// as in a test's in-memory disk, derives it from an empty secret: a check of the body, which
/// still catches an edit by hand). A file whose seal is missing or does not verify is not read:
/// the full plan runs, never an error. An older Derive reads this seal as not its own and plans,
/// which is safe; this Derive reads an older `!seal <hmac>` line the same way (one full plan).
///
/// Why GMAC and not HMAC-SHA256 (the seal until round 42): both are keyed checks of every byte,
/// but the 2 000-output witness is 228 kB and its HMAC was 8.0 of a release no-op's 58.8 million
/// instructions (SHA-256 in software, as callgrind runs it; issue 15); AES-GCM's GHASH runs on
/// the CPU's carry-less multiply, about 1 instruction a byte. `WitnessSealTests` checks that any
/// changed byte (body, nonce or tag), another key or another domain is refused.
enum WitnessSeal {
    static let prefix = "!seal "

    /// The key for the state in `stateFolder`: the user's secret for it, else empty.
    static func key(stateFolder: String) -> SymmetricKey {
        SymmetricKey(data: StateBinding.secret(forState: stateFolder + "/" + StateStore.fileName) ?? Data())
    }

    /// What follows `prefix` on a GMAC seal line, before the nonce and the tag.
    static let scheme = "gmac1 "

    /// The AES-256 key for `domain`'s files under `key`: HMAC-SHA256 of the domain (one block),
    /// so the witness's seal never verifies its inputs' record or the other way round.
    static func sealKey(_ key: SymmetricKey, domain: String) -> SymmetricKey {
        SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Data(("derive-witness-seal/gmac1\u{0}" + domain).utf8), using: key))
    }

    /// The GMAC tag of `body` under `domain`'s key and `nonce`, nil when the cipher refuses (it
    /// does not for a 256-bit key and a 96-bit nonce).
    static func tag<Body: DataProtocol>(_ body: Body, nonce: AES.GCM.Nonce, domain: String, key: SymmetricKey) -> Data? {
        try? AES.GCM.seal(Data(), using: sealKey(key, domain: domain), nonce: nonce, authenticating: body).tag
    }

    /// `text` with its seal line appended (a fresh random nonce each time).
    static func sealed(_ text: String, domain: String, key: SymmetricKey) -> Data {
        var data = Data(text.utf8)
        let nonce = AES.GCM.Nonce()
        let tag = Self.tag(data, nonce: nonce, domain: domain, key: key) ?? Data()
        data.append(contentsOf: (prefix + scheme + ContentDigests.hex(nonce) + " " + ContentDigests.hex(tag) + "\n").utf8)
        return data
    }

    /// The body of `bytes` (everything before its last line, a seal that verifies), nil otherwise.
    static func opened(_ bytes: [UInt8], domain: String, key: SymmetricKey) -> ArraySlice<UInt8>? {
        guard bytes.last == 0x0A else { return nil }
        let end = bytes.endIndex - 1
        let start = bytes[..<end].lastIndex(of: 0x0A).map { $0 + 1 } ?? bytes.startIndex
        let line = bytes[start..<end]
        let lead = Array((prefix + scheme).utf8)
        // `!seal gmac1 ` + 24 hex digits + ` ` + 32 hex digits.
        guard line.count == lead.count + 24 + 1 + 32, line.starts(with: lead), line[start + lead.count + 24] == 0x20,
              let nonceBytes = Self.bytes(hex: line[(start + lead.count)..<(start + lead.count + 24)]),
              let written = Self.bytes(hex: line[(start + lead.count + 25)...]),
              let nonce = try? AES.GCM.Nonce(data: nonceBytes),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: Data(), tag: written)
        else { return nil }
        let body = bytes[..<start]
        // `open` compares the tag in constant time; any difference (an edit, another key) throws.
        // One contiguous region (an array's slice): read in place, not copied.
        return (try? AES.GCM.open(box, using: sealKey(key, domain: domain), authenticating: body)) != nil ? body : nil
    }

    /// The bytes that lower-case hex digits (as `ContentDigests.hex` writes them) stand for, nil
    /// for anything else.
    static func bytes(hex digits: ArraySlice<UInt8>) -> [UInt8]? {
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: return digit - 0x30
            case 0x61...0x66: return digit - 0x61 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index < digits.endIndex {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}
