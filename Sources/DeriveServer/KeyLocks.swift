import NIOConcurrencyHelpers

/// Locks per object key, striped: uploads of one key record their metadata and link their file
/// one at a time (uploads of different keys rarely share a stripe, and never wait long).
final class KeyLocks: Sendable {
    static let shared = KeyLocks()
    private let stripes = (0..<64).map { _ in NIOLock() }

    func lock(for key: [UInt8]) -> NIOLock {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in key { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return stripes[Int(hash % UInt64(stripes.count))]
    }
}
