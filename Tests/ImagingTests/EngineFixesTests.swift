import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #10 points 7-10.
@Suite(.ownThreads)
struct EngineFixesTests {
    /// Point 7: a 1x29000 PNG renders; the output side cap applies to resize results (and WebP).
    @Test func tallThinImageRenders() throws {
        let tall = try SoundnessTests.flat(1, 29000, [10, 200, 30], as: .png)
        for process in ["image/format,png", "image/bright,10", "image/crop,w_1", "image/quality,q_90/format,jpg"] {
            let output = try Engine().render(tall, try Pipeline.parse(process))
            #expect(output.width == 1 && output.height == 29000, "\(process)")
        }
        // limit_1: w_200 would enlarge, so the image comes back unchanged.
        let resized = try Engine().render(tall, try Pipeline.parse("image/resize,w_200"))
        #expect(resized.width == 1 && resized.height == 29000)
        // WebP cannot hold 29000 px a side; a resize result over 16384 is still refused.
        #expect { try Engine().render(tall, try Pipeline.parse("image/format,webp")) } throws: { ($0 as? ProcessError)?.ec == "0040-00000007" }
        #expect { try Engine().render(tall, try Pipeline.parse("image/resize,w_2,limit_0")) } throws: {
            ($0 as? ProcessError)?.ec == "0040-00000007"
        }
    }

    /// Point 8: EXIF values whose text holds parentheses keep their whole raw value.
    @Test(.enabled(if: ExternalTool.exiftool != nil, "needs exiftool"))
    func infoKeepsWholeExifValues() throws {
        let folder = try ExternalTool.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("photo.jpg")
        try Fixtures.quadrants(64, 48, as: .jpg).write(to: file)
        try #require(ExternalTool.run(ExternalTool.exiftool!, ["-q", "-overwrite_original", "-ApertureValue=2.4", "-FNumber=2.4",
                                                               "-Make=Brand (Test) Co", file.path]) != nil)
        let info = String(decoding: try Engine().info(try Data(contentsOf: file)).bytes, as: UTF8.self)
        #expect(info.contains("\"ApertureValue\": {\"value\": \"") && !info.contains("(2.52 EV"), "\(info)")
        let aperture = info.range(of: #""ApertureValue": \{"value": "[^"]*""#, options: .regularExpression).map { String(info[$0]) } ?? ""
        #expect(!aperture.contains("("), "\(aperture)")
        #expect(aperture.contains("/"), "\(aperture)")
        #expect(info.contains("\"Make\": {\"value\": \"Brand (Test) Co\"}"), "\(info)")
    }

    /// Point 9: watermark text with nothing to draw is a parameter error (400), not a 500.
    @Test(arguments: [" ", "\u{0}", "\t", "\u{200B}", "  \u{200B}\t", "\u{FEFF}"])
    func blankWatermarkTextIsInvalid(_ text: String) throws {
        #expect { try Pipeline.parse("image/watermark,text_" + Base64URL.encode(text)) } throws: {
            let error = $0 as? ProcessError
            return error?.code == .invalidArgument && error?.ec == "0040-00000257" && error?.httpStatus == 400
        }
        // Text with something visible still works.
        _ = try Pipeline.parse("image/watermark,text_" + Base64URL.encode(" a "))
    }

    /// Text that passes the parser but draws nothing (U+2800, found by the attack) is 400, not a 500.
    @Test func textThatDrawsNothingIsInvalidNotInternal() throws {
        let gif = try SoundnessTests.animation(frames: 1, side: 20)
        let pipeline = try Pipeline.parse("image/watermark,text_" + Base64URL.encode("\u{2800}"))
        #expect { try Engine().render(gif, pipeline) } throws: {
            let error = $0 as? ProcessError
            return error?.code == .invalidArgument && error?.ec == "0040-00000257" && error?.httpStatus == 400
        }
    }

    /// Point 10: the GIF rounded-corners message no longer suggests a chain that is refused too.
    @Test func roundedCornersOnGIFSaysWhatWorks() throws {
        let gif = try SoundnessTests.animation(frames: 2, side: 20)
        for process in ["image/rounded-corners,r_5", "image/format,png/rounded-corners,r_5"] {
            #expect { try Engine().render(gif, try Pipeline.parse(process)) } throws: {
                let message = ($0 as? ProcessError)?.message ?? ""
                return message.contains("whatever the output format") && !message.contains("convert first with format,png")
            }
        }
    }

    /// Point 10: the format error lists all eight output formats.
    @Test func formatErrorListsEveryFormat() throws {
        #expect { try Pipeline.parse("image/format,dng") } throws: { error in
            let message = (error as? ProcessError)?.description ?? ""
            return Format.Kind.allCases.allSatisfy { message.contains($0.rawValue) }
        }
    }

    /// Point 10: actions run left to right, so average-hue answers for the image before a later resize.
    @Test func averageHueReadsTheImageWhereItStands() throws {
        // Left half red, right half blue: a 1-px-wide crop after average-hue must not count.
        let source = try Raster(width: 100, height: 10, bands: 3) { x, _ in x < 50 ? [255, 0, 0] : [0, 0, 255] }.encoded(as: .png)
        let whole = try Engine().render(source, try Pipeline.parse("image/average-hue"))
        let followed = try Engine().render(source, try Pipeline.parse("image/average-hue/crop,w_1,h_1"))
        #expect(whole.bytes == followed.bytes)
        let cropped = try Engine().render(source, try Pipeline.parse("image/crop,w_1,h_1/average-hue"))
        #expect(String(decoding: cropped.bytes, as: UTF8.self) == "{\"RGB\": \"0xff0000\"}")
    }

    /// Point 10: limit_1 keeps pad from enlarging its canvas, as it keeps fixed from enlarging.
    @Test func limitStopsPadEnlarging() throws {
        let source = try Fixtures.quadrants(200, 100)
        for process in ["image/resize,m_pad,w_400,h_50", "image/resize,m_fixed,w_400,h_50", "image/resize,m_pad,w_300,h_300"] {
            let output = try Engine().render(source, try Pipeline.parse(process))
            #expect(output.width == 200 && output.height == 100, "\(process): \(output.width)x\(output.height)")
        }
        let padded = try Engine().render(source, try Pipeline.parse("image/resize,m_pad,w_400,h_50,limit_0"))
        #expect(padded.width == 400 && padded.height == 50)
    }
}

/// Point 10: a symbolic link inside the bucket folder is never followed (out of it or at all).
@Suite(.ownThreads)
struct WatermarkConfinementTests {
    @Test func symlinksInsideTheBucketAreNotFollowed() throws {
        let outside = try ExternalTool.temporaryFolder()
        let bucket = try ExternalTool.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outside); try? FileManager.default.removeItem(at: bucket) }
        let mark = try Fixtures.solid(8, 8, [255, 0, 0])
        try mark.write(to: outside.appendingPathComponent("secret.png"))
        try mark.write(to: bucket.appendingPathComponent("red.png"))
        try FileManager.default.createSymbolicLink(at: bucket.appendingPathComponent("link.png"),
                                                   withDestinationURL: outside.appendingPathComponent("secret.png"))
        try FileManager.default.createSymbolicLink(at: bucket.appendingPathComponent("escape"), withDestinationURL: outside)
        let resolver = FolderResolver(root: bucket.path)
        let white = try Fixtures.solid(40, 40, [255, 255, 255])
        func render(_ key: String) throws -> RenderOutput {
            try Engine().render(white, try Pipeline.parse("image/watermark,image_" + Base64URL.encode(key)), resolver: resolver)
        }
        #expect(try render("red.png").width == 40)
        for key in ["link.png", "escape/secret.png"] {
            #expect(throws: ProcessError.self, "\(key)") { try render(key) }
            #expect((try? render(key)) == nil)
        }
        #expect { try resolver.object("link.png") } throws: { ($0 as? ProcessError)?.message.contains("symbolic link") == true }
    }
}
