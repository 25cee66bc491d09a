import Crypto
import Foundation
import ProcessLanguage

/// Where a truncated listing resumes, handed to the client as ListObjectsV2's
/// `NextContinuationToken` and, when it is not the page's last item, as ListObjects'
/// `NextMarker`. The position may be a key the caller may not see (a private key an anonymous
/// listing walked past), so it is sealed with ChaCha20-Poly1305 under a key made when the server
/// starts: a token reveals nothing of the key and cannot be forged or moved to another bucket.
/// A restarted server no longer opens it (400 InvalidArgument: list again from the start).
struct ListingTokens: Sendable {
    /// The sealing key's bytes (`SymmetricKey` is not Sendable), random per server.
    private let secret: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0 ... 255) }
    private var key: SymmetricKey { SymmetricKey(data: secret) }

    /// ListObjects' resume marker: a marker (a key, as OSS's clients send back) that starts with
    /// this and opens is a position; any other marker is a key, as always.
    static let markerPrefix = "derive-resume."

    func seal(bucket: String, position: [UInt8]) throws -> String {
        var plain = Data(bucket.utf8)
        plain.append(0)
        plain.append(contentsOf: position)
        return Base64URL.encode(try ChaChaPoly.seal(plain, using: key).combined)
    }

    /// The position a token of this server names for `bucket`; nil for anything else.
    func open(_ token: String, bucket: String) -> [UInt8]? {
        guard token.utf8.count <= 8 * 1024, let data = Base64URL.decode(token),
              let box = try? ChaChaPoly.SealedBox(combined: data), let plain = try? ChaChaPoly.open(box, using: key) else { return nil }
        let bytes = Array(plain)
        guard let zero = bytes.firstIndex(of: 0), Array(bytes[..<zero]) == Array(bucket.utf8) else { return nil }
        return Array(bytes[(zero + 1)...])
    }

    func marker(bucket: String, position: [UInt8]) throws -> String { Self.markerPrefix + (try seal(bucket: bucket, position: position)) }

    /// A ListObjects marker as a position: a resume marker of this server, else the key itself.
    func position(ofMarker marker: String, bucket: String) -> [UInt8] {
        if marker.hasPrefix(Self.markerPrefix), let position = open(String(marker.dropFirst(Self.markerPrefix.count)), bucket: bucket) {
            return position
        }
        return Array(marker.utf8)
    }
}
