import Access
import Confinement
import Crypto
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// AppendObject (`POST /key?append&position=N`).
///
/// The body streams into a staging file in the state folder (checked like a PUT body); then,
/// one append at a time, the object is rewritten as its old bytes plus the new ones into a
/// temporary file beside it and renamed into place, so a reader sees the old or the new object,
/// never half of one. Each append therefore costs the object's size; appendable objects are
/// bounded by `maxAppendableBytes`.
extension ObjectService {
    /// Largest object AppendObject builds (each append rewrites it).
    static let maxAppendableBytes = 1024 * 1024 * 1024

    static func positionNotEqual(_ next: Int) -> OSSErrorBody {
        OSSErrorBody(status: 409, code: "PositionNotEqualToLength",
                     message: "Position is not equal to file length: the object is \(next) bytes long.", ec: "0026-00000016",
                     details: [("NextAppendPosition", String(next))])
    }

    static let notAppendable = OSSErrorBody(status: 409, code: "ObjectNotAppendable",
                                            message: "The object is not appendable: it was not created by AppendObject, or it was replaced since (a PUT, copy or multipart upload), or derive serve no longer keeps it appendable (rows past serve: appendable_max_objects or appendable_max_anonymous are dropped at start, and the log names them).", ec: "0026-00000015")

    /// Where the object stands for an append at `position`: its current size (nil: no object).
    /// A new appendable object needs room in the table (else it could not take a second append),
    /// and, created by an anonymous caller, room in the anonymous share (so anonymous callers
    /// can never take every slot signed callers need).
    func checkAppend(_ target: Target, position: Int, anonymous: Bool) throws -> FileStatus? {
        let status = try folder(target.bucket)?.status(target.key)
        if let status {
            guard appendables.isAppendable(target.bucket, target.key, status) else { throw Self.notAppendable }
            guard Int(status.size) == position else { throw Self.positionNotEqual(Int(status.size)) }
        } else {
            guard position == 0 else { throw Self.positionNotEqual(0) }
            let limits = appendables.limits
            switch appendables.room(for: target.bucket, target.key, anonymous: anonymous, stillValid: stillAppendable) {
            case .available: break
            case .full:
                throw OSSErrorBody.badRequest("derive serve remembers at most \(limits.total) appendable objects (serve: appendable_max_objects) and that many exist; nothing was written. Delete (or overwrite with a PUT) appendable objects you no longer append to.")
            case .anonymousFull where limits.anonymous == 0:
                throw OSSErrorBody.badRequest("derive serve does not create appendable objects for requests without a signature here (serve: appendable_max_anonymous is 0); nothing was written. Sign the request.")
            case .anonymousFull:
                throw OSSErrorBody.badRequest("derive serve keeps at most \(limits.anonymous) appendable objects created without a signature (serve: appendable_max_anonymous) and that many exist; nothing was written. Sign the request, or delete appendable objects you no longer append to.")
            }
        }
        return status
    }

    /// Whether a saved record still describes the file at its key (else its slot is free).
    func stillAppendable(_ name: AppendableObjects.Name, _ record: AppendableObjects.Record) -> Bool {
        guard let bucket = manifest.bucket(named: name.bucketName), let key = name.objectKey,
              let current = try? folder(bucket)?.status(key) else { return false }
        return record.describes(current)
    }

    /// The file at a key now, for settling interrupted appends at start-up.
    func currentStatus(bucket name: String, key: ObjectKey) -> FileStatus? {
        guard let bucket = manifest.bucket(named: name) else { return nil }
        return try? folder(bucket)?.status(key)
    }

    /// `1 thing`, `2 things`.
    static func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }

    /// Start-up of the appendable table, in the log: a record file carried over, records cut past
    /// the bound (those objects are normal now), appends a stop interrupted and how they settled.
    func logAppendableStartup() {
        let startup = appendables.startup
        if startup.migrated > 0 {
            logger.notice("carried \(Self.count(startup.migrated, "appendable object")) over from \(StateFiles.serveAppendable) into \(StateFiles.objectMetadata)")
        }
        if let problem = startup.legacyProblem { logger.warning("\(problem)") }
        if !startup.cut.isEmpty {
            let names = startup.cut.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let limits = appendables.limits
            logger.warning("\(Self.count(startup.cut.count, "appendable object")) past the bounds (serve: appendable_max_objects \(limits.total), appendable_max_anonymous \(limits.anonymous)) were dropped at start (rows of signed callers are kept first, rows of anonymous callers only up to their share, each in byte order): they are normal objects now and an append to one answers ObjectNotAppendable (\(names)\(startup.cut.count > 5 ? ", …" : ""))")
        }
        do {
            for line in try appendables.recover(status: currentStatus) { logger.notice("appendable \(line)") }
        } catch {
            logger.error("settling interrupted appends failed: \(error); they are settled at the next start")
        }
    }

    func appendObject(_ request: ServiceRequest, target: Target, caller: String?, exchange: Exchange) throws -> Step {
        guard let text = Self.value(target.query, "position"), let position = Int(text), position >= 0 else {
            throw OSSErrorBody.badRequest("AppendObject needs position=<the object's current length>.")
        }
        try authorizeObjectWrite(request.headers, target.bucket, target.key, caller: caller)
        let headers = try BodyHeaders(request, maxBytes: maxBodyBytes)
        try ObjectMetadata.checkLimits(ObjectMetadata.headers(from: request.headers))
        _ = try checkAppend(target, position: position, anonymous: caller == nil)
        guard position + (headers.declared ?? 0) <= Self.maxAppendableBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "An appendable object may hold at most \(Self.maxAppendableBytes) bytes in derive serve.")
        }
        guard let uploads = multipart.folder(create: true) else { throw OSSErrorBody.internalError }
        var random = [UInt8](repeating: 0, count: 8)
        for index in random.indices { random[index] = UInt8.random(in: 0...255) }
        let staged = try ObjectKey("append-" + Self.hex(random))
        let file = try uploads.createTemporary(for: staged)
        return .upload(headers.upload(file, exchange: exchange, key: target.key, maxBytes: maxBodyBytes) { [self] _ in
            defer { _ = try? uploads.removeFile(staged) }
            do {
                return try appendLock.withLock {
                    try finishAppend(target, position: position, staged: staged, in: uploads, headers: request.headers, anonymous: caller == nil, exchange: exchange)
                }
            } catch {
                return exchange.response(for: error)
            }
        })
    }

    /// Under the append lock: the old bytes and the staged ones into a new file, renamed into
    /// place under the key's lock only if the object is still the very file copied from (same
    /// inode, size and time). Every writer of the key holds that lock, so a PUT, copy, complete
    /// or DELETE that came in between wins and the append answers as OSS would after it
    /// (ObjectNotAppendable or PositionNotEqualToLength): always one of the serial orders.
    func finishAppend(_ target: Target, position: Int, staged: ObjectKey, in uploads: ConfinedFolder, headers: [String: String],
                      anonymous: Bool, exchange: Exchange) throws -> ServiceResponse {
        _ = try checkAppend(target, position: position, anonymous: anonymous)
        let stagedFD = try uploads.openForReading(staged)
        defer { close(stagedFD) }
        var info = stat()
        guard fstat(stagedFD, &info) == 0 else { throw OSSErrorBody.internalError }
        let added = Int(info.st_size)
        guard position + added <= Self.maxAppendableBytes else {
            throw OSSErrorBody(status: 400, code: "EntityTooLarge", message: "An appendable object may hold at most \(Self.maxAppendableBytes) bytes in derive serve.")
        }
        // The object appended to, opened once: its identity is what the rename must still find,
        // and its record gives the headers (those of the first append stay, as OSS keeps them).
        // Opened and checked under the key's lock: the file, its record and whether it is
        // appendable are then one state (a DELETE between them made the append answer
        // ObjectNotAppendable rather than PositionNotEqualToLength).
        var source: (fd: Int32, record: ObjectMetadata?)?
        defer { if let source { close(source.fd) } }
        let copied: ObjectFileIdentity? = try withKeyLock(target.key) {
            if kind(target.bucket, target.key) == .file, let opened = try? openRecorded(target.bucket, target.key) {
                source = (opened.descriptor, opened.record)
            }
            let copied = source.flatMap { ObjectFileIdentity(descriptor: $0.fd) }
            if let copied {
                let status = FileStatus(size: copied.size, mtime: copied.modified, ctime: 0, inode: copied.inode)
                guard appendables.isAppendable(target.bucket, target.key, status) else { throw Self.notAppendable }
                guard Int(copied.size) == position else { throw Self.positionNotEqual(Int(copied.size)) }
            } else if position > 0 {
                throw Self.positionNotEqual(0)
            }
            return copied
        }
        let file = try createFile(target.bucket, target.key, exchange: exchange)
        var md5 = Insecure.MD5()
        if let source { try Self.copyBytes(from: source.fd, offset: 0, length: position, into: file, md5: &md5) }
        try Self.copyBytes(from: stagedFD, offset: 0, length: added, into: file, md5: &md5)
        let stored = source?.record?.headers ?? ObjectMetadata.headers(from: headers)
        let etag = Self.etag(Array(md5.finalize()))
        var next = position + added
        // The new file is recorded as the row's next version (on disk) before its link, and the
        // replaced one stays appendable a moment after: a reader that opened either never calls
        // the object Normal, and a stop at any point leaves record and bytes in agreement (the
        // crash story is in AppendableObjects).
        let replaced = copied.map { FileStatus(size: $0.size, mtime: $0.modified, ctime: 0, inode: $0.inode) }
        var prepared: FileStatus?
        do {
            try link(file, bucket: target.bucket.name, key: target.key, exchange: exchange, verify: {
                let now = try folder(target.bucket)?.status(target.key)
                let current = now.map { ObjectFileIdentity(device: copied?.device ?? 0, inode: $0.inode, size: $0.size, modified: $0.mtime) }
                guard current?.inode == copied?.inode, current?.size == copied?.size, current?.modified == copied?.modified else {
                    // Replaced or deleted since it was copied: answer as OSS would now.
                    _ = try checkAppend(target, position: position, anonymous: anonymous)
                    throw Self.positionNotEqual(Int(now?.size ?? 0))
                }
                guard let info = file.currentStatus() else { throw OSSErrorBody.internalError }
                let identity = ObjectFileIdentity(info)
                let next = FileStatus(size: identity.size, mtime: identity.modified, ctime: 0, inode: identity.inode)
                do { try appendables.prepare(target.bucket, target.key, next: next, creating: copied == nil, anonymous: anonymous) } catch {
                    throw metadataNotRecorded(error, "the append", key: target.key, exchange: exchange)
                }
                prepared = next
            }, record: { identity in
                ObjectMetadata(headers: stored, etag: etag, lastModified: Int(identity.modified / 1_000_000_000))
            }, link: { try commit(file) }, linked: { identity in
                next = Int(identity.size)
                let status = FileStatus(size: identity.size, mtime: identity.modified, ctime: 0, inode: identity.inode)
                do { try appendables.commit(target.bucket, target.key, linked: status, replaced: replaced, anonymous: anonymous) } catch {
                    exchange.log("recording appendable '\(target.key)' failed: \(error); the next start settles it from the file at the key")
                }
            })
        } catch {
            if let prepared { appendables.withdraw(target.bucket, target.key, prepared) }
            throw error
        }
        return ServiceResponse(status: 200, headers: [("x-oss-request-id", exchange.requestId), ("ETag", etag),
                                                      ("x-oss-next-append-position", String(next)), ("Content-Length", "0")],
                               payload: .data(Data()))
    }
}
