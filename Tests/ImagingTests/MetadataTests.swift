import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #9.15 and #9.16: outputs carry no metadata; the engine names its libraries.
@Suite(.ownThreads)
struct MetadataTests {
    /// A GPS-, EXIF-, XMP- and IPTC-tagged JPEG rendered to every output format: exiftool reads
    /// none of them back.
    @Test(.enabled(if: ExternalTool.exiftool != nil, "needs exiftool"))
    func outputsCarryNoMetadata() throws {
        let folder = try ExternalTool.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("tagged.jpg")
        try Fixtures.quadrants(64, 48, as: .jpg).write(to: file)
        try #require(ExternalTool.run(ExternalTool.exiftool!, [
            "-q", "-overwrite_original", "-GPSLatitude=48.8583", "-GPSLatitudeRef=N", "-GPSLongitude=2.2945",
            "-GPSLongitudeRef=E", "-Make=SecretCam", "-Artist=Jane Secret", "-XMP-dc:Creator=Jane Secret",
            "-IPTC:By-line=Jane Secret", "-IPTC:City=Paris", "-Orientation#=1", file.path]) != nil)
        let tagged = try Data(contentsOf: file)
        let check = try #require(ExternalTool.run(ExternalTool.exiftool!, ["-G", "-s", file.path]))
        #expect(check.contains("GPSLatitude") && check.contains("SecretCam"), "the fixture lacks its tags")
        for format in Format.Kind.allCases where format != .gif {
            let output = try Engine().render(tagged, try Pipeline.parse("image/resize,w_32/format,\(format.rawValue)"))
            let out = folder.appendingPathComponent("out.\(format.rawValue)")
            try output.bytes.write(to: out)
            let tags = try #require(ExternalTool.run(ExternalTool.exiftool!, ["-G", "-s", "-a", out.path]), "\(format)")
            // A TIFF's own IFD shows as [EXIF] in exiftool (size, compression): only JPEG, PNG,
            // WebP, HEIC, AVIF and BMP must show no EXIF group at all.
            let secrets = ["GPS", "SecretCam", "Jane Secret", "Paris", "[XMP", "[IPTC", "ICC_Profile", "Artist", "Make"]
                + (format == .tiff ? [] : ["[EXIF"])
            for secret in secrets {
                #expect(!tags.contains(secret), "\(format) output carries \(secret):\n\(tags)")
            }
        }
        // GIF output exists only for GIF sources: tag one with a comment and XMP.
        let gif = folder.appendingPathComponent("tagged.gif")
        try SoundnessTests.animation(frames: 2, side: 20).write(to: gif)
        try #require(ExternalTool.run(ExternalTool.exiftool!, ["-q", "-overwrite_original", "-Comment=Jane Secret",
                                                               "-XMP-dc:Creator=Jane Secret", gif.path]) != nil)
        let output = try Engine().render(try Data(contentsOf: gif), try Pipeline.parse("image/resize,w_10"))
        let out = folder.appendingPathComponent("out.gif")
        try output.bytes.write(to: out)
        let tags = try #require(ExternalTool.run(ExternalTool.exiftool!, ["-G", "-s", "-a", out.path]))
        #expect(!tags.contains("Jane Secret") && !tags.contains("[XMP"), "\(tags)")
    }

    /// Every library that produces bytes is listed with a version, and the engine version
    /// (what fingerprints hash) names each.
    @Test func libraryVersionsAreListed() throws {
        let versions = Engine.libraryVersions
        let names = versions.map(\.name)
        #expect(names.first == "libvips")
        for name in ["libvips", "libjpeg-turbo", "libpng", "libwebp", "lcms2", "libexif", "cgif", "libtiff", "zlib", "libheif"] {
            #expect(names.contains(name), "\(name) missing from \(names)")
        }
        #expect(Set(names).count == names.count)
        for (name, version) in versions {
            #expect(!version.contains(" ") && version.first?.isNumber == true, "\(name): '\(version)'")
            #expect(Engine.version.contains("\(name)/\(version)"))
        }
        #expect(Engine.version.hasPrefix("derive-render/\(Engine.renderVersion) libvips/\(Engine.libvipsVersion)"))
    }
}
