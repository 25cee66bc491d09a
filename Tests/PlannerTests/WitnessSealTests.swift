import Crypto
import Foundation
import Testing
import TestSupport
@testable import Planner

/// The witness files' seal (attack 30's F2) is a GMAC now (issue 15: the HMAC-SHA256 over a
/// 2 000-output witness was 8.0 of a no-op's 58.8 million instructions). It must still refuse
/// every edit: any byte changed anywhere in a sealed file (body, nonce, tag, the seal line's
/// words), a line taken out, another key, the other file's domain, and an older Derive's
/// `!seal <hmac>` line (read as not sealed: one full plan, never trust).
@Suite(.ownThreads) struct WitnessSealTests {
    static let domains = [NoOpWitness.sealDomain, TouchedInputs.sealDomain]
    static var keys: [SymmetricKey] { [SymmetricKey(data: Data()), SymmetricKey(data: Data((0..<32).map { UInt8($0 &* 37 &+ 5) }))] }

    /// A witness-shaped body: four head lines, then `count` output lines with stat tokens.
    static func body(_ count: Int) -> String {
        var text = String(repeating: "a", count: 64) + "\n" + String(repeating: "b", count: 64) + "\n-\n1796446486594917257\n"
        for i in 0..<count {
            text += "\"/tmp/tree/out/d\(i % 100)/s\(i).a.jpg\" 000000000000012f18ee4101a62b027518ee4101a688e4aa0000000000fee95d\n"
        }
        return text
    }

    @Test func aSealedFileOpensToItsBody() {
        for domain in Self.domains {
            for key in Self.keys {
                // Witness texts end with a newline (the seal is a line of its own).
                for text in ["", "\n", "a\n", "two\nlines\n", Self.body(3), Self.body(2_000)] {
                    let sealed = [UInt8](WitnessSeal.sealed(text, domain: domain, key: key))
                    #expect(WitnessSeal.opened(sealed, domain: domain, key: key).map(Array.init) == Array(text.utf8), "\(domain) \(text.prefix(40))")
                    // The seal line as documented: `!seal gmac1 <24 hex> <32 hex>`.
                    let line = String(decoding: sealed[text.utf8.count...], as: UTF8.self)
                    #expect(line.hasPrefix("!seal gmac1 ") && line.hasSuffix("\n") && line.utf8.count == 12 + 24 + 1 + 32 + 1, "\(line)")
                }
            }
        }
    }

    @Test func everyChangedByteIsRefused() {
        for key in Self.keys {
            let text = Self.body(2)
            let sealed = [UInt8](WitnessSeal.sealed(text, domain: NoOpWitness.sealDomain, key: key))
            #expect(WitnessSeal.opened(sealed, domain: NoOpWitness.sealDomain, key: key) != nil)
            for index in sealed.indices {
                for flip: UInt8 in [0x01, 0x02, 0x20] {
                    var edited = sealed
                    edited[index] ^= flip
                    #expect(WitnessSeal.opened(edited, domain: NoOpWitness.sealDomain, key: key) == nil, "byte \(index) ^ \(flip) was taken")
                }
            }
            // A line taken out (an output's), a line added, the file cut short or longer.
            var lines = String(decoding: sealed, as: UTF8.self).components(separatedBy: "\n")
            lines.remove(at: 4)
            #expect(WitnessSeal.opened(Array(lines.joined(separator: "\n").utf8), domain: NoOpWitness.sealDomain, key: key) == nil)
            #expect(WitnessSeal.opened(Array(("x\n" + String(decoding: sealed, as: UTF8.self)).utf8), domain: NoOpWitness.sealDomain, key: key) == nil)
            #expect(WitnessSeal.opened(Array(sealed.dropLast()), domain: NoOpWitness.sealDomain, key: key) == nil)
            #expect(WitnessSeal.opened(sealed + [0x0A], domain: NoOpWitness.sealDomain, key: key) == nil)
            #expect(WitnessSeal.opened(Array(sealed.dropFirst()), domain: NoOpWitness.sealDomain, key: key) == nil)
        }
    }

    @Test func anotherKeyOrDomainIsRefused() {
        let text = Self.body(5)
        for (index, key) in Self.keys.enumerated() {
            let other = Self.keys[(index + 1) % Self.keys.count]
            let witness = [UInt8](WitnessSeal.sealed(text, domain: NoOpWitness.sealDomain, key: key))
            #expect(WitnessSeal.opened(witness, domain: NoOpWitness.sealDomain, key: other) == nil)
            #expect(WitnessSeal.opened(witness, domain: TouchedInputs.sealDomain, key: key) == nil)
            let record = [UInt8](WitnessSeal.sealed(text, domain: TouchedInputs.sealDomain, key: key))
            #expect(WitnessSeal.opened(record, domain: NoOpWitness.sealDomain, key: key) == nil)
        }
    }

    /// Each seal takes a fresh nonce: two seals of one text differ, and each opens.
    @Test func eachSealHasItsOwnNonce() {
        let key = Self.keys[1]
        let one = [UInt8](WitnessSeal.sealed("same\n", domain: NoOpWitness.sealDomain, key: key))
        let two = [UInt8](WitnessSeal.sealed("same\n", domain: NoOpWitness.sealDomain, key: key))
        #expect(one != two)
        #expect(WitnessSeal.opened(one, domain: NoOpWitness.sealDomain, key: key) != nil)
        #expect(WitnessSeal.opened(two, domain: NoOpWitness.sealDomain, key: key) != nil)
    }

    /// A witness an older Derive sealed (`!seal` and the HMAC-SHA256 of the domain, a NUL and the
    /// body, in hex) is not read: the full plan runs once and saves a witness with this seal.
    @Test func anOlderHMACSealIsNotTaken() {
        for key in Self.keys {
            let text = Self.body(3)
            var mac = HMAC<SHA256>(key: key)
            mac.update(data: Data((NoOpWitness.sealDomain + "\u{0}").utf8))
            mac.update(data: Data(text.utf8))
            let old = Array((text + "!seal " + ContentDigests.hex(mac.finalize()) + "\n").utf8)
            #expect(WitnessSeal.opened(old, domain: NoOpWitness.sealDomain, key: key) == nil)
        }
    }

    @Test func hexIsReadAsWritten() {
        for bytes: [UInt8] in [[], [0], [0xff], [0x01, 0xab, 0x7f, 0x80], Array(0...255)] {
            #expect(WitnessSeal.bytes(hex: Array(ContentDigests.hex(bytes).utf8)[...]) == bytes)
        }
        for bad in ["a", "0g", "AB", "0 ", "-1"] { #expect(WitnessSeal.bytes(hex: Array(bad.utf8)[...]) == nil, "\(bad)") }
    }
}
