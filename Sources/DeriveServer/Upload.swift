import Confinement
import Crypto
import Foundation
import NIOConcurrencyHelpers

/// A PUT whose caller, target and declared length were already accepted: the body streams into a
/// temporary file beside the target with a running MD5 and SHA-256, and is moved into place only
/// when its size, `Content-MD5` and V4 `x-oss-content-sha256` all hold.
public final class Upload: Sendable {
    /// Guarded by the box's lock.
    private struct State: @unchecked Sendable {
        var file: TemporaryFile?
        var md5 = Insecure.MD5()
        var sha256 = SHA256()
        var received = 0
        var failure: OSSErrorBody?
    }
    private let state: NIOLockedValueBox<State>
    let exchange: Exchange
    let key: ObjectKey
    let declared: Int?
    let limit: Int
    let expectedMD5: [UInt8]?
    let expectedSHA256: String?
    /// Called once the file is in place, with its identity and ETag (the metadata record).
    let committed: @Sendable (ObjectFileIdentity, String) -> Void
    /// `x-oss-forbid-overwrite: true`: an object that appeared while the body streamed is kept.
    let replacing: Bool
    /// The answer once the file is in place (given its ETag); nil: PutObject's empty 200.
    let completion: (@Sendable (String) -> ServiceResponse)?
    /// The answer when the target's folder vanished while the body streamed (an aborted
    /// multipart upload); nil: an internal error.
    let folderGone: OSSErrorBody?
    /// Called with the file's identity and ETag just before it is linked at the key, under a
    /// lock of that key held until `committed` returns: the metadata record exists before any
    /// GET can open the file, and racing PUTs of one key never interleave record and link.
    /// When it throws (the record could not be saved) nothing is linked and its error is the
    /// answer: the object keeps its bytes and headers (attack 14, F1).
    let prepared: (@Sendable (ObjectFileIdentity, String) throws -> Void)?

    init(file: TemporaryFile, exchange: Exchange, key: ObjectKey, declared: Int?, limit: Int, expectedMD5: [UInt8]?, expectedSHA256: String?,
         replacing: Bool = true, prepared: (@Sendable (ObjectFileIdentity, String) throws -> Void)? = nil,
         committed: @escaping @Sendable (ObjectFileIdentity, String) -> Void = { _, _ in },
         completion: (@Sendable (String) -> ServiceResponse)? = nil, folderGone: OSSErrorBody? = nil) {
        self.replacing = replacing
        self.prepared = prepared
        state = NIOLockedValueBox(State(file: file))
        self.exchange = exchange; self.key = key; self.declared = declared; self.limit = limit
        self.expectedMD5 = expectedMD5; self.expectedSHA256 = expectedSHA256
        self.committed = committed
        self.completion = completion
        self.folderGone = folderGone
    }

    deinit { state.withLockedValue { $0.file?.discard() } }

    /// Appends a piece of the body. Returns false once the upload has failed (too large, a
    /// write error): the caller may stop sending and call `finish` for the answer.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        state.withLockedValue { state in
            guard state.failure == nil, let file = state.file else { return false }
            state.received += bytes.count
            guard state.received <= limit else {
                state.failure = OSSErrorBody(status: 400, code: "EntityTooLarge",
                                             message: "Your proposed upload exceeds the maximum allowed size of \(limit) bytes.")
                file.discard(); state.file = nil
                return false
            }
            state.md5.update(bufferPointer: bytes)
            state.sha256.update(bufferPointer: bytes)
            do { try file.write(bytes) } catch {
                exchange.log("writing the upload of '\(key)' failed: \(error)")
                state.failure = .internalError
                file.discard(); state.file = nil
                return false
            }
            return true
        }
    }

    public func write(_ data: Data) { _ = data.withUnsafeBytes { write($0) } }

    /// Checks the digests and moves the file into place; the answer to send.
    public func finish() -> ServiceResponse {
        var linkLock: NIOLock?
        defer { linkLock?.unlock() }
        let outcome: Result<(String, ObjectFileIdentity?), OSSErrorBody> = state.withLockedValue { state in
            defer { state.file = nil }
            if let failure = state.failure { return .failure(failure) }
            guard let file = state.file else { return .failure(.internalError) }
            if let declared, state.received != declared {
                file.discard()
                return .failure(OSSErrorBody(status: 400, code: "IncompleteBody",
                                             message: "The body has \(state.received) bytes; Content-Length said \(declared)."))
            }
            let md5 = Array(state.md5.finalize())
            if let expectedMD5, expectedMD5 != md5 {
                file.discard()
                return .failure(.invalidDigest("The Content-MD5 you specified did not match what was received."))
            }
            if let expectedSHA256, expectedSHA256 != ObjectService.hex(state.sha256.finalize()) {
                file.discard()
                return .failure(OSSErrorBody(status: 403, code: "SignatureDoesNotMatch",
                                             message: "The x-oss-content-sha256 you signed does not match the SHA-256 of the body received.",
                                             ec: "0002-00000040"))
            }
            if let prepared, let status = file.currentStatus() {
                linkLock = KeyLocks.shared.lock(for: key.bytes)
                linkLock?.lock()
                do { try prepared(ObjectFileIdentity(status), ObjectService.etag(md5)) } catch {
                    file.discard()
                    return .failure(error as? OSSErrorBody ?? .internalError)
                }
            }
            do { try file.commit(replacing: replacing) } catch {
                file.discard()
                if case ConfinementError.alreadyExists = error { return .failure(.fileAlreadyExists) }
                if case ConfinementError.notRegularFile = error { return .failure(.invalidObjectName("a folder of objects already has this name")) }
                if case ConfinementError.notFound = error, let folderGone { return .failure(folderGone) }
                // A link (or FIFO) made at the key while the body was written: never replaced (see createFile).
                if let kept = ObjectService.keptAtKey(error) { return .failure(kept) }
                exchange.log("committing the upload of '\(key)' failed: \(error)")
                return .failure(.internalError)
            }
            return .success((ObjectService.etag(md5), file.committedStatus.map(ObjectFileIdentity.init)))
        }
        switch outcome {
        case .success(let (etag, identity)):
            if let identity { committed(identity, etag) }
            if let completion { return completion(etag) }
            return ServiceResponse(status: 200, headers: [("x-oss-request-id", exchange.requestId), ("ETag", etag), ("Content-Length", "0")],
                                   payload: .data(Data()))
        case .failure(let error):
            return exchange.response(for: error)
        }
    }

    /// The client went away: nothing is written.
    public func abort() { state.withLockedValue { $0.file?.discard(); $0.file = nil } }
}
