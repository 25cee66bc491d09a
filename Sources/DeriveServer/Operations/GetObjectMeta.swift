import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// GetObjectMeta (`HEAD` or `GET /key?objectMeta`): the object's ETag, size and time without
/// its body or other headers. oss2's `object_exists` and `get_object_meta` call it.
struct GetObjectMeta: OperationHandler {
    func begin(_ request: OperationRequest) throws -> Step {
        let service = request.service, target = try request.target()
        try service.authorizer.authorizeRead(target.bucket, target.key, caller: request.caller)
        let opened = try service.openRecorded(target.bucket, target.key)
        let fd = opened.descriptor, info = opened.status, record = opened.record
        defer { close(fd) }
        let etag = try record?.etag
            ?? ObjectService.etag(service.digests.digests(of: fd, identity: DigestCache.identity(target.bucket.path, target.key)).md5)
        let lastModified = record?.lastModified ?? Int(info.st_mtim.tv_sec)
        return .respond(ServiceResponse(status: 200, headers: [("ETag", etag), ("Content-Length", String(info.st_size)),
                                                               ("Last-Modified", HTTPDate.string(lastModified)),
                                                               ("x-oss-request-id", request.exchange.requestId)],
                                        payload: .data(Data())))
    }
}
