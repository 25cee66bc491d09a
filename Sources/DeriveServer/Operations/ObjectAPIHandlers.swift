import Foundation

/// The handlers of the bucket and object API (#12): each names the function that does the
/// work, in the file of its topic (ListObjects.swift, DeleteObjects.swift, ObjectOperations.swift,
/// AppendObject.swift, MultipartUpload.swift, BucketOperations.swift).
extension OperationRequest {
    /// An answer; a HEAD gets its status and headers without the body.
    func answer(_ response: ServiceResponse) -> Step {
        var response = response
        if request.method == "HEAD" { response.payload = .data(Data()) }
        return .respond(response)
    }

    /// A job that answers `body`'s response (without the body for a HEAD), or its error.
    func work(_ body: @escaping @Sendable (WorkCancellation) throws -> ServiceResponse) -> Step {
        let exchange = self.exchange, head = request.method == "HEAD"
        return .work(WorkJob { cancellation in
            do {
                var response = try body(cancellation)
                if head { response.payload = .data(Data()) }
                return response
            } catch {
                return exchange.response(for: error)
            }
        })
    }
}

/// ListObjects and ListObjectsV2 walk folders: a job on the I/O pool, cancelled when the client
/// leaves (a HEAD of the bucket lists too, and gets the status and headers only).
struct ListObjects: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step { try r.service.listObjects(r) }
}

struct ListObjectsV2: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step { try r.service.listObjectsV2(r) }
}

struct GetBucketInfo: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step { r.answer(try r.service.bucketInfo(r.bucket, caller: r.caller, exchange: r.exchange)) }
}

struct GetBucketAcl: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step { r.answer(try r.service.bucketACL(r.bucket, caller: r.caller, exchange: r.exchange)) }
}

/// PutBucketAcl and PutObjectAcl: refused, the manifest declares ACLs.
struct PutAcl: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        throw ObjectService.aclInManifest(r.key.map { "'\($0)'" } ?? "bucket '\(r.bucket.name)'")
    }
}

struct GetObjectAcl: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step { r.answer(try r.service.objectACL(try r.target(), caller: r.caller, exchange: r.exchange)) }
}

struct DeleteObject: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step { .respond(try r.service.deleteObject(try r.target(), caller: r.caller, exchange: r.exchange)) }
}

struct DeleteMultipleObjects: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        try r.service.deleteMultipleObjects(r.request, bucket: r.bucket, query: r.query, caller: r.caller, exchange: r.exchange)
    }
}

struct CopyObject: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        .respond(try r.service.copyObject(r.request, target: try r.target(), caller: r.caller, exchange: r.exchange))
    }
}

struct AppendObject: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        try r.service.appendObject(r.request, target: try r.target(), caller: r.caller, exchange: r.exchange)
    }
}

struct InitiateMultipartUpload: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        .respond(try r.service.initiateMultipartUpload(r.request, target: try r.target(), caller: r.caller, exchange: r.exchange))
    }
}

/// UploadPart and UploadPartCopy (`x-oss-copy-source`).
struct UploadPart: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        try r.service.uploadPart(r.request, target: try r.target(), caller: r.caller, exchange: r.exchange)
    }
}

struct CompleteMultipartUpload: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        try r.service.completeMultipartUpload(r.request, target: try r.target(), caller: r.caller, exchange: r.exchange)
    }
}

struct AbortMultipartUpload: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        .respond(try r.service.abortMultipartUpload(try r.target(), caller: r.caller, exchange: r.exchange))
    }
}

/// ListParts and ListMultipartUploads: jobs that stop when the client leaves (ListParts may
/// hash up to 1 000 parts; ListMultipartUploads reads every open upload's record).
struct ListParts: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        let target = try r.target()
        try r.service.checkListParts(target, caller: r.caller)
        return r.work { try r.service.listParts(target, exchange: r.exchange, cancellation: $0) }
    }
}

struct ListMultipartUploads: OperationHandler {
    func begin(_ r: OperationRequest) throws -> Step {
        try r.service.checkListUploads(r.bucket, caller: r.caller)
        return r.work { try r.service.listMultipartUploads(r.bucket, query: r.query, caller: r.caller, exchange: r.exchange, cancellation: $0) }
    }
}
