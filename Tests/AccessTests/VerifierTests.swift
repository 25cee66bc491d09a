import Foundation
import Testing
import TestSupport
@testable import Access

@Suite(.ownThreads) struct VerifierTests {
    let credentials = Credentials(id: "AKIDEXAMPLE", secret: "secret")
    let verifier = Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou")
    let now = 1_700_000_000
    typealias P = OSSSignature.Parameter

    /// Turns a signed path-style URL back into the request a server sees.
    func request(_ url: String, method: String = "GET", headers: [String: String] = [:]) -> SignedRequest {
        let components = URLComponents(string: url)!
        let path = components.percentEncodedPath
        let parts = path.dropFirst().split(separator: "/", maxSplits: 1).map(String.init)
        return SignedRequest(method: method, bucket: parts[0], key: parts[1].removingPercentEncoding!,
                             query: SignedRequest.parseQuery(components.percentEncodedQuery ?? ""), headers: headers)
    }

    func fails(_ request: SignedRequest, at time: Int? = nil) -> AccessError? {
        do { _ = try verifier.authenticate(request, now: time ?? now); return nil } catch { return error as? AccessError }
    }

    @Test func v1URLRoundTrip() throws {
        for (key, slashSafe) in [("cats/kitten.jpg", true), ("cats/kitten.jpg", false), ("相册/猫 1.jpg", true)] {
            let url = OSSSignature.signV1URL(endpoint: "http://127.0.0.1:9000", bucket: "photos", key: key, credentials: credentials,
                                             lifetime: 3600, now: now, parameters: [P("x-oss-process", "image/resize,w_100")], slashSafe: slashSafe)
            #expect(try verifier.authenticate(request(url), now: now + 10) == "AKIDEXAMPLE")
        }
    }

    /// Issue #11 (8): a V4 URL dated 300 days ahead with a 7-day lifetime would live for 307 days.
    @Test func futureDatedV4URLsAreTooSkewed() throws {
        let url = OSSSignature.signV4URL(endpoint: "http://127.0.0.1:9000", bucket: "photos", key: "a.jpg", credentials: credentials,
                                         region: "cn-hangzhou", lifetime: 604_800, now: now + 300 * 86_400)
        let error = fails(request(url))
        #expect(error?.status == 403 && error?.code == "RequestTimeTooSkewed" && error?.ec == "0002-00000017")
        // Up to 15 minutes ahead is clock skew, accepted as OSS does; one second more is not.
        let near = OSSSignature.signV4URL(endpoint: "http://127.0.0.1:9000", bucket: "photos", key: "a.jpg", credentials: credentials,
                                          region: "cn-hangzhou", lifetime: 60, now: now + 900)
        #expect(try verifier.authenticate(request(near), now: now) == "AKIDEXAMPLE")
        #expect(fails(request(near), at: now - 1)?.code == "RequestTimeTooSkewed")
    }

    @Test func v4URLRoundTrip() throws {
        let url = OSSSignature.signV4URL(endpoint: "http://127.0.0.1:9000", bucket: "photos", key: "相册/猫 1.jpg", credentials: credentials,
                                         region: "cn-hangzhou", lifetime: 600, now: now, parameters: [P("x-oss-process", "style/thumb")])
        #expect(try verifier.authenticate(request(url), now: now + 599) == "AKIDEXAMPLE")
        #expect(fails(request(url), at: now + 601)?.message == "Request has expired.")
        let otherRegion = Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "local")
        #expect((try? otherRegion.authenticate(request(url), now: now)) == nil)
    }

    @Test func anonymousRequestsAreNotSigned() throws {
        #expect(try verifier.authenticate(request("http://h/photos/a.jpg?x-oss-process=image%2Finfo"), now: now) == nil)
    }

    /// The order of spec §5.4: presence, then expiry, then the signature.
    @Test func checkOrder() {
        let url = OSSSignature.signV1URL(endpoint: "http://h", bucket: "photos", key: "a.jpg", credentials: credentials, lifetime: 60, now: now,
                                         parameters: [P("x-oss-process", "image/resize,w_100")])
        let missing = fails(request(url.replacingOccurrences(of: "&Signature=", with: "&Sig=")))
        #expect(missing?.code == "AccessDenied" && missing?.status == 403)
        let expired = fails(request(url), at: now + 61)
        #expect(expired?.code == "AccessDenied" && expired?.ec == "0002-00000069")
        // Expired and tampered: expiry is reported first.
        let tampered = request(url.replacingOccurrences(of: "w_100", with: "w_900"))
        #expect(fails(tampered, at: now + 61)?.ec == "0002-00000069")
        let bad = fails(tampered)
        #expect(bad?.code == "SignatureDoesNotMatch")
        #expect(bad?.details.first { $0.name == "StringToSign" }?.value == "GET\n\n\n1700000060\n/photos/a.jpg?x-oss-process=image/resize,w_900")
        #expect(bad?.details.contains { $0.name == "StringToSignBytes" && $0.value.hasPrefix("47 45 54 0a") } == true)
        let unknown = fails(request(url.replacingOccurrences(of: "AKIDEXAMPLE", with: "AKIDOTHER")))
        #expect(unknown?.code == "InvalidAccessKeyId")
    }

    @Test func v1HeaderSignatures() throws {
        let date = "Tue, 14 Nov 2023 22:13:20 GMT"
        let stringToSign = OSSSignature.v1StringToSign(method: "GET", dateOrExpires: date, bucket: "photos", key: "a.jpg",
                                                       query: [P("x-oss-process", "image/resize,w_10")])
        let signature = OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        let signed = SignedRequest(method: "GET", bucket: "photos", key: "a.jpg", query: [P("x-oss-process", "image/resize,w_10")],
                                   headers: ["Date": date, "Authorization": "OSS AKIDEXAMPLE:\(signature)"])
        #expect(try verifier.authenticate(signed, now: now + 60) == "AKIDEXAMPLE")
        #expect(fails(signed, at: now + 3600)?.code == "RequestTimeTooSkewed")
        var both = signed
        both.query.append(P("Signature", "x"))
        #expect(fails(both)?.code == "InvalidArgument")
    }

    @Test func v4HeaderSignatures() throws {
        let dateTime = "20231114T221320Z"
        let headers = ["x-oss-date": dateTime, "x-oss-content-sha256": "UNSIGNED-PAYLOAD"]
        let canonical = OSSSignature.v4CanonicalRequest(method: "GET", bucket: "photos", key: "a.jpg", query: [P("x-oss-process", "image/info")], headers: headers)
        let scope = "20231114/cn-hangzhou/oss/aliyun_v4_request"
        let signature = OSSSignature.v4Signature(key: OSSSignature.v4SigningKey(secret: "secret", date: "20231114", region: "cn-hangzhou"),
                                                 stringToSign: OSSSignature.v4StringToSign(dateTime: dateTime, scope: scope, canonicalRequest: canonical))
        var all = headers
        all["Authorization"] = "OSS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(scope),Signature=\(signature)"
        let signed = SignedRequest(method: "GET", bucket: "photos", key: "a.jpg", query: [P("x-oss-process", "image/info")], headers: all)
        #expect(try verifier.authenticate(signed, now: now) == "AKIDEXAMPLE")
        var tampered = signed
        tampered.query = [P("x-oss-process", "image/average-hue")]
        #expect(fails(tampered)?.code == "SignatureDoesNotMatch")
    }

    /// Issue #12: V4 presigned URLs sign the request's x-oss-*, Content-Type and Content-MD5
    /// headers and those x-oss-additional-headers lists. Vectors from oss2 2.19.1 (`AuthV4`,
    /// clock frozen at 1700000000): `sign_url('PUT', 'cats/up.jpg', 3600, headers={Content-Type,
    /// x-oss-meta-a, Host}, additional_headers={'host'})` and a GET with `response-content-type`.
    @Test func v4URLsWithSignedHeadersFromOSS2() throws {
        let put = "http://127.0.0.1:9000/photos/cats/up.jpg?x-oss-date=20231114T221320Z&x-oss-expires=3600&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=AKIDEXAMPLE%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-additional-headers=host&x-oss-signature=cb49683001d37f1b76d8e8b4b169fe946696363838554b61dba2000f895739d6"
        let headers = ["Content-Type": "image/jpeg", "x-oss-meta-a": "1", "Host": "127.0.0.1:9000"]
        #expect(try verifier.authenticate(request(put, method: "PUT", headers: headers), now: now + 5) == "AKIDEXAMPLE")
        for (name, value) in [("Content-Type", "image/png"), ("x-oss-meta-a", "2"), ("Host", "127.0.0.1:9001")] {
            var changed = headers
            changed[name] = value
            #expect(fails(request(put, method: "PUT", headers: changed))?.code == "SignatureDoesNotMatch", "\(name)")
        }
        var extra = headers
        extra["x-oss-meta-b"] = "unsigned"
        #expect(fails(request(put, method: "PUT", headers: extra))?.code == "SignatureDoesNotMatch")
        let get = "http://127.0.0.1:9000/photos/cats/kitten.jpg?response-content-type=text%2Fplain&x-oss-date=20231114T221320Z&x-oss-expires=3600&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=AKIDEXAMPLE%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-signature=2b5386163019a536ec6c0ceecedd106123d9d1290cfde704816a641a85f73e06"
        #expect(try verifier.authenticate(request(get, headers: ["Host": "127.0.0.1:9000"]), now: now) == "AKIDEXAMPLE")
    }
}
