import Foundation
import Testing
import TestSupport

/// Attack 30's finding 6: the render worker inherited `VIPSHOME`, so a value left from another
/// libvips install made libvips load none of its modules, and every AVIF or HEIC output failed
/// with an error blaming the source ("corrupt or truncated"). The worker's libvips is the one it
/// was built with: `VIPSHOME` is not passed on to it.
@Suite(.ownThreads) struct VipsHomeRound30Tests {
    @Test func aVipsHomeFromAnotherInstallChangesNothing() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let other = folder.appendingPathComponent("other-prefix")
        try FileManager.default.createDirectory(at: other.appendingPathComponent("lib"), withIntermediateDirectories: true)
        let source = CLI.samples.appendingPathComponent("landscape.jpg").path
        let plain = folder.appendingPathComponent("plain.avif").path, homed = folder.appendingPathComponent("homed.avif").path
        let cache = ["DERIVE_ENGINE_CACHE": folder.appendingPathComponent("engine-cache").path]

        let first = try CLI.run(["process", source, "resize,w_50/format,avif", "-o", plain], environment: cache)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try CLI.run(["process", source, "resize,w_50/format,avif", "-o", homed],
                                 environment: cache.merging(["VIPSHOME": other.path]) { $1 })
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!second.stderr.contains("corrupt"), "\(second.stderr)")
        #expect(FileManager.default.contents(atPath: homed) == FileManager.default.contents(atPath: plain))
    }
}
