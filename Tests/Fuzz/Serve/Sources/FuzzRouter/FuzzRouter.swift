import Access
import Confinement
import DeriveServer
import Foundation
import Imaging
import Manifest

/// The request router without HTTP: `ObjectService.handle` over a small fixture with buckets of
/// every ACL. Input: `METHOD TARGET\nheader: value\n...\n\nbody`. Invariants: the server answers
/// (no crash), never 500 for a request it can judge, never with a file-system path in the answer,
/// and nothing appears outside the bucket folders.
final class Fixture: Sendable {
    let root: String
    let service: ObjectService

    init() {
        root = NSTemporaryDirectory() + "derive-fuzz-router-\(getpid())"
        let fm = FileManager.default
        for folder in ["buckets/priv/cats", "buckets/pubr/secret", "buckets/prw/locked", "state"] {
            try! fm.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        // A 4x4 PNG keeps renders quick.
        let png = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEklEQVR4nGP8z4APMOGVHbHSAEEsAQeN5k8tAAAAAElFTkSuQmCC")!
        for file in ["buckets/priv/cats/a.png", "buckets/pubr/p.png", "buckets/pubr/secret/s.png", "buckets/prw/locked/k.png", "buckets/prw/w.png"] {
            fm.createFile(atPath: root + "/" + file, contents: png)
        }
        let manifest = """
            version: 1
            region: cn-hangzhou
            access_keys: [{id: AKIDEXAMPLE, secret_env: DERIVE_FUZZ_SECRET}]
            buckets:
              priv: {path: buckets/priv, acl: private}
              pubr: {path: buckets/pubr, acl: public-read, objects: [{match: "secret/**", acl: private}], style_delimiters: ["!", "-"]}
              prw: {path: buckets/prw, acl: public-read-write, objects: [{match: "locked/**", acl: private}]}
            styles:
              t: image/resize,w_2
            state: state
            """
        fm.createFile(atPath: root + "/derive.yaml", contents: Data(manifest.utf8))
        let loaded = ManifestLoader().load(root + "/derive.yaml").manifest!
        var limits = Limits()
        limits.maxOutputSide = 64
        service = try! ObjectService(manifest: loaded, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"),
                                     engine: Engine(limits: limits), cacheFolder: root + "/state/serve-cache", maxBodyBytes: 4096,
                                     clock: { 1_700_000_000 })
    }

    static let shared = Fixture()

    /// Everything directly in the fixture folder that is not ours: a write that escaped.
    func strayEntries() -> [String] {
        let known: Set<String> = ["buckets", "state", "derive.yaml"]
        let top = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { !known.contains($0) }
        let buckets = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/buckets")) ?? []).filter { !["priv", "pubr", "prw"].contains($0) }
        return top + buckets
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRouter(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fixture = Fixture.shared
    let input = Data(UnsafeBufferPointer(start: data, count: size))
    let split = input.range(of: Data("\n\n".utf8))
    let head = String(decoding: split.map { input[..<$0.lowerBound] } ?? input, as: UTF8.self)
    let body = split.map { Data(input[$0.upperBound...]) } ?? Data()
    var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let requestLine = lines.isEmpty ? "" : lines.removeFirst()
    let parts = requestLine.split(separator: " ", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { return 0 }
    var headers: [String: String] = [:]
    for line in lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
    }
    let response = fixture.service.handle(ServiceRequest(method: parts[0], target: parts[1], headers: headers, body: body))
    precondition((200...599).contains(response.status))
    precondition(response.status != 500, "500 for \(requestLine.debugDescription): \(String(decoding: response.body, as: UTF8.self))")
    // A listing echoes its prefix and marker: a path the request itself sent is not a leak.
    let asked = String(decoding: input, as: UTF8.self).contains(fixture.root)
        || (parts[1].removingPercentEncoding ?? "").contains(fixture.root)
    precondition(asked || !String(decoding: response.body, as: UTF8.self).contains(fixture.root), "a path leaked")
    let stray = fixture.strayEntries()
    precondition(stray.isEmpty, "written outside the buckets: \(stray) by \(requestLine.debugDescription)")
    return 0
}
