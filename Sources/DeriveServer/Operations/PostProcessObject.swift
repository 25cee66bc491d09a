import Access
import Confinement
import Crypto
import Foundation
import Manifest
import ProcessLanguage

/// PostProcessObject: `POST /key?x-oss-process` with `…|sys/saveas,o_<key>[,b_<bucket>]` in the
/// body (spec §1.6). The source is authorised from the head; the small body is collected next.
struct PostProcessObject: OperationHandler {
    func begin(_ request: OperationRequest) throws -> Step {
        let service = request.service, source = try request.target(), caller = request.caller, exchange = request.exchange
        let headers = request.request.headers
        try service.authorizer.authorizeRead(source.bucket, source.key, caller: caller)
        return .needsBody(limit: ObjectService.maxSaveAsBody, BodyContinuation { body in
            do { return try service.saveAs(body, source: source, headers: headers, caller: caller, exchange: exchange) } catch {
                return .respond(exchange.response(for: error))
            }
        })
    }
}

extension ObjectService {
    /// `POST /key?x-oss-process` with `x-oss-process=<chain>|sys/saveas,o_<b64 key>[,b_<b64 bucket>]`.
    func saveAs(_ raw: Data, source: Target, headers: [String: String], caller: String?, exchange: Exchange) throws -> Step {
        var body = String(decoding: raw, as: UTF8.self)
        if body.contains("%7C") || body.contains("%7c") { body = body.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? body }
        if body.hasPrefix("x-oss-process=") { body.removeFirst("x-oss-process=".count) }
        guard let bar = body.range(of: "|sys/saveas") else {
            throw OSSErrorBody.badRequest("The body must be x-oss-process=<chain>|sys/saveas,o_<base64 key>[,b_<base64 bucket>].")
        }
        let chain = String(body[..<bar.lowerBound])
        var objectBytes: [UInt8]?, bucketName: String?
        for item in body[bar.upperBound...].split(separator: ",") {
            if item.hasPrefix("o_") { objectBytes = Base64URL.decode(String(item.dropFirst(2))).map(Array.init) }
            if item.hasPrefix("b_") { bucketName = Base64URL.decodeString(String(item.dropFirst(2))) }
        }
        guard let objectBytes else { throw OSSErrorBody.badRequest("sys/saveas needs o_<base64url target key>.") }
        let objectKey: ObjectKey
        do { objectKey = try ObjectKey(bytes: objectBytes) } catch { throw OSSErrorBody.invalidObjectName(error.description) }
        guard let destination = bucketName.map({ manifest.bucket(named: $0) }) ?? source.bucket else {
            throw OSSErrorBody.noSuchBucket(bucketName ?? "")
        }
        try authorizeObjectWrite(headers, destination, objectKey, caller: caller)
        let pipeline = try Pipeline.parse(chain, styles: manifest.catalogue.mapValues(\.process))
        let file = try createFile(destination, objectKey, exchange: exchange)
        let replyBucket = bucketName ?? ""
        return try renderStep(source, pipeline: pipeline, caller: caller, exchange: exchange) { payload, contentType in
            let bytes: Data
            switch payload {
            case .data(let data): bytes = data
            case .file(let cached): bytes = try cached.readAll()
            }
            try file.write(bytes)
            // OSS keeps the rendered format's Content-Type for a saved object; recorded before
            // the link, as for every write.
            let etag = ObjectService.etag(Array(Insecure.MD5.hash(data: bytes)))
            try self.link(file, bucket: destination.name, key: objectKey, exchange: exchange, record: { identity in
                ObjectMetadata(headers: ["content-type": contentType], etag: etag, lastModified: Int(identity.modified / 1_000_000_000))
            }, link: {
                do { try file.commit() } catch {
                    if case ConfinementError.notRegularFile = error { throw OSSErrorBody.invalidObjectName("a folder of objects already has this name") }
                    if let kept = ObjectService.keptAtKey(error) { throw kept }
                    throw error
                }
            })
            let reply = "{\"bucket\": \(JSONText.string(replyBucket)), \"fileSize\": \(bytes.count), \"object\": \(JSONText.string(objectKey.string)), \"status\": \"OK\"}"
            return ServiceResponse(status: 200, headers: [("Content-Type", "application/json"), ("x-oss-request-id", exchange.requestId)],
                                   payload: .data(Data(reply.utf8)))
        }
    }
}
