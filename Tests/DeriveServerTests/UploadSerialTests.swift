import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Issue 12, attack 8 finding 2: Complete, Abort and a second Complete of one upload id are
/// serialised, so exactly one of them wins and the others answer 404 NoSuchUpload (never 500),
/// and an Abort that answered 204 leaves no object behind.
@Suite(.ownThreads) struct UploadSerialTests {
    static func completeBody(_ parts: [Data]) -> Data {
        var text = "<CompleteMultipartUpload>"
        for (index, part) in parts.enumerated() {
            text += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\"\(MultipartTests.etag(part))\"</ETag></Part>"
        }
        return Data((text + "</CompleteMultipartUpload>").utf8)
    }

    @Test func completeAbortCompleteHaveExactlyOneWinner() throws {
        // The fixture only calls the service, which is Sendable.
        nonisolated(unsafe) let f = try ServiceFixture()
        let first = Data(repeating: 0x41, count: 200_000)
        let second = Data(repeating: 0x42, count: 900_000)
        let body = Self.completeBody([first, second])
        var broken: [String] = []
        for round in 0..<12 {
            let key = "serial/\(round).bin"
            let id = try #require(MultipartBoundsTests.initiate(f, key).values("UploadId").first)
            #expect(MultipartBoundsTests.part(f, key, id, 1, first).status == 200)
            #expect(MultipartBoundsTests.part(f, key, id, 2, second).status == 200)
            let answers = [AnswerBox(), AnswerBox(), AnswerBox()]
            DispatchQueue.concurrentPerform(iterations: 3) { who in
                if who == 1 {
                    answers[who].set(f.send("DELETE", "photos", key, query: [("uploadId", id)]))
                } else {
                    answers[who].set(f.send("POST", "photos", key, query: [("uploadId", id)], body: body))
                }
            }
            let got = answers.map { $0.value! }
            let winners = got.filter { $0.status == 200 || $0.status == 204 }
            let losers = got.filter { $0.status == 404 && $0.code == "NoSuchUpload" }
            let exists = f.file("photos/" + key) != nil
            let abortWon = got[1].status == 204
            if winners.count != 1 || losers.count != 2 || exists == abortWon {
                broken.append("round \(round): " + got.map { "\($0.status) \($0.code ?? "")" }.joined(separator: ", ") + " object \(exists ? "exists" : "absent")")
            }
        }
        #expect(broken.isEmpty, "\(broken.joined(separator: "; "))")
    }

    @Test func aPartRacingCompleteIsRefusedOrUnusedNeverAnError() throws {
        nonisolated(unsafe) let f = try ServiceFixture()
        let first = Data(repeating: 0x41, count: 200_000)
        let tail = Data("tail".utf8)
        let late = Data(repeating: 0x43, count: 300_000)
        var broken: [String] = []
        for round in 0..<12 {
            let key = "partrace/\(round).bin"
            let id = try #require(MultipartBoundsTests.initiate(f, key).values("UploadId").first)
            #expect(MultipartBoundsTests.part(f, key, id, 1, first).status == 200)
            #expect(MultipartBoundsTests.part(f, key, id, 2, tail).status == 200)
            let answers = [AnswerBox(), AnswerBox(), AnswerBox()]
            DispatchQueue.concurrentPerform(iterations: 3) { who in
                if who == 0 {
                    answers[who].set(f.send("POST", "photos", key, query: [("uploadId", id)], body: Self.completeBody([first, tail])))
                } else {
                    answers[who].set(MultipartBoundsTests.part(f, key, id, 2 + who, late))
                }
            }
            let got = answers.map { $0.value! }
            for answer in got where !(answer.status == 200 || (answer.status == 404 && answer.code == "NoSuchUpload")) {
                broken.append("round \(round): \(answer.status) \(answer.text)")
            }
            if got[0].status == 200, f.file("photos/" + key) != first + tail { broken.append("round \(round): the object holds other bytes") }
            // Nothing of the upload is left behind once Complete answered.
            if got[0].status == 200, MultipartBoundsTests.part(f, key, id, 9, tail).status != 404 { broken.append("round \(round): the upload is still open") }
        }
        #expect(broken.isEmpty, "\(broken.joined(separator: "; "))")
    }

    /// Attack 8 finding 4: `?VersionId=` in any case is a version, as `?versionId=` is.
    @Test func aCopySourceVersionIdInAnyCaseIsNotImplemented() throws {
        let f = try ServiceFixture()
        #expect(f.send("PUT", "drop", "src.txt", body: Data("src".utf8), signed: false).status == 200)
        for name in ["VersionId", "VERSIONID", "versionid"] {
            let answer = f.send("PUT", "drop", "v.txt", headers: ["x-oss-copy-source": "/drop/src.txt?\(name)=1"], signed: false)
            #expect(answer.status == 501 && answer.code == "NotImplemented", "\(name): \(answer.status) \(answer.text)")
        }
        #expect(f.file("drop/v.txt") == nil)
    }
}
