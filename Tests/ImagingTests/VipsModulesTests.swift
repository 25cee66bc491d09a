import Foundation
import Imaging
import Testing
import TestSupport

/// The engine loads the libvips modules it uses (heif for HEIC and AVIF, magick for BMP) and
/// none of the others libvips installs beside them (jxl, openslide, poppler: formats Derive never
/// admits, whose loading was a fifth of a one-image render's process time).
@Suite(.ownThreads) struct VipsModulesTests {
    static let moduleFolder = "/usr/lib/x86_64-linux-gnu/vips-modules-\(Engine.libvipsVersion.split(separator: ".").prefix(2).joined(separator: "."))"

    @Test func onlyTheModulesDeriveUsesAreLoaded() throws {
        _ = try Engine.vectorised()   // starts libvips in this process
        // Read to its end by descriptor (a /proc file's size is 0, and a sized read got only its start).
        let maps = String(decoding: try #require(try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd()), as: UTF8.self).split(separator: "\n")
            .filter { $0.contains("vips") }.map { String($0.split(separator: " ").last ?? "") }.joined(separator: "\n")
        for used in ["heif", "magick"] {
            let path = Self.moduleFolder + "/vips-\(used).so"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            #expect(maps.contains(path), "\(path) is not loaded")
        }
        var unused = 0
        for other in ["jxl", "openslide", "poppler"] {
            let path = Self.moduleFolder + "/vips-\(other).so"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            unused += 1
            #expect(!maps.contains(path), "\(path) is loaded")
        }
        if unused == 0 { print("VipsModulesTests: no unused libvips module is installed here; nothing to check") }
    }
}
