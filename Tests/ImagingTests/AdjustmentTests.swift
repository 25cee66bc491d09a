import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

@Suite(.ownThreads) struct AdjustmentTests {
    static let grey: [UInt8] = [100, 100, 100]

    @Test(arguments: [(50, 228), (-20, 49), (0, 100), (100, 255), (-100, 0)])
    func bright(_ value: Int, _ expected: Int) throws {
        let raster = try Fixtures.render(try Fixtures.solid(16, 16, Self.grey), "image/bright,\(value)").1
        #expect(abs(Int(raster.pixel(8, 8)[0]) - expected) <= 1, "bright,\(value): \(raster.pixel(8, 8))")
    }

    @Test func brightLeavesAlphaAlone() throws {
        let raster = try Fixtures.render(try Fixtures.solid(8, 8, [100, 100, 100, 128]), "image/bright,50").1
        #expect(raster.pixel(4, 4) == [228, 228, 228, 128])
    }

    @Test(arguments: [(-100, 128, 128), (0, 60, 200), (50, 0, 255), (-50, 94, 164)])
    func contrast(_ value: Int, _ dark: Int, _ light: Int) throws {
        let source = try Raster(width: 16, height: 8, bands: 3) { x, _ in x < 8 ? [60, 60, 60] : [200, 200, 200] }.encoded(as: .png)
        let raster = try Fixtures.render(source, "image/contrast,\(value)").1
        #expect(abs(Int(raster.pixel(2, 4)[0]) - dark) <= 1, "contrast,\(value) dark: \(raster.pixel(2, 4))")
        #expect(abs(Int(raster.pixel(13, 4)[0]) - light) <= 1, "contrast,\(value) light: \(raster.pixel(13, 4))")
    }

    /// Blur spreads a sharp edge; the wider `s`, the further.
    @Test func blur() throws {
        let source = try Raster(width: 64, height: 8, bands: 3) { x, _ in x < 32 ? [0, 0, 0] : [255, 255, 255] }.encoded(as: .png)
        let soft = try Fixtures.render(source, "image/blur,r_10,s_2").1
        let softer = try Fixtures.render(source, "image/blur,r_20,s_8").1
        let edge = Int(soft.pixel(30, 4)[0])
        #expect(edge > 10 && edge < 128)
        #expect(Int(softer.pixel(26, 4)[0]) > Int(soft.pixel(26, 4)[0]))
        #expect(soft.pixel(2, 4)[0] == 0 && soft.pixel(61, 4)[0] == 255)
    }

    /// Sharpen steepens an edge: the dark side gets darker next to the light side.
    @Test func sharpen() throws {
        let source = try Raster(width: 64, height: 8, bands: 3) { x, _ in x < 32 ? [90, 90, 90] : [160, 160, 160] }.encoded(as: .png)
        let blurred = try Engine().render(source, try Pipeline.parse("image/blur,r_4,s_2")).bytes
        let before = try Raster.decode(blurred)
        let after = try Fixtures.render(blurred, "image/sharpen,300").1
        let contrastBefore = Int(before.pixel(33, 4)[0]) - Int(before.pixel(30, 4)[0])
        let contrastAfter = Int(after.pixel(33, 4)[0]) - Int(after.pixel(30, 4)[0])
        #expect(contrastAfter > contrastBefore, "\(contrastBefore) → \(contrastAfter)")
        #expect(abs(Int(after.pixel(2, 4)[0]) - 90) <= 2)
    }
}

@Suite(.ownThreads) struct AnswerTests {
    @Test func infoIsSortedJSONOfStrings() throws {
        let source = try Fixtures.quadrants(200, 100, as: .png)
        let output = try Engine().info(source)
        #expect(output.kind == .json && output.contentType == "application/json")
        let text = String(decoding: output.bytes, as: UTF8.self)
        #expect(text == "{\"FileSize\": {\"value\": \"\(source.count)\"}, \"Format\": {\"value\": \"png\"}, \"FrameCount\": {\"value\": \"1\"}, \"ImageHeight\": {\"value\": \"100\"}, \"ImageWidth\": {\"value\": \"200\"}}")
    }

    @Test func infoCarriesEXIF() throws {
        let output = try Fixtures.render(try Fixtures.sample("orientation-7.jpg"), "image/info").0
        let object = try JSONSerialization.jsonObject(with: output.bytes) as? [String: [String: String]]
        #expect(object?["Orientation"]?["value"] == "7")
        #expect(object?["ImageWidth"]?["value"] == "200")
        #expect(object?["Format"]?["value"] == "jpg")
    }

    @Test func infoOfAnimation() throws {
        let output = try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/info").0
        let object = try JSONSerialization.jsonObject(with: output.bytes) as? [String: [String: String]]
        #expect(object?["FrameCount"]?["value"] == "8")
        #expect(object?["ImageHeight"]?["value"] == "120")
    }

    /// A blue field with a red patch: the mean hue is blue, the salient pixels are red.
    @Test func averageHue() throws {
        let source = try Raster(width: 40, height: 40, bands: 3) { x, y in x < 10 && y < 10 ? [220, 30, 30] : [20, 40, 200] }.encoded(as: .png)
        let output = try Fixtures.render(source, "image/average-hue").0
        #expect(output.kind == .json)
        #expect(String(decoding: output.bytes, as: UTF8.self) == "{\"RGB\": \"0xdc1e1e\"}")
        let plain = try Fixtures.render(try Fixtures.solid(20, 20, [0x5c, 0x78, 0x3b]), "image/average-hue").0
        #expect(String(decoding: plain.bytes, as: UTF8.self) == "{\"RGB\": \"0x5c783b\"}")
        // It sees the image as processed by the actions before it.
        let cropped = try Fixtures.render(source, "image/crop,x_20,y_20/average-hue").0
        #expect(String(decoding: cropped.bytes, as: UTF8.self) == "{\"RGB\": \"0x1428c8\"}")
    }
}

@Suite(.ownThreads) struct SafetyTests {
    @Test func limitsAreCheckedFromTheHeader() throws {
        let source = try Fixtures.solid(300, 200, Fixtures.red)
        #expect { try Fixtures.render(source, "image/resize,w_10", limits: Limits(maxBytes: 100)) } throws: {
            ($0 as? ProcessError)?.code == .imageTooLarge
        }
        #expect { try Fixtures.render(source, "image/resize,w_10", limits: Limits(maxSide: 250)) } throws: {
            ($0 as? ProcessError)?.ec == "0040-00000009"
        }
        #expect { try Fixtures.render(source, "image/rotate,90", limits: Limits(maxPixels: 50_000)) } throws: {
            ($0 as? ProcessError)?.ec == "0040-00000012"
        }
        // Frames count: 8 frames of 160×120 = 153 600 pixels.
        #expect { try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/resize,w_10", limits: Limits(maxPixels: 150_000)) } throws: {
            ($0 as? ProcessError)?.code == .imageTooLarge
        }
        #expect(try Fixtures.render(source, "image/resize,w_10", limits: Limits(maxSide: 300)).1.width == 10)
    }

    @Test func brokenInputsAreCleanErrors() throws {
        let jpeg = try Fixtures.quadrants(400, 300, as: .jpg)
        let png = try Fixtures.quadrants(400, 300, as: .png)
        let cases: [(String, Data)] = [
            ("empty", Data()),
            ("text", Data("this is not an image".utf8)),
            ("one byte", Data([0xFF])),
            ("truncated jpeg", jpeg.prefix(jpeg.count / 2)),
            ("truncated png", png.prefix(png.count / 2)),
            ("svg", Data("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>".utf8)),
        ]
        for (name, data) in cases {
            for process in ["image/resize,w_100", "image/rotate,90", "image/format,png"] {
                #expect(throws: ProcessError.self, "\(name) \(process)") { try Engine().render(data, try Pipeline.parse(process)) }
            }
        }
    }

    /// The same source and pipeline give the same bytes.
    @Test(arguments: ["jpg", "png", "webp", "gif", "tiff", "avif", "heic", "bmp"])
    func deterministic(_ format: String) throws {
        let source = try Fixtures.sample("landscape.jpg")
        let process = "image/resize,m_fill,w_160,h_120/rotate,30/format,\(format)"
        let first = try Fixtures.render(source, process).0.bytes
        let second = try Fixtures.render(source, process).0.bytes
        #expect(first == second)
        let animated = "image/resize,w_80/format,\(format)"
        #expect(try Fixtures.render(try Fixtures.sample("spinner.gif"), animated).0.bytes
            == Fixtures.render(try Fixtures.sample("spinner.gif"), animated).0.bytes)
    }
}

@Suite(.ownThreads) struct ConcurrencyTests {
    /// liborc crashed concurrent renders on this platform; it stays off.
    @Test func vectorisationIsOff() throws {
        #expect(try Engine.vectorised() == false)
    }

    /// Many renders on several threads at once give the same bytes as one at a time.
    @Test func parallelRendersAgree() throws {
        let source = try Fixtures.sample("landscape.jpg")
        let pipelines = try ["image/resize,w_97/sharpen,120", "image/resize,m_fill,w_64,h_64/blur,r_3,s_2", "image/rotate,33/format,png"]
            .map { try Pipeline.parse($0) }
        let expected = try pipelines.map { try Engine().render(source, $0).bytes }
        let results = ParallelResults()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for round in 0..<15 {
                let index = (worker + round) % pipelines.count
                let bytes = try? Engine().render(source, pipelines[index]).bytes
                results.add(bytes == expected[index])
            }
        }
        #expect(results.all == Array(repeating: true, count: 60))
    }
}

final class ParallelResults: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Bool] = []
    func add(_ value: Bool) { lock.withLock { values.append(value) } }
    var all: [Bool] { lock.withLock { values } }
}
