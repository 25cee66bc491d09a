import Foundation
import Testing
import TestSupport
@testable import Access

/// The signing vectors of spec §5.7 (made with oss2 2.19.1), byte for byte.
@Suite(.ownThreads) struct SignatureVectorTests {
    let credentials = Credentials(id: "AKIDEXAMPLE", secret: "secret")
    let endpoint = "http://127.0.0.1:9000"
    let now = 1_700_000_000
    typealias P = OSSSignature.Parameter

    @Test(arguments: [
        ("V1-1", "cats/kitten.jpg", [P("x-oss-process", "image/resize,w_100")], false,
         "http://127.0.0.1:9000/photos/cats%2Fkitten.jpg?x-oss-process=image%2Fresize%2Cw_100&OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=z4ojHwuTw3c2r0D6CDiaJeOEYt0%3D"),
        ("V1-2", "cats/kitten.jpg", [P("x-oss-process", "image/resize,w_100")], true,
         "http://127.0.0.1:9000/photos/cats/kitten.jpg?x-oss-process=image%2Fresize%2Cw_100&OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=z4ojHwuTw3c2r0D6CDiaJeOEYt0%3D"),
        ("V1-3", "albums/2023/sea view.jpg", [P("x-oss-process", "image/resize,m_fill,w_200,h_200/quality,q_80/format,webp")], true,
         "http://127.0.0.1:9000/photos/albums/2023/sea%20view.jpg?x-oss-process=image%2Fresize%2Cm_fill%2Cw_200%2Ch_200%2Fquality%2Cq_80%2Fformat%2Cwebp&OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=5zxIB4m9SED6cBZ%2FR21RA2U5YMA%3D"),
        ("V1-4", "cats/kitten.jpg", [P("x-oss-process", "style/thumb")], true,
         "http://127.0.0.1:9000/photos/cats/kitten.jpg?x-oss-process=style%2Fthumb&OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=TISinBafVYf8DSiRSbxi80oR4NE%3D"),
        ("V1-5", "cats/kitten.jpg", [], true,
         "http://127.0.0.1:9000/photos/cats/kitten.jpg?OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=lasz8Yf18mCsgLhMld9tTsXAc1w%3D"),
        ("V1-6", "相册/猫 1.jpg", [P("x-oss-process", "image/info")], true,
         "http://127.0.0.1:9000/photos/%E7%9B%B8%E5%86%8C/%E7%8C%AB%201.jpg?x-oss-process=image%2Finfo&OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=09qoowvdCnm0ckIwqeipxMe4JuI%3D"),
        ("V1-7", "cats/kitten.jpg", [P("x-oss-process", "image/resize,w_100"), P("foo", "bar"), P("response-content-type", "image/webp")], true,
         "http://127.0.0.1:9000/photos/cats/kitten.jpg?x-oss-process=image%2Fresize%2Cw_100&foo=bar&response-content-type=image%2Fwebp&OSSAccessKeyId=AKIDEXAMPLE&Expires=1700003600&Signature=byMWS1dIlVjeJ8CQpBC%2BsygGGp0%3D"),
    ])
    func v1URLs(_ id: String, _ key: String, _ parameters: [P], _ slashSafe: Bool, _ expected: String) {
        let url = OSSSignature.signV1URL(endpoint: endpoint, bucket: "photos", key: key, credentials: credentials, lifetime: 3600,
                                         now: now, parameters: parameters, slashSafe: slashSafe)
        #expect(url == expected, "\(id)")
    }

    @Test func v1StringToSign() {
        let text = OSSSignature.v1StringToSign(method: "GET", dateOrExpires: "1700003600", bucket: "photos", key: "cats/kitten.jpg",
                                               query: [P("x-oss-process", "image/resize,w_100"), P("foo", "bar"), P("response-content-type", "image/webp")])
        #expect(text == "GET\n\n\n1700003600\n/photos/cats/kitten.jpg?response-content-type=image/webp&x-oss-process=image/resize,w_100")
    }

    /// POST-1: the header-signed save-as request.
    @Test func v1HeaderPost() {
        let text = OSSSignature.v1StringToSign(method: "POST", dateOrExpires: "Tue, 14 Nov 2023 22:13:20 GMT", bucket: "photos",
                                               key: "cats/kitten.jpg", query: [P("x-oss-process", nil)])
        #expect(text == "POST\n\n\nTue, 14 Nov 2023 22:13:20 GMT\n/photos/cats/kitten.jpg?x-oss-process")
        #expect("OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: text) == "OSS AKIDEXAMPLE:D1XV+2D9x6G3LGJibvDKuOF4CxA=")
    }

    @Test func v4SigningKey() {
        let key = OSSSignature.v4SigningKey(secret: "secret", date: "20231114", region: "cn-hangzhou")
        let hex = key.withUnsafeBytes { Array($0) }.map { String(format: "%02x", $0) }.joined()
        #expect(hex == "b6e23fb08b8f82fde819f6582a13e095e1c76297c8ce72c443982d0e821ac15e")
    }

    @Test func v4URL1() {
        let url = OSSSignature.signV4URL(endpoint: endpoint, bucket: "photos", key: "cats/kitten.jpg", credentials: credentials,
                                         region: "cn-hangzhou", lifetime: 3600, now: now, parameters: [P("x-oss-process", "image/resize,w_100")])
        #expect(url == "http://127.0.0.1:9000/photos/cats/kitten.jpg?x-oss-process=image%2Fresize%2Cw_100&x-oss-date=20231114T221320Z&x-oss-expires=3600&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=AKIDEXAMPLE%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-signature=bfadbc5b8198acffb3d0daa7d25b2a8e117ba2c500170503e2f7c73f567d7822")
        let canonical = OSSSignature.v4CanonicalRequest(method: "GET", bucket: "photos", key: "cats/kitten.jpg", query: [
            P("x-oss-process", "image/resize,w_100"), P("x-oss-date", "20231114T221320Z"), P("x-oss-expires", "3600"),
            P("x-oss-signature-version", "OSS4-HMAC-SHA256"), P("x-oss-credential", "AKIDEXAMPLE/20231114/cn-hangzhou/oss/aliyun_v4_request")])
        #expect(canonical == "GET\n/photos/cats/kitten.jpg\nx-oss-credential=AKIDEXAMPLE%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231114T221320Z&x-oss-expires=3600&x-oss-process=image%2Fresize%2Cw_100&x-oss-signature-version=OSS4-HMAC-SHA256\n\n\nUNSIGNED-PAYLOAD")
        let stringToSign = OSSSignature.v4StringToSign(dateTime: "20231114T221320Z", scope: "20231114/cn-hangzhou/oss/aliyun_v4_request", canonicalRequest: canonical)
        #expect(stringToSign.hasSuffix("\n2ce622053efa73f6e35f4e39f7c6295295f93c1a539393a80272686c46e7faf7"))
    }

    @Test func v4URL2() {
        let url = OSSSignature.signV4URL(endpoint: endpoint, bucket: "photos", key: "相册/猫 1.jpg", credentials: credentials,
                                         region: "cn-hangzhou", lifetime: 600, now: now, parameters: [P("x-oss-process", "style/thumb")])
        #expect(url == "http://127.0.0.1:9000/photos/%E7%9B%B8%E5%86%8C/%E7%8C%AB%201.jpg?x-oss-process=style%2Fthumb&x-oss-date=20231114T221320Z&x-oss-expires=600&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=AKIDEXAMPLE%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-signature=6ada53e4bb7f0b8ce6d1490ef828720500bcd41db1b6845b032a138405217df7")
    }

    @Test func constantTimeComparison() {
        #expect(OSSSignature.constantTimeEqual("abc", "abc"))
        #expect(!OSSSignature.constantTimeEqual("abc", "abd"))
        #expect(!OSSSignature.constantTimeEqual("abc", "abcd"))
    }
}
