import Access
import Foundation
import Imaging
import Manifest
import ProcessLanguage
import RenderWorkers
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #10, round 10, point 5: an x-oss-process request on a 100 000-frame WebP (a few MB of
/// 1x1 frames, which libvips' header read alone ran to the deadline) is refused naming the frame
/// cap, from the chunk walk in the render worker, well before the deadline; so is a watermark
/// request with such an object as its image.
@Suite(.ownThreads) struct WebPFrameCapServeTests {
    /// One 1x1 lossless frame copied `frames` times into ANMF chunks (VP8X + ANIM first).
    static func animatedWebP(frames: Int) -> Data {
        let vp8l: [UInt8] = [0x56, 0x50, 0x38, 0x4C, 0x0F, 0, 0, 0, 0x2F, 0, 0, 0, 0, 0x07, 0x10, 0xFD,
                             0x8F, 0xFE, 0x07, 0x22, 0xA2, 0xFF, 0x01, 0x00]
        func le(_ n: Int) -> [UInt8] { [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24 & 0xFF)] }
        let frame = Array("ANMF".utf8) + le(40) + [UInt8](repeating: 0, count: 16) + vp8l
        var body = Array("WEBP".utf8) + Array("VP8X".utf8) + le(10) + [0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            + Array("ANIM".utf8) + le(6) + [0, 0, 0, 0, 0, 0]
        body.reserveCapacity(body.count + frame.count * frames)
        for _ in 0..<frames { body += frame }
        return Data(Array("RIFF".utf8) + le(body.count) + body)
    }

    @Test func xOssProcessOnAWebPWithTooManyFramesIsRefusedNamingTheCap() throws {
        let folder = (try ScratchFolder.make("derive-webpcap"))
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try Self.animatedWebP(frames: 100_000).write(to: folder.appendingPathComponent("pub/anim.webp"))
        try Raster(width: 40, height: 30, bands: 3) { _, _ in [200, 10, 10] }.encoded(as: .png)
            .write(to: folder.appendingPathComponent("pub/plain.png"))
        try Data("version: 1\nbuckets:\n  pub:\n    path: pub\n    acl: public-read\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let manifest = try #require(ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path).manifest)
        let pool = try RenderWorkerPool(size: 1)
        defer { pool.shutdown() }
        // A long deadline: the refusal must come from the cap, not from the deadline.
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"),
                                        engine: Engine(limits: Limits(renderSeconds: 60)), renderer: pool,
                                        cacheFolder: folder.appendingPathComponent("cache").path)
        let mark = Base64URL.encode("anim.webp")
        for target in ["/pub/anim.webp?x-oss-process=image%2Fresize%2Cw_10", "/pub/anim.webp?x-oss-process=image%2Finfo",
                       "/pub/anim.webp?x-oss-process=image%2Faverage-hue",
                       "/pub/plain.png?x-oss-process=image%2Fwatermark%2Cimage_\(mark)"] {
            let started = Date()
            let response = service.handle(ServiceRequest(method: "GET", target: target, headers: ["host": "127.0.0.1:9000"]))
            let elapsed = Date().timeIntervalSince(started)
            let text = String(decoding: response.body, as: UTF8.self)
            #expect(response.status == 400, "\(target): \(response.status) \(text)")
            #expect(text.contains("<Code>ImageTooLarge</Code>") && text.contains("100000 frames; the limit is 4096"), "\(target): \(text)")
            #expect(elapsed < 30, "\(target): answered after \(elapsed) s")
        }
    }
}
