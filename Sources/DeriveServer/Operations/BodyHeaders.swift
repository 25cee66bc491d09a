import Confinement
import Foundation

/// What a request's headers say about the body it will stream: its declared length (absent for
/// a chunked body), and the digests it must match. Checked before a body byte is read.
struct BodyHeaders {
    var declared: Int?
    var md5: [UInt8]?
    var sha256: String?

    init(_ request: ServiceRequest, maxBytes: Int) throws {
        if let header = request.headers["content-length"] {
            guard let value = Int(header.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw OSSErrorBody.badRequest("Content-Length is not a number.", code: "InvalidArgument")
            }
            declared = value
        }
        guard (declared ?? request.body.count) <= maxBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "Your proposed upload exceeds the maximum allowed size of \(maxBytes) bytes.")
        }
        if let header = request.headers["content-md5"] {
            guard let data = Data(base64Encoded: header.trimmingCharacters(in: .whitespaces)), data.count == 16 else {
                throw OSSErrorBody.invalidDigest("The Content-MD5 you specified is not the base64 of 16 bytes.")
            }
            md5 = Array(data)
        }
        if let header = request.headers["x-oss-content-sha256"], header != "UNSIGNED-PAYLOAD" {
            sha256 = header.lowercased()
        }
    }

    func upload(_ file: TemporaryFile, exchange: Exchange, key: ObjectKey, maxBytes: Int,
                folderGone: OSSErrorBody? = nil, completion: (@Sendable (String) -> ServiceResponse)? = nil) -> Upload {
        Upload(file: file, exchange: exchange, key: key, declared: declared, limit: min(declared ?? maxBytes, maxBytes),
               expectedMD5: md5, expectedSHA256: sha256, completion: completion, folderGone: folderGone)
    }
}
