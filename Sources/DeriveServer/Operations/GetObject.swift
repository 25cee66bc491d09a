import Access
import Confinement
import Foundation
import Manifest
import ProcessLanguage

/// GetObject and HeadObject: a plain object, or a processed one (`x-oss-process`, a style by
/// query or by delimiter), authorised against the caller.
struct GetObject: OperationHandler {
    func begin(_ request: OperationRequest) throws -> Step {
        let service = request.service
        var target = try request.target()
        let exchange = request.exchange
        var processText = request.parameter("x-oss-process")
        if processText == nil, service.kind(target.bucket, target.key) != .file,
           let (key, style) = service.styleByDelimiter(target.key, bucket: target.bucket) {
            target.key = key
            processText = "style/" + style
        }
        try service.authorizer.authorizeRead(target.bucket, target.key, caller: request.caller)
        let head = request.request.method == "HEAD"
        if let processText, !processText.isEmpty {
            if processText.contains("|sys/saveas") || processText.hasPrefix("sys/saveas") {
                throw OSSErrorBody.badRequest("sys/saveas needs POST /<key>?x-oss-process with the chain in the body.", code: "InvalidArgument")
            }
            let pipeline = try Pipeline.parse(processText, styles: service.manifest.catalogue.mapValues(\.process))
            let ifNoneMatch = request.header("if-none-match")
            return try service.renderStep(target, pipeline: pipeline, caller: request.caller, exchange: exchange) { bytes, contentType in
                ObjectService.imageResponse(bytes, contentType: contentType, head: head, ifNoneMatch: ifNoneMatch, exchange: exchange)
            }
        }
        return .respond(try service.plain(target, head: head, ifNoneMatch: request.header("if-none-match"), exchange: exchange))
    }
}

extension ObjectService {
    /// `key!style` (or another enabled delimiter): precedence `-`, `_`, `/`, `!`, last occurrence
    /// of the delimiter byte.
    func styleByDelimiter(_ key: ObjectKey, bucket: Bucket) -> (ObjectKey, String)? {
        for delimiter in ["-", "_", "/", "!"] where bucket.styleDelimiters.contains(Character(delimiter)) {
            let byte = UInt8(ascii: Unicode.Scalar(delimiter)!)
            guard let split = key.bytes.lastIndex(of: byte), let object = try? ObjectKey(bytes: Array(key.bytes[..<split])) else { continue }
            let style = String(decoding: key.bytes[(split + 1)...], as: UTF8.self)
            if manifest.catalogue[style] != nil, kind(bucket, object) == .file { return (object, style) }
        }
        return nil
    }

    func plain(_ target: Target, head: Bool, ifNoneMatch: String?, exchange: Exchange) throws -> ServiceResponse {
        let fd = try open(target.bucket, target.key)
        var info = stat()
        fstat(fd, &info)
        let file = OpenFile(descriptor: fd, length: Int(info.st_size))
        let digests = try digests.digests(of: fd, identity: target.bucket.path + "\0" + target.key.string)
        let etag = Self.etag(digests.md5)
        if Self.matches(ifNoneMatch, etag) { return Self.notModified(etag, exchange: exchange) }
        let headers = [("Content-Type", Self.contentType(try file.read(at: 0, count: 12))), ("Content-Length", String(file.length)),
                       ("ETag", etag), ("x-oss-request-id", exchange.requestId),
                       ("x-oss-object-acl", authorizer.objectACLHeader(target.bucket, target.key))]
        return ServiceResponse(status: 200, headers: headers, payload: head ? .data(Data()) : .file(file))
    }
}
