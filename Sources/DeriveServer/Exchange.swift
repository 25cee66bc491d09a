import Access
import Confinement
import Foundation
import Logging
import ProcessLanguage

/// One request's identity for its answers and log lines.
struct Exchange: Sendable {
    let requestId: String
    let host: String
    let method: String
    let target: String
    let logger: Logger

    func log(_ message: String) {
        logger.error("\(message)", metadata: ["request-id": .string(requestId), "method": .string(method), "target": .string(target)])
    }

    /// The OSS answer for `error`. Anything that is not one of the service's own error values is
    /// logged and answered as InternalError with the request id only: no path, no system message.
    func response(for error: any Error) -> ServiceResponse {
        let body: OSSErrorBody
        switch error {
        case let error as OSSErrorBody:
            body = error
            if let note = error.logNote {
                logger.warning("\(note): answered \(error.status) \(error.code)",
                               metadata: ["request-id": .string(requestId), "method": .string(method), "target": .string(target)])
            }
        case let error as AccessError:
            body = OSSErrorBody(status: error.status, code: error.code, message: error.message, ec: error.ec,
                                details: error.details.map { ($0.name, $0.value) })
        case let error as ProcessError where error.code != .internalError:
            body = OSSErrorBody(status: error.httpStatus, code: error.code.rawValue, message: error.message, ec: error.ec)
        default:
            log("internal error: \(error)")
            body = .internalError
        }
        let xml = body.xml(requestId: requestId, hostId: host)
        var headers = [("Content-Type", "application/xml"), ("x-oss-request-id", requestId)]
        if let ec = body.ec { headers.append(("x-oss-ec", ec)) }
        if body.code == "SlowDown" { headers.append(("Retry-After", "1")) }
        if method == "HEAD" {
            // HEAD has no body: the XML travels base64-encoded in x-oss-err, as OSS does.
            headers.append(("x-oss-err", Data(xml.utf8).base64EncodedString()))
            return ServiceResponse(status: body.status, headers: headers, payload: .data(Data()))
        }
        return ServiceResponse(status: body.status, headers: headers, payload: .data(Data(xml.utf8)))
    }
}
