import Access
import Confinement
import Crypto
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import DeriveServer
#if canImport(Glibc)
import Glibc
#endif

/// Attack round 23's serve findings. F3: when `derive serve` made the state folder, it and
/// everything serve put in it took the umask's modes (0755/0644): renders of private objects for
/// signed callers (`serve-cache/`), parts of uploads into private keys (`serve-uploads/`) and
/// the metadata database were readable by any local user, while a build makes the folder 0700.
@Suite(.ownThreads, .serialized) struct ServeBoundsRound23Tests {
    /// Every entry below `root` (itself included) whose mode gives group or others any bit.
    static func exposed(below root: String) -> [String] {
        var found: [String] = []
        var info = stat()
        if lstat(root, &info) == 0, info.st_mode & 0o077 != 0 { found.append(root + " " + String(info.st_mode & 0o777, radix: 8)) }
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let name = enumerator?.nextObject() as? String {
            let path = root + "/" + name
            if lstat(path, &info) == 0, info.st_mode & 0o077 != 0 { found.append(name + " " + String(info.st_mode & 0o777, radix: 8)) }
        }
        return found
    }

    /// A fresh project served as `derive serve` does it (the serve lock first, then the service
    /// with its cache in the state folder), under the usual umask.
    final class Served {
        let folder: URL
        let manifest: Manifest
        let lock: ServeLock
        let fixture: ServiceFixtureOnState

        init(prepare: (URL) throws -> Void = { _ in }) throws {
            folder = (try ScratchFolder.make("derive-r23"))
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos/cats"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: ServiceFixture.samples.appendingPathComponent("landscape.jpg"),
                                             to: folder.appendingPathComponent("photos/cats/kitten.jpg"))
            try Data(ServiceFixture.defaultManifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            try prepare(folder)
            let result = ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
            manifest = try #require(result.manifest, "\(result.diagnostics)")
            lock = try ServeLock(stateFolder: manifest.stateFolder)
            fixture = try ServiceFixtureOnState(manifest: manifest, folder: folder)
        }

        deinit { try? FileManager.default.removeItem(at: folder) }
    }

    /// The service of `ServiceFixture`, with the cache where serve keeps it.
    final class ServiceFixtureOnState {
        let service: ObjectService
        init(manifest: Manifest, folder: URL) throws {
            let now = 1_700_000_000
            service = try ObjectService(manifest: manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"),
                                        engine: Engine(), cacheFolder: manifest.stateFolder + "/" + StateFiles.serveCache, maxBodyBytes: 1_000_000,
                                        clock: { now })
        }
    }

    /// Sends a V1-signed request (the `ServiceFixture.send` signing, on this service).
    static func send(_ service: ObjectService, _ method: String, _ bucket: String, _ key: String, query: [(String, String?)] = [],
                     body: Data = Data()) -> ServiceResponse {
        var headers = ["host": "127.0.0.1:9000", "date": ServiceFixture.headerDate]
        let parameters = query.map { OSSSignature.Parameter($0.0, $0.1) }
        let stringToSign = OSSSignature.v1StringToSign(method: method, contentMD5: "", contentType: "", dateOrExpires: ServiceFixture.headerDate,
                                                       headers: headers, bucket: bucket, key: key, query: parameters)
        headers["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        var target = "/" + bucket + "/" + ServiceFixture.encode(key, keepSlash: true)
        if !query.isEmpty {
            target += "?" + query.map { name, value in
                ServiceFixture.encode(name, keepSlash: false) + (value.map { "=" + ServiceFixture.encode($0, keepSlash: false) } ?? "")
            }.joined(separator: "&")
        }
        return service.handle(ServiceRequest(method: method, target: target, headers: headers, body: body))
    }

    /// A signed render of a private object and a signed part of an upload into a private key,
    /// then nothing under `.derive/` is readable (or listable) by group or others.
    @Test func serveMakesItsStateFolderAndEverythingInItOwnerOnly() throws {
        let old = umask(0o022)
        defer { umask(old) }
        let served = try Served()
        let service = served.fixture.service
        let render = Self.send(service, "GET", "photos", "cats/kitten.jpg", query: [("x-oss-process", "image/resize,w_321/format,png")])
        #expect(render.status == 200, "\(render.text)")
        let initiated = Self.send(service, "POST", "photos", "secret/draft.pdf", query: [("uploads", nil)])
        let id = try #require(initiated.values("UploadId").first, "\(initiated.text)")
        let part = Self.send(service, "PUT", "photos", "secret/draft.pdf", query: [("partNumber", "1"), ("uploadId", id)],
                             body: Data(repeating: 7, count: 200_000))
        #expect(part.status == 200, "\(part.text)")
        let state = served.manifest.stateFolder
        // What the finding showed: a cache entry, a part and the metadata database exist.
        let cached = try FileManager.default.subpathsOfDirectory(atPath: state + "/" + StateFiles.serveCache)
        #expect(cached.contains { $0.count > 64 }, "no render was cached: \(cached)")
        #expect(FileManager.default.fileExists(atPath: state + "/" + StateFiles.serveUploads + "/" + id + "/part-00001"))
        #expect(FileManager.default.fileExists(atPath: state + "/" + StateFiles.objectMetadata))
        let exposed = Self.exposed(below: served.folder.appendingPathComponent(".derive").path)
        #expect(exposed.isEmpty, "readable by other users: \(exposed)")
    }

    /// A state folder an earlier serve made world-readable: serve's own folders and files in it
    /// are made owner-only at start (the state folder itself may be the user's, named by
    /// `state:`, and is left as it is).
    @Test func anEarlierServesFilesAreMadeOwnerOnly() throws {
        let old = umask(0o022)
        defer { umask(old) }
        var userFolder = ""
        let served = try Served { folder in
            let state = folder.appendingPathComponent(".derive/derive").path
            userFolder = state
            for name in [StateFiles.serveCache + "/28", StateFiles.serveUploads + "/0123456789ABCDEF0123456789ABCDEF"] {
                try FileManager.default.createDirectory(atPath: state + "/" + name, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o755])
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: state + "/" + StateFiles.serveCache)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: state + "/" + StateFiles.serveUploads)
            try Data("pid 12345\n".utf8).write(to: URL(fileURLWithPath: state + "/" + StateFiles.serveLock))
            chmod(state + "/" + StateFiles.serveLock, 0o644)
        }
        let state = served.manifest.stateFolder
        for name in [StateFiles.serveCache, StateFiles.serveUploads, StateFiles.serveLock, StateFiles.objectMetadata] {
            var info = stat()
            #expect(lstat(state + "/" + name, &info) == 0 && info.st_mode & 0o077 == 0, "\(name) is \(String(info.st_mode & 0o777, radix: 8))")
        }
        // The state folder existed before serve: not Derive's to change.
        var info = stat()
        #expect(stat(userFolder, &info) == 0 && info.st_mode & 0o777 == 0o755)
    }

    /// F2: an anonymous DeleteMultipleObjects had its whole body (up to 8 MiB) read into memory
    /// before any check of the caller, even in a bucket where it may delete nothing. It is now
    /// answered 403 from its head there (OSS's rule: the whole request is refused), and keeps
    /// its body read only where an anonymous caller may delete something, or when signed.
    @Test func anAnonymousDeleteOfManyIsRefusedFromItsHeadWhereNothingIsDeletable() throws {
        let f = try ServiceFixture()
        let body = Data("<Delete><Object><Key>cats/kitten.jpg</Key></Object></Delete>".utf8)
        let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
        func head(_ bucket: String, signed: Bool) -> Step {
            var headers = ["host": "127.0.0.1:9000", "content-md5": md5, "content-length": String(body.count)]
            if signed {
                headers["date"] = ServiceFixture.headerDate
                let stringToSign = OSSSignature.v1StringToSign(method: "POST", contentMD5: md5, contentType: "", dateOrExpires: ServiceFixture.headerDate,
                                                               headers: headers, bucket: bucket, key: "", query: [OSSSignature.Parameter("delete", nil)])
                headers["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
            }
            return f.service.begin(ServiceRequest(method: "POST", target: "/\(bucket)/?delete", headers: headers))
        }
        // Private, and public-read: nothing there is anonymously deletable.
        for bucket in ["photos", "site"] {
            guard case .respond(let response) = head(bucket, signed: false) else {
                Issue.record("an anonymous delete of many in '\(bucket)' waits for its body")
                continue
            }
            #expect(response.status == 403 && response.code == "AccessDenied", "\(bucket): \(response.status) \(response.text)")
        }
        // Public-read-write: the body is needed (each key is checked); signed: likewise.
        if case .needsBody = head("drop", signed: false) {} else { Issue.record("anonymous delete in a public-read-write bucket refused from the head") }
        if case .needsBody = head("photos", signed: true) {} else { Issue.record("a signed delete of many refused from the head") }
        // And the whole request, with its body, deletes nothing.
        let whole = f.service.handle(ServiceRequest(method: "POST", target: "/photos/?delete",
                                                    headers: ["host": "127.0.0.1:9000", "content-md5": md5], body: body))
        #expect(whole.status == 403)
        #expect(f.file("photos/cats/kitten.jpg") != nil)
    }

    /// F2: bodies read into memory share one budget (64 MiB), each taking its Content-Length from
    /// its head until answered; beyond it the request is 503 SlowDown before its body is read.
    @Test func bodiesReadIntoMemoryShareABudget() throws {
        let f = try ServiceFixture()
        let body = Data("<Delete><Object><Key>x</Key></Object></Delete>".utf8)
        let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
        func head() -> Step {
            var headers = ["host": "127.0.0.1:9000", "content-md5": md5, "content-length": String(ObjectService.maxDeleteBody)]
            headers["date"] = ServiceFixture.headerDate
            let stringToSign = OSSSignature.v1StringToSign(method: "POST", contentMD5: md5, contentType: "", dateOrExpires: ServiceFixture.headerDate,
                                                           headers: headers, bucket: "drop", key: "", query: [OSSSignature.Parameter("delete", nil)])
            headers["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
            return f.service.begin(ServiceRequest(method: "POST", target: "/drop/?delete", headers: headers))
        }
        var waiting: [BodyContinuation] = []
        for _ in 0..<(ObjectService.bufferedBodyBudget / ObjectService.maxDeleteBody) {
            guard case .needsBody(_, let next) = head() else { Issue.record("refused within the budget"); return }
            waiting.append(next)
        }
        guard case .respond(let refused) = head() else { Issue.record("a body beyond the budget was to be read"); return }
        #expect(refused.status == 503 && refused.code == "SlowDown", "\(refused.status) \(refused.text)")
        // One answered: its share is back.
        guard case .respond(let answered) = waiting.removeFirst().continue(body) else { Issue.record("no answer"); return }
        #expect(answered.status == 200, "\(answered.text)")
        if case .needsBody = head() {} else { Issue.record("the share of an answered body was not given back") }
    }
}
