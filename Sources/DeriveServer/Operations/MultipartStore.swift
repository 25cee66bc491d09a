import Confinement
import Foundation
import Manifest
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Multipart uploads in progress, kept in the state folder (`serve-uploads/<upload id>/`),
/// never in a bucket folder: a part is not an object until CompleteMultipartUpload assembles
/// them. Every file is reached through a `ConfinedFolder` on that folder, and upload ids are
/// checked to be 32 upper-case hex digits before they name anything.
///
/// Limits (documented in README): parts per upload, bytes per part (the server's body limit),
/// bytes per upload, uploads open at once and bytes they hold together (`serve:
/// multipart_max_uploads`, `multipart_max_bytes`), and age (`multipart_expiry_hours`: older
/// uploads are removed at start-up, by the sweep every 10 minutes while requests come, and
/// whenever one is looked up).
final class MultipartStore: Sendable {
    struct Limits: Sendable {
        var maxParts = 10_000
        var maxPartBytes: Int
        var maxUploadBytes = 1024 * 1024 * 1024
        var maxOpenUploads = 100
        /// Of those, uploads anonymous callers initiated (a public-read-write bucket): smaller,
        /// so anonymous callers can never use up what signed ones need.
        var maxAnonymousUploads = 20
        /// Bytes all open uploads' parts may hold together.
        var maxPendingBytes = 4 << 30
        /// Of those, bytes held by the parts of anonymous uploads.
        var maxAnonymousBytes = 1 << 30
        var maxAgeSeconds = 24 * 3600
        /// OSS's smallest part but the last.
        var minPartBytes = 100 * 1024
    }

    struct Info: Codable, Sendable {
        var bucket: String
        var key: String
        var initiated: Int
        /// The headers OSS stores, from the Initiate request (Content-Type, x-oss-meta-*, …).
        var headers: [String: String]?
        /// Initiated by an unsigned request (its parts count against the anonymous budgets).
        var anonymous: Bool?
        /// The Initiate request's `x-oss-forbid-overwrite: true`, kept for Complete.
        var forbidOverwrite: Bool?
    }

    struct Part: Sendable {
        var number: Int
        var key: ObjectKey
        var status: FileStatus
    }

    let root: String
    let limits: Limits
    let clock: @Sendable () -> Int
    /// Initiations and part starts check and act under this lock, so racing requests cannot pass a
    /// count limit together; the time of the last sweep.
    private let admission = NIOLockedValueBox<Int>(0)

    /// Seconds between sweeps of expired uploads (run by the next request after that).
    static let sweepInterval = 600

    init(root: String, limits: Limits, clock: @escaping @Sendable () -> Int) {
        self.root = root
        self.limits = limits
        self.clock = clock
    }

    static let infoName = "upload.json"

    static func noSuchUpload() -> OSSErrorBody {
        OSSErrorBody(status: 404, code: "NoSuchUpload",
                     message: "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
                     ec: "0042-00000002")
    }

    func folder(create: Bool) -> ConfinedFolder? {
        // Parts of uploads into private keys: the user's alone (attack 23's F3).
        if create { try? StateFiles.createPrivateFolder(root) }
        return try? ConfinedFolder(path: root, ownerOnly: true)
    }

    static func isUploadId(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (65...70).contains($0) }
    }

    static func key(_ id: String, _ name: String) -> ObjectKey { try! ObjectKey(id + "/" + name) }

    static func partName(_ number: Int) -> String { String(format: "part-%05d", number) }

    /// Uploads open now (expired ones removed first), with their ids; `stop` ends the reading
    /// early (a listing whose client left).
    func openUploads(stop: () -> Bool = { false }) -> [(id: String, info: Info)] {
        guard let folder = folder(create: false), let entries = folder.entries(in: []) else { return [] }
        var uploads: [(String, Info)] = []
        for entry in entries where !entry.isFolder {
            // An append's staged body left by a killed server.
            let name = String(decoding: entry.name, as: UTF8.self)
            if name.hasPrefix("append-"), let status = entry.status, Int64(clock()) - status.mtime / 1_000_000_000 > Int64(limits.maxAgeSeconds),
               let key = try? ObjectKey(name) {
                _ = try? folder.removeFile(key)
            }
        }
        for entry in entries where entry.isFolder {
            if stop() { break }
            let id = String(decoding: entry.name, as: UTF8.self)
            guard Self.isUploadId(id), let info = try? info(id, folder: folder) else { continue }
            if clock() - info.initiated > limits.maxAgeSeconds { remove(id); continue }
            uploads.append((id, info))
        }
        return uploads
    }

    /// Removes expired uploads now (at start-up) and records the time.
    func sweep() {
        admission.withLockedValue { last in
            last = clock()
            _ = openUploads()
        }
    }

    /// Removes expired uploads if the last sweep is `sweepInterval` old (cheap otherwise).
    func sweepIfDue() {
        admission.withLockedValue { last in
            guard clock() - last >= Self.sweepInterval else { return }
            last = clock()
            _ = openUploads()
        }
    }

    func initiate(bucket: Bucket, key: ObjectKey, headers: [String: String], anonymous: Bool, forbidOverwrite: Bool = false) throws -> String {
        try admission.withLockedValue { _ in try create(bucket: bucket, key: key, headers: headers, anonymous: anonymous, forbidOverwrite: forbidOverwrite) }
    }

    private func create(bucket: Bucket, key: ObjectKey, headers: [String: String], anonymous: Bool, forbidOverwrite: Bool) throws -> String {
        let open = openUploads()
        // Below the total whatever the settings say (the manifest's validation refuses more):
        // signed callers always keep a slot.
        let anonymousCap = min(limits.maxAnonymousUploads, max(limits.maxOpenUploads - 1, 0))
        if anonymous, open.filter({ $0.info.anonymous == true }).count >= anonymousCap {
            throw OSSErrorBody(status: 400, code: "TooManyUploads",
                               message: "\(anonymousCap) multipart upload\(anonymousCap == 1 ? "" : "s") initiated without a signature \(anonymousCap == 1 ? "is" : "are") open, the most this server keeps for anonymous callers (serve: multipart_max_anonymous_uploads); complete or abort one, wait for unfinished ones to expire, or sign the request.")
        }
        guard open.count < limits.maxOpenUploads else {
            throw OSSErrorBody(status: 400, code: "TooManyUploads",
                               message: "\(limits.maxOpenUploads) multipart uploads are open, the most this server keeps (serve: multipart_max_uploads); complete or abort one (ListMultipartUploads names them), or wait for unfinished ones to expire.")
        }
        guard let folder = folder(create: true) else { throw OSSErrorBody.internalError }
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0 ... 255) }
        let id = ObjectService.hex(bytes, uppercase: true)
        let info = Info(bucket: bucket.name, key: key.string, initiated: clock(), headers: headers, anonymous: anonymous,
                        forbidOverwrite: forbidOverwrite ? true : nil)
        try folder.writeAtomically(try JSONEncoder().encode(info), to: Self.key(id, Self.infoName))
        return id
    }

    private func info(_ id: String, folder: ConfinedFolder) throws -> Info {
        guard Self.isUploadId(id), let data = try? folder.read(Self.key(id, Self.infoName), maxBytes: 64 * 1024),
              let info = try? JSONDecoder().decode(Info.self, from: data) else { throw Self.noSuchUpload() }
        return info
    }

    /// The upload `id`, which must be for `bucket` and `key` and not expired.
    func info(_ id: String, bucket: Bucket, key: ObjectKey) throws -> Info {
        guard let folder = folder(create: false) else { throw Self.noSuchUpload() }
        let info = try info(id, folder: folder)
        // Bytes, not `String ==` (canonical equivalence would let `cafe\u{301}` finish `caf\u{E9}`).
        guard info.bucket == bucket.name, Array(info.key.utf8) == key.bytes else { throw Self.noSuchUpload() }
        if clock() - info.initiated > limits.maxAgeSeconds { remove(id); throw Self.noSuchUpload() }
        return info
    }

    /// The parts uploaded so far, by number.
    func parts(_ id: String) -> [Part] {
        guard let folder = folder(create: false), let entries = folder.entries(in: Array(id.utf8)) else { return [] }
        var parts: [Part] = []
        for entry in entries where !entry.isFolder {
            let name = String(decoding: entry.name, as: UTF8.self)
            guard name.hasPrefix("part-"), name.count == 10, let number = Int(name.dropFirst(5)), let status = entry.status else { continue }
            parts.append(Part(number: number, key: Self.key(id, name), status: status))
        }
        return parts.sorted { $0.number < $1.number }
    }

    /// A temporary file for part `number`, after the limits that can be checked before the body.
    func beginPart(_ id: String, number: Int, declared: Int?) throws -> TemporaryFile {
        try admission.withLockedValue { _ in try startPart(id, number: number, declared: declared) }
    }

    /// Bytes held by the parts of every open upload (a part being replaced counts until it is);
    /// `anonymousOnly`: of the uploads anonymous callers initiated.
    func pendingBytes(excluding id: String, number: Int, anonymousOnly: Bool = false) -> Int {
        openUploads().filter { !anonymousOnly || $0.info.anonymous == true }.reduce(0) { total, upload in
            total + parts(upload.id).reduce(0) { $0 + (upload.id == id && $1.number == number ? 0 : Int($1.status.size)) }
        }
    }

    private func startPart(_ id: String, number: Int, declared: Int?) throws -> TemporaryFile {
        guard (1...limits.maxParts).contains(number) else {
            throw OSSErrorBody.badRequest("partNumber must be from 1 to \(limits.maxParts); it was \(number).")
        }
        let existing = parts(id).filter { $0.number != number }.reduce(0) { $0 + Int($1.status.size) }
        guard existing + (declared ?? 0) <= limits.maxUploadBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge",
                               message: "The upload would exceed \(limits.maxUploadBytes) bytes, the most one multipart upload may hold in derive serve.")
        }
        guard pendingBytes(excluding: id, number: number) + (declared ?? 0) <= limits.maxPendingBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge",
                               message: "Open multipart uploads would hold more than \(limits.maxPendingBytes) bytes, the most this server keeps (serve: multipart_max_bytes); complete or abort uploads (ListMultipartUploads names them), or wait for unfinished ones to expire.")
        }
        guard let folder = folder(create: false) else { throw Self.noSuchUpload() }
        if (try? info(id, folder: folder))?.anonymous == true,
           pendingBytes(excluding: id, number: number, anonymousOnly: true) + (declared ?? 0) > limits.maxAnonymousBytes {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge",
                               message: "Open multipart uploads initiated without a signature would hold more than \(limits.maxAnonymousBytes) bytes, the most this server keeps for anonymous callers (serve: multipart_max_anonymous_bytes); complete or abort uploads, or sign the requests.")
        }
        return try folder.createTemporary(for: Self.key(id, Self.partName(number)))
    }

    func openPart(_ part: Part) throws -> Int32 {
        guard let folder = folder(create: false) else { throw Self.noSuchUpload() }
        return try folder.openForReading(part.key)
    }

    /// Removes the upload's files and folder: only the names it writes there, never recursively.
    func remove(_ id: String) {
        guard Self.isUploadId(id), let folder = folder(create: false) else { return }
        for entry in folder.entries(in: Array(id.utf8)) ?? [] where !entry.isFolder {
            let name = String(decoding: entry.name, as: UTF8.self)
            guard name == Self.infoName || name.hasPrefix("part-") || ConfinedFolder.isTemporaryName(entry.name) else { continue }
            _ = try? folder.removeFile(Self.key(id, name))
        }
        folder.removeEmptyFolder(try! ObjectKey(id))
    }
}
