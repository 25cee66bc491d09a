import Confinement
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// An object's open file and the metadata record of that very file (nil: none, defaults apply).
struct RecordedFile {
    let descriptor: Int32
    let status: stat
    let record: ObjectMetadata?
}

extension ObjectService {
    /// Opens before giving up (each lost to a writer replacing the key at that very moment).
    static let maxReopens = 64

    /// The reading half of the one protocol every writer follows (`Upload.finish`, `link`,
    /// `deleteFile`): under the key's lock a writer records its file before linking it and
    /// removes the records of the files it replaced only after. So a file opened here without a
    /// record is either still linked (written behind the server's back: defaults are right) or
    /// was replaced or deleted between the open and the lookup, its record possibly gone with
    /// it: that read opens the key again, as a read coming after the writer would. Never the
    /// bytes of one write with default headers. GET, HEAD, GetObjectMeta, a listing's ETags and
    /// CopyObject's source all read through here (without waiting for writers' locks).
    func openRecorded(_ bucket: Bucket, _ key: ObjectKey) throws -> RecordedFile {
        for _ in 0..<Self.maxReopens {
            let fd = try open(bucket, key)
            var info = stat()
            guard fstat(fd, &info) == 0 else { close(fd); throw OSSErrorBody.internalError }
            hooks.run(hooks.openedForReading, key)
            let record = metadata.read(bucket: bucket.name, key: key, identity: ObjectFileIdentity(info))
            var now = stat()
            if record != nil || (fstat(fd, &now) == 0 && now.st_nlink > 0) {
                return RecordedFile(descriptor: fd, status: info, record: record)
            }
            close(fd)
        }
        logger.error("'\(key)' in bucket '\(bucket.name)' was replaced \(Self.maxReopens) times while a read looked its metadata up")
        throw OSSErrorBody.slowDown
    }
}
