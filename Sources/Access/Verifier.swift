import Foundation

/// Why a request was refused, shaped as an OSS error (spec §4.5).
public struct AccessError: Error, Sendable, Hashable {
    public var status: Int
    public var code: String
    public var message: String
    public var ec: String?
    /// Extra XML elements, in order (e.g. `StringToSign` for a bad signature).
    public var details: [Detail]

    public struct Detail: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    public init(status: Int, code: String, message: String, ec: String? = nil, details: [Detail] = []) {
        self.status = status; self.code = code; self.message = message; self.ec = ec; self.details = details
    }

    static func accessDenied(_ message: String, ec: String) -> AccessError {
        AccessError(status: 403, code: "AccessDenied", message: message, ec: ec)
    }
}

/// A request as the verifier needs it: the raw key, decoded query parameters in order, and
/// headers with lowercased names.
public struct SignedRequest: Sendable {
    public var method: String
    public var bucket: String
    public var key: String
    public var query: [OSSSignature.Parameter]
    public var headers: [String: String]

    public init(method: String, bucket: String, key: String, query: [OSSSignature.Parameter], headers: [String: String]) {
        self.method = method
        self.bucket = bucket
        self.key = key
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    func value(_ name: String) -> String? { query.first { $0.name == name }?.value ?? (query.contains { $0.name == name } ? "" : nil) }
}

/// Checks OSS signatures: V1 and V4, in the URL or the `Authorization` header, in the order of
/// spec §5.4 (presence, expiry, signature). Comparisons run in constant time.
public struct Verifier: Sendable {
    /// Access key id → secret.
    public var keys: [String: String]
    public var region: String
    /// Largest clock difference for header-signed requests (15 minutes, as OSS).
    public var skew: Int = 900

    public init(keys: [String: String], region: String) {
        self.keys = keys
        self.region = region
    }

    /// The access key id that signed the request, or nil for an anonymous request.
    public func authenticate(_ request: SignedRequest, now: Int) throws -> String? {
        let authorization = request.headers["authorization"]
        let urlV1 = ["OSSAccessKeyId", "Expires", "Signature"].contains { request.value($0) != nil }
        let urlV4 = request.value("x-oss-signature-version") != nil || request.value("x-oss-signature") != nil
        if authorization != nil, urlV1 || urlV4 {
            throw AccessError(status: 400, code: "InvalidArgument", message: "Only one auth mechanism allowed; a signature was given in both the URL and the Authorization header.")
        }
        if let authorization {
            if authorization.hasPrefix("OSS4-HMAC-SHA256 ") { return try verifyV4Header(request, authorization: authorization, now: now) }
            if authorization.hasPrefix("OSS ") { return try verifyV1Header(request, authorization: authorization, now: now) }
            throw AccessError(status: 400, code: "InvalidArgument", message: "Authorization header is invalid: expected 'OSS id:signature' or 'OSS4-HMAC-SHA256 Credential=...'.")
        }
        if urlV4 { return try verifyV4URL(request, now: now) }
        if urlV1 { return try verifyV1URL(request, now: now) }
        return nil
    }

    func secret(for id: String) throws -> String {
        guard let secret = keys[id] else {
            throw AccessError(status: 403, code: "InvalidAccessKeyId", message: "The OSS Access Key Id you provided does not exist in our records.",
                              ec: "0002-00000901", details: [.init("OSSAccessKeyId", id)])
        }
        return secret
    }

    func mismatch(id: String, provided: String, stringToSign: String) -> AccessError {
        let bytes = stringToSign.utf8.map { String(format: "%02x", $0) }.joined(separator: " ")
        return AccessError(status: 403, code: "SignatureDoesNotMatch",
                           message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                           ec: "0002-00000040",
                           details: [.init("OSSAccessKeyId", id), .init("SignatureProvided", provided),
                                     .init("StringToSign", stringToSign), .init("StringToSignBytes", bytes)])
    }

    func verifyV1URL(_ request: SignedRequest, now: Int) throws -> String {
        guard let id = request.value("OSSAccessKeyId"), let expires = request.value("Expires"), let signature = request.value("Signature") else {
            let missing = ["OSSAccessKeyId", "Expires", "Signature"].first { request.value($0) == nil }!
            throw AccessError.accessDenied("Missing required query parameter \(missing) in a signed URL.", ec: missing == "Expires" ? "0002-00000067" : "0002-00000070")
        }
        guard !expires.isEmpty else { throw AccessError.accessDenied("Expires is empty.", ec: "0002-00000068") }
        guard let expiry = Int(expires) else { throw AccessError.accessDenied("Expires '\(expires)' is not a Unix timestamp.", ec: "0002-00000070") }
        guard expiry >= now else {
            var error = AccessError.accessDenied("Request has expired.", ec: "0002-00000069")
            error.details = [.init("Expires", Self.iso(expiry)), .init("ServerTime", Self.iso(now))]
            throw error
        }
        let secret = try secret(for: id)
        let stringToSign = OSSSignature.v1StringToSign(method: request.method, contentMD5: request.headers["content-md5"] ?? "",
                                                       contentType: request.headers["content-type"] ?? "", dateOrExpires: expires,
                                                       headers: request.headers.filter { $0.key.hasPrefix("x-oss-") },
                                                       bucket: request.bucket, key: request.key, query: request.query)
        let expected = OSSSignature.v1Signature(secret: secret, stringToSign: stringToSign)
        guard OSSSignature.constantTimeEqual(expected, signature) else { throw mismatch(id: id, provided: signature, stringToSign: stringToSign) }
        return id
    }

    func verifyV1Header(_ request: SignedRequest, authorization: String, now: Int) throws -> String {
        let credential = authorization.dropFirst("OSS ".count)
        guard let colon = credential.lastIndex(of: ":") else {
            throw AccessError(status: 400, code: "InvalidArgument", message: "Authorization header is invalid: expected 'OSS id:signature'.")
        }
        let id = String(credential[..<colon]), signature = String(credential[credential.index(after: colon)...])
        let date = request.headers["x-oss-date"] ?? request.headers["date"] ?? ""
        guard let time = Self.httpDate(date) else {
            throw AccessError.accessDenied("A header-signed request needs a valid Date header.", ec: "0002-00000018")
        }
        guard abs(time - now) <= skew else {
            throw AccessError(status: 403, code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large.",
                              ec: "0002-00000017", details: [.init("RequestTime", date), .init("ServerTime", Self.iso(now))])
        }
        let secret = try secret(for: id)
        let stringToSign = OSSSignature.v1StringToSign(method: request.method, contentMD5: request.headers["content-md5"] ?? "",
                                                       contentType: request.headers["content-type"] ?? "", dateOrExpires: request.headers["date"] ?? date,
                                                       headers: request.headers.filter { $0.key.hasPrefix("x-oss-") },
                                                       bucket: request.bucket, key: request.key, query: request.query)
        let expected = OSSSignature.v1Signature(secret: secret, stringToSign: stringToSign)
        guard OSSSignature.constantTimeEqual(expected, signature) else { throw mismatch(id: id, provided: signature, stringToSign: stringToSign) }
        return id
    }

    func verifyV4URL(_ request: SignedRequest, now: Int) throws -> String {
        guard let credential = request.value("x-oss-credential"), let dateTime = request.value("x-oss-date"),
              let expires = request.value("x-oss-expires"), let signature = request.value("x-oss-signature") else {
            throw AccessError.accessDenied("A V4 signed URL needs x-oss-credential, x-oss-date, x-oss-expires and x-oss-signature.", ec: "0002-00000070")
        }
        guard let lifetime = Int(expires), (1...604_800).contains(lifetime), let start = Self.v4Time(dateTime) else {
            throw AccessError.accessDenied("x-oss-expires must be 1-604800 seconds and x-oss-date a YYYYMMDDTHHMMSSZ time.", ec: "0002-00000070")
        }
        // A URL dated in the future would outlive the 7-day cap: OSS allows 15 minutes of skew.
        guard start <= now + skew else {
            throw AccessError(status: 403, code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large.",
                              ec: "0002-00000017", details: [.init("RequestTime", dateTime), .init("ServerTime", Self.iso(now))])
        }
        guard start + lifetime >= now else {
            var error = AccessError.accessDenied("Request has expired.", ec: "0002-00000069")
            error.details = [.init("Expires", Self.iso(start + lifetime)), .init("ServerTime", Self.iso(now))]
            throw error
        }
        let (id, scope) = try parseCredential(credential, dateTime: dateTime)
        let secret = try secret(for: id)
        let unsigned = request.query.filter { $0.name != "x-oss-signature" }
        // The request's x-oss-*, Content-Type and Content-MD5 headers are signed as in a header
        // signature, with the headers the URL lists in x-oss-additional-headers (a presigned PUT
        // with its Content-Type, or Host).
        let additional = request.value("x-oss-additional-headers").map { $0.split(separator: ";").map(String.init) } ?? []
        let canonical = OSSSignature.v4CanonicalRequest(method: request.method, bucket: request.bucket, key: request.key, query: unsigned,
                                                        headers: request.headers, additionalHeaders: additional)
        let stringToSign = OSSSignature.v4StringToSign(dateTime: dateTime, scope: scope, canonicalRequest: canonical)
        let expected = OSSSignature.v4Signature(key: OSSSignature.v4SigningKey(secret: secret, date: String(dateTime.prefix(8)), region: region),
                                                stringToSign: stringToSign)
        guard OSSSignature.constantTimeEqual(expected, signature) else { throw mismatch(id: id, provided: signature, stringToSign: stringToSign) }
        return id
    }

    func verifyV4Header(_ request: SignedRequest, authorization: String, now: Int) throws -> String {
        var fields: [String: String] = [:]
        for part in authorization.dropFirst("OSS4-HMAC-SHA256 ".count).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let credential = fields["Credential"], let signature = fields["Signature"], let dateTime = request.headers["x-oss-date"],
              let time = Self.v4Time(dateTime) else {
            throw AccessError(status: 400, code: "InvalidArgument", message: "Authorization header is invalid: it needs Credential and Signature, and the request an x-oss-date header.")
        }
        guard abs(time - now) <= skew else {
            throw AccessError(status: 403, code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large.",
                              ec: "0002-00000017", details: [.init("RequestTime", dateTime), .init("ServerTime", Self.iso(now))])
        }
        let (id, scope) = try parseCredential(credential, dateTime: dateTime)
        let secret = try secret(for: id)
        let additional = fields["AdditionalHeaders"].map { $0.split(separator: ";").map(String.init) } ?? []
        let canonical = OSSSignature.v4CanonicalRequest(method: request.method, bucket: request.bucket, key: request.key, query: request.query,
                                                        headers: request.headers, additionalHeaders: additional)
        let stringToSign = OSSSignature.v4StringToSign(dateTime: dateTime, scope: scope, canonicalRequest: canonical)
        let expected = OSSSignature.v4Signature(key: OSSSignature.v4SigningKey(secret: secret, date: String(dateTime.prefix(8)), region: region),
                                                stringToSign: stringToSign)
        guard OSSSignature.constantTimeEqual(expected, signature) else { throw mismatch(id: id, provided: signature, stringToSign: stringToSign) }
        return id
    }

    /// `AK/date/region/oss/aliyun_v4_request`: the date must be the request's day and the region ours.
    func parseCredential(_ credential: String, dateTime: String) throws -> (id: String, scope: String) {
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[4] == "aliyun_v4_request", parts[3] == "oss", parts[1] == String(dateTime.prefix(8)) else {
            throw AccessError.accessDenied("x-oss-credential must be AccessKeyId/yyyymmdd/region/oss/aliyun_v4_request for the request's date.", ec: "0002-00000070")
        }
        guard parts[2] == region else {
            throw AccessError(status: 400, code: "InvalidArgument", message: "The region '\(parts[2])' in the credential is not this endpoint's region '\(region)'.",
                              ec: "0002-00000228")
        }
        return (parts[0], parts[1...].joined(separator: "/"))
    }

    static func iso(_ unix: Int) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
    }

    static func v4Time(_ text: String) -> Int? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: text).map { Int($0.timeIntervalSince1970) }
    }

    /// RFC 1123 dates (`Tue, 14 Nov 2023 22:13:20 GMT`).
    public static func httpDate(_ text: String) -> Int? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text).map { Int($0.timeIntervalSince1970) }
    }
}

extension SignedRequest {
    /// Decodes a raw query string (`a=b%2Fc&flag`) into parameters, keeping their order. The
    /// one query decoder of the server (routing, listings, signatures V1 and V4): names and
    /// values are `application/x-www-form-urlencoded`, so `+` is a space, as OSS reads them
    /// (oss2 and ossfs send `prefix=tmp+x%2F` for "tmp x/"); a literal plus is `%2B`. A
    /// component that does not decode to UTF-8 is kept as sent (`isWellFormedQuery` refuses it).
    public static func parseQuery(_ raw: String) -> [OSSSignature.Parameter] {
        guard !raw.isEmpty else { return [] }
        return raw.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decodeQueryComponent(parts[0]) ?? String(parts[0])
            let value = parts.count > 1 ? (decodeQueryComponent(parts[1]) ?? String(parts[1])) : nil
            return OSSSignature.Parameter(name, value)
        }
    }

    /// Whether every name and value of `raw` decodes (escapes of two hex digits, UTF-8 text).
    public static func isWellFormedQuery(_ raw: String) -> Bool {
        raw.split(separator: "&").allSatisfy { pair in
            pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).allSatisfy { decodeQueryComponent($0) != nil }
        }
    }

    /// One form-encoded component: `+` is a space, `%XY` a byte; nil when an escape is
    /// malformed or the bytes are not UTF-8.
    public static func decodeQueryComponent(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        func hexValue(_ byte: UInt8?) -> UInt8? {
            switch byte {
            case let b? where b >= 0x30 && b <= 0x39: return b - 0x30
            case let b? where b >= 0x41 && b <= 0x46: return b - 0x41 + 10
            case let b? where b >= 0x61 && b <= 0x66: return b - 0x61 + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = hexValue(iterator.next()), let low = hexValue(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
