import Foundation

/// Sizes of stored object metadata, checked from the request head before any body byte is read,
/// so that neither memory nor the metadata database grows with what a client sends.
extension ObjectMetadata {
    /// OSS's limit on user metadata: the `x-oss-meta-*` names and values together.
    public static let maxUserMetadataBytes = 8 * 1024
    /// Longest value of each stored standard header, in bytes.
    public static let maxHeaderValueBytes: [String: Int] = [
        "content-type": 1024, "cache-control": 1024, "content-disposition": 2048, "content-encoding": 256, "expires": 256,
    ]

    /// Refuses metadata over the limits with OSS's 400 `InvalidArgument` (EC 0011-00000002 for
    /// user metadata).
    static func checkLimits(_ headers: [String: String]) throws {
        let user = headers.filter { $0.key.hasPrefix("x-oss-meta-") }.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        if user > maxUserMetadataBytes {
            throw OSSErrorBody(status: 400, code: "InvalidArgument",
                               message: "Your metadata headers exceed the maximum allowed metadata size: the x-oss-meta-* names and values total \(user) bytes, at most \(maxUserMetadataBytes) are allowed.",
                               ec: "0011-00000002")
        }
        for (name, limit) in maxHeaderValueBytes.sorted(by: { $0.key < $1.key }) {
            if let value = headers[name], value.utf8.count > limit {
                throw OSSErrorBody(status: 400, code: "InvalidArgument",
                                   message: "The \(name) header is \(value.utf8.count) bytes long; at most \(limit) are stored.",
                                   details: [("ArgumentName", name)])
            }
        }
    }
}
