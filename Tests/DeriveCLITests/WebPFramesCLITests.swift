import Foundation
import Testing
import TestSupport

/// Issue #10, report 8, F1/F2: `derive info` read every frame of a 100 000-frame WebP in-process
/// with no deadline; `derive process` held a worker to the deadline. The frame cap refuses both.
@Suite(.ownThreads) struct WebPFramesCLITests {
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

    @Test(arguments: [5000, 100_000])
    func infoAndProcessRefuseTooManyFrames(frames: Int) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("anim.webp")
        try Self.animatedWebP(frames: frames).write(to: file)
        for arguments in [["info", file.path], ["process", file.path, "image/resize,w_10"],
                          ["process", file.path, "image/average-hue"]] {
            let result = try CLI.run(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("\(frames) frames; the limit is 4096"), "\(arguments): \(result.stderr)")
        }
    }
}
