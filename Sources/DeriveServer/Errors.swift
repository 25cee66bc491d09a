import Foundation
import ProcessLanguage

/// An OSS error answer (spec §4.2): XML body, status, `x-oss-request-id` and `x-oss-ec`.
public struct OSSErrorBody: Error, Sendable {
    public var status: Int
    public var code: String
    public var message: String
    public var ec: String?
    /// Elements between HostId and EC, in order (Key, BucketName, StringToSign, ...).
    public var details: [(String, String)]
    /// Why, for serve's log: when set, the answer made of this error is logged as a warning with
    /// it and what the client got (`…: answered 403 AccessDenied`), where the answer is made: an
    /// error a caller swallows (a website's error document that cannot be read) logs no answer
    /// the client never got (attack 43's L-b).
    var logNote: String?

    public init(status: Int, code: String, message: String, ec: String? = nil, details: [(String, String)] = []) {
        self.status = status; self.code = code; self.message = message; self.ec = ec; self.details = details
    }

    /// A file or folder the user serve runs as may not open (`chmod 000`): 403 AccessDenied, as
    /// OSS refuses, not a server fault nor a missing key. `what`: "object's file", "bucket's folder".
    static func unreadable(_ what: String, logNote: String) -> OSSErrorBody {
        var body = accessDenied("This server may not read the \(what) (permission denied); make it readable to the user derive serve runs as.")
        body.logNote = logNote
        return body
    }

    static func noSuchKey(_ key: String) -> OSSErrorBody {
        OSSErrorBody(status: 404, code: "NoSuchKey", message: "The specified key does not exist.", ec: "0026-00000001", details: [("Key", key)])
    }

    static func noSuchBucket(_ bucket: String) -> OSSErrorBody {
        OSSErrorBody(status: 404, code: "NoSuchBucket", message: "The specified bucket does not exist.", ec: "0015-00000101", details: [("BucketName", bucket)])
    }

    static func accessDenied(_ message: String = "You have no right to access this object because of bucket acl.") -> OSSErrorBody {
        OSSErrorBody(status: 403, code: "AccessDenied", message: message, ec: "0003-00000001")
    }

    /// A write onto a key that holds a link, FIFO, socket or device (or reaches it through a
    /// link): refused without naming what is there (the answer must not reveal the bucket's
    /// layout), and without suggesting an ACL the caller could fix (attack 10, E).
    static let keptAtKey = OSSErrorBody(status: 403, code: "AccessDenied",
                                        message: "derive serve does not write this key: the bucket folder holds something at its path that is not an object it may replace (this is not about the object's ACL). Nothing was written.",
                                        ec: "0003-00000001")

    static func badRequest(_ message: String, code: String = "InvalidArgument") -> OSSErrorBody {
        OSSErrorBody(status: 400, code: code, message: message)
    }

    static func invalidObjectName(_ reason: String) -> OSSErrorBody {
        OSSErrorBody(status: 400, code: "InvalidObjectName", message: "The object key is not valid: \(reason).", ec: "0016-00000005")
    }

    /// Every unexpected failure: the details go to the server log under the request id, never to the caller.
    static let internalError = OSSErrorBody(status: 500, code: "InternalError",
                                            message: "We encountered an internal error. Please try again; the request id identifies it in the server log.")

    /// An operation derive serve does not implement: answered from the request head, so nothing
    /// was read or written.
    static func notImplemented(_ operation: OSSOperation) -> OSSErrorBody {
        OSSErrorBody(status: 501, code: "NotImplemented",
                     message: "derive serve does not implement \(operation.name); nothing was read or written.",
                     details: [("Operation", operation.name)])
    }

    /// `x-oss-forbid-overwrite: true` and the object exists.
    static let fileAlreadyExists = OSSErrorBody(status: 409, code: "FileAlreadyExists", message: "The object you specified already exists and can not be overwritten.")

    /// A precondition (If-Match, If-Unmodified-Since) does not hold.
    static let preconditionFailed = OSSErrorBody(status: 412, code: "PreconditionFailed",
                                                 message: "At least one of the pre-conditions you specified did not hold.")

    /// A byte range that starts beyond the object's end.
    static func invalidRange(size: Int) -> OSSErrorBody {
        OSSErrorBody(status: 416, code: "InvalidRange", message: "The requested range cannot be satisfied.",
                     details: [("ActualObjectSize", String(size))])
    }

    static func invalidDigest(_ message: String) -> OSSErrorBody {
        OSSErrorBody(status: 400, code: "InvalidDigest", message: message, ec: "0016-00000011")
    }

    /// The render queue is full (OSS answers 503 SlowDown when a client should back off).
    static let slowDown = OSSErrorBody(status: 503, code: "SlowDown",
                                       message: "Too many image renders are queued. Please reduce your request rate and retry later.",
                                       ec: "0044-00000001")

    /// A bucket's folder was replaced while the request ran (after the manifest was checked):
    /// the next request loads the manifest again for the folder now there.
    static let bucketFolderChanged = OSSErrorBody(
        status: 503, code: "ServiceUnavailable",
        message: "a bucket folder was replaced while this request ran; retry")

    /// A followed manifest that changed and no longer loads (`ServedManifest`). The body says
    /// only that: the loader's errors may name a private bucket's keys and absolute folders
    /// (attack 17's N2), and any client, anonymous ones included, gets this answer. Serve's log
    /// has the errors.
    static let manifestUnavailable = OSSErrorBody(
        status: 503, code: "ServiceUnavailable",
        message: "derive serve refuses requests: its manifest changed and does not load; see serve's log for the errors")

    /// The same, when the manifest did not change but a file beside it did (another project's
    /// manifest or lock appeared: attack 51c's 6 sent the user to the wrong file). The file is
    /// named in the log only: its path may name a private folder.
    static let manifestRefusedByOtherFiles = OSSErrorBody(
        status: 503, code: "ServiceUnavailable",
        message: "derive serve refuses requests: its manifest no longer validates because of another project's files beside it (the manifest itself did not change); see serve's log for the file and the errors")

    func xml(requestId: String, hostId: String) -> String {
        // `XMLText`, the one escaper: the body stays well-formed whatever a key or parameter held.
        let escape = XMLText.escaped
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<Error>",
                     "  <Code>\(escape(code))</Code>", "  <Message>\(escape(message))</Message>",
                     "  <RequestId>\(escape(requestId))</RequestId>", "  <HostId>\(escape(hostId))</HostId>"]
        for (name, value) in details { lines.append("  <\(name)>\(escape(value))</\(name)>") }
        if let ec {
            lines.append("  <EC>\(escape(ec))</EC>")
            lines.append("  <RecommendDoc>https://api.aliyun.com/troubleshoot?q=\(escape(ec))</RecommendDoc>")
        }
        lines.append("</Error>")
        return lines.joined(separator: "\n") + "\n"
    }
}
