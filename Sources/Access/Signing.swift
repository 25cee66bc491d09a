import Crypto
import Foundation

/// An access key: the id travels in requests, the secret never does.
public struct Credentials: Sendable, Hashable {
    public var id: String
    public var secret: String

    public init(id: String, secret: String) {
        self.id = id
        self.secret = secret
    }
}

/// OSS request signing, byte for byte as Alibaba's oss2 SDK (2.19.1) computes it (spec §5.4–5.6).
public enum OSSSignature {
    /// Query parameters that are signed sub-resources in V1 (oss2's list).
    public static let subresources: Set<String> = [
        "accessPoint", "accessPointPolicy", "acl", "append", "asyncFetch", "bucketArchiveDirectRead", "bucketInfo",
        "callback", "callback-var", "cname", "comp", "continuation-token", "cors", "delete", "encryption", "endTime",
        "group", "httpsConfig", "inventory", "inventoryId", "lifecycle", "link", "live", "location", "logging",
        "metaQuery", "objectInfo", "objectMeta", "partNumber", "policy", "position", "publicAccessBlock", "qos",
        "qosInfo", "qosRequester", "redundancyTransition", "referer", "regionList", "replication",
        "replicationLocation", "replicationProgress", "requestPayment", "requesterQosInfo", "resourceGroup",
        "resourcePool", "resourcePoolBuckets", "resourcePoolInfo", "response-cache-control",
        "response-content-disposition", "response-content-encoding", "response-content-language",
        "response-content-type", "response-expires", "restore", "security-token", "sequential", "startTime", "stat",
        "status", "style", "styleName", "symlink", "tagging", "transferAcceleration", "uploadId", "uploads",
        "versionId", "versioning", "versions", "vod", "website", "worm", "wormExtend", "wormId",
        "x-oss-ac-forward-allow", "x-oss-ac-source-ip", "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id",
        "x-oss-access-point-name", "x-oss-async-process", "x-oss-process", "x-oss-redundancy-transition-taskid",
        "x-oss-request-payer", "x-oss-target-redundancy-type", "x-oss-traffic-limit",
        "x-oss-write-get-object-response",
    ]

    /// A query parameter; `value` nil means a bare name (`?x-oss-process`).
    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var value: String?
        public init(_ name: String, _ value: String?) { self.name = name; self.value = value }
    }

    // MARK: V1

    /// `/bucket/key` with the raw key, then the signed sub-resources sorted by name.
    public static func canonicalResource(bucket: String, key: String, query: [Parameter]) -> String {
        var resource = bucket.isEmpty ? "/" : "/\(bucket)/\(key)"
        let signed = query.filter { subresources.contains($0.name) }.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        if !signed.isEmpty {
            resource += "?" + signed.map { parameter in
                guard let value = parameter.value, !value.isEmpty else { return parameter.name }
                return "\(parameter.name)=\(value)"
            }.joined(separator: "&")
        }
        return resource
    }

    /// `x-oss-*` headers, lowercased and sorted, each `name:value\n`.
    public static func canonicalHeaders(_ headers: [String: String]) -> String {
        headers.compactMap { name, value -> (String, String)? in
            let lower = name.lowercased()
            return lower.hasPrefix("x-oss-") ? (lower, value) : nil
        }.sorted { $0.0 < $1.0 }.map { "\($0.0):\($0.1)\n" }.joined()
    }

    /// The V1 string to sign; `dateOrExpires` is the `Expires` timestamp (URLs) or `Date` header.
    public static func v1StringToSign(method: String, contentMD5: String = "", contentType: String = "", dateOrExpires: String,
                                      headers: [String: String] = [:], bucket: String, key: String, query: [Parameter]) -> String {
        let date = headers.first { $0.key.lowercased() == "x-oss-date" }?.value ?? dateOrExpires
        return "\(method)\n\(contentMD5)\n\(contentType)\n\(date)\n\(canonicalHeaders(headers))\(canonicalResource(bucket: bucket, key: key, query: query))"
    }

    /// Base64(HMAC-SHA1(secret, stringToSign)).
    public static func v1Signature(secret: String, stringToSign: String) -> String {
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(stringToSign.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// A V1 presigned URL; `now` in Unix seconds, `lifetime` in seconds.
    public static func signV1URL(endpoint: String, bucket: String, key: String, credentials: Credentials, lifetime: Int, now: Int,
                                 method: String = "GET", parameters: [Parameter] = [], slashSafe: Bool = true) -> String {
        let expires = String(now + lifetime)
        let stringToSign = v1StringToSign(method: method, dateOrExpires: expires, bucket: bucket, key: key, query: parameters)
        let signature = v1Signature(secret: credentials.secret, stringToSign: stringToSign)
        let all = parameters + [Parameter("OSSAccessKeyId", credentials.id), Parameter("Expires", expires), Parameter("Signature", signature)]
        return objectURL(endpoint: endpoint, bucket: bucket, key: key, slashSafe: slashSafe) + "?" + encodeQuery(all)
    }

    // MARK: V4

    public static let v4Algorithm = "OSS4-HMAC-SHA256"

    /// HMAC-SHA256 chain: "aliyun_v4"+secret → date → region → product → "aliyun_v4_request".
    public static func v4SigningKey(secret: String, date: String, region: String, product: String = "oss") -> SymmetricKey {
        var key = SymmetricKey(data: Data(("aliyun_v4" + secret).utf8))
        for part in [date, region, product, "aliyun_v4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    public static func v4CanonicalRequest(method: String, bucket: String, key: String, query: [Parameter],
                                          headers: [String: String] = [:], additionalHeaders: [String] = []) -> String {
        let uri = uriEncode("/\(bucket)/\(key)", keepSlash: true)
        let canonicalQuery = query.map { (uriEncode($0.name, keepSlash: false), $0.value.map { uriEncode($0, keepSlash: false) }) }
            .sorted { $0.0 < $1.0 }
            .map { name, value in (value?.isEmpty ?? true) ? name : "\(name)=\(value!)" }
            .joined(separator: "&")
        let additional = Set(additionalHeaders.map { $0.lowercased() })
        let signedHeaders = headers.compactMap { name, value -> (String, String)? in
            let lower = name.lowercased()
            let include = lower.hasPrefix("x-oss-") || lower == "content-type" || lower == "content-md5" || additional.contains(lower)
            return include ? (lower, value.trimmingCharacters(in: .whitespaces)) : nil
        }.sorted { $0.0 < $1.0 }.map { "\($0.0):\($0.1)\n" }.joined()
        let payload = headers.first { $0.key.lowercased() == "x-oss-content-sha256" }?.value ?? "UNSIGNED-PAYLOAD"
        return [method, uri, canonicalQuery, signedHeaders, additional.sorted().joined(separator: ";"), payload].joined(separator: "\n")
    }

    public static func v4StringToSign(dateTime: String, scope: String, canonicalRequest: String) -> String {
        let hash = hex(SHA256.hash(data: Data(canonicalRequest.utf8)))
        return "\(v4Algorithm)\n\(dateTime)\n\(scope)\n\(hash)"
    }

    public static func v4Signature(key: SymmetricKey, stringToSign: String) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC.
    public static func v4DateTime(_ unix: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
    }

    /// A V4 presigned URL; `now` in Unix seconds, `lifetime` in seconds (1–604 800).
    public static func signV4URL(endpoint: String, bucket: String, key: String, credentials: Credentials, region: String,
                                 lifetime: Int, now: Int, method: String = "GET", parameters: [Parameter] = []) -> String {
        let dateTime = v4DateTime(now)
        let date = String(dateTime.prefix(8))
        let scope = "\(date)/\(region)/oss/aliyun_v4_request"
        var all = parameters + [Parameter("x-oss-date", dateTime), Parameter("x-oss-expires", String(lifetime)),
                                Parameter("x-oss-signature-version", v4Algorithm),
                                Parameter("x-oss-credential", "\(credentials.id)/\(scope)")]
        let canonical = v4CanonicalRequest(method: method, bucket: bucket, key: key, query: all)
        let stringToSign = v4StringToSign(dateTime: dateTime, scope: scope, canonicalRequest: canonical)
        let signature = v4Signature(key: v4SigningKey(secret: credentials.secret, date: date, region: region), stringToSign: stringToSign)
        all.append(Parameter("x-oss-signature", signature))
        return objectURL(endpoint: endpoint, bucket: bucket, key: key, slashSafe: true) + "?" + encodeQuery(all)
    }

    // MARK: Encoding

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lowercase hex of digests and MACs (what V4 signatures and action keys are written in).
    public static func hex<Bytes: Sequence>(_ bytes: Bytes, uppercase: Bool = false) -> String where Bytes.Element == UInt8 {
        var characters: [UInt8] = []
        for byte in bytes {
            characters.append(hexDigits[Int(byte >> 4)])
            characters.append(hexDigits[Int(byte & 0x0F)])
        }
        let text = String(decoding: characters, as: UTF8.self)
        return uppercase ? text.uppercased() : text
    }

    /// Percent-encodes UTF-8 bytes, leaving `A–Z a–z 0–9 - _ . ~` (and `/` when `keepSlash`).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(UnicodeScalar(byte))
            if byte < 128, c.isLetter || c.isNumber || c == "-" || c == "_" || c == "." || c == "~" || (keepSlash && c == "/") {
                out.append(c)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func encodeQuery(_ parameters: [Parameter]) -> String {
        parameters.map { parameter in
            let name = uriEncode(parameter.name, keepSlash: false)
            guard let value = parameter.value, !value.isEmpty else { return name }
            return "\(name)=\(uriEncode(value, keepSlash: false))"
        }.joined(separator: "&")
    }

    /// Path-style object URL, as oss2 builds it for IP and localhost endpoints.
    public static func objectURL(endpoint: String, bucket: String, key: String, slashSafe: Bool) -> String {
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        return "\(base)/\(bucket)/\(uriEncode(key, keepSlash: slashSafe))"
    }

    /// Compares in time independent of where the strings differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }
}
