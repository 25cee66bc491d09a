import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

@Suite(.ownThreads) struct CropTests {
    /// 50×50 crops of the quadrant image at each anchor land on the expected colour.
    @Test(arguments: [("nw", Fixtures.red), ("ne", Fixtures.green), ("sw", Fixtures.blue), ("se", Fixtures.yellow)])
    func anchors(_ g: String, _ colour: [UInt8]) throws {
        let (_, raster) = try Fixtures.render(try Fixtures.quadrants(), "image/crop,w_50,h_50,g_\(g)")
        #expect(raster.width == 50 && raster.height == 50)
        #expect(raster.pixel(0, 0) == colour && raster.pixel(49, 49) == colour)
    }

    @Test func centreAnchorStraddlesAllFour() throws {
        let (_, raster) = try Fixtures.render(try Fixtures.quadrants(), "image/crop,w_40,h_40,g_center")
        #expect(raster.pixel(0, 0) == Fixtures.red && raster.pixel(39, 0) == Fixtures.green)
        #expect(raster.pixel(0, 39) == Fixtures.blue && raster.pixel(39, 39) == Fixtures.yellow)
    }

    @Test func offsetsAndClipping() throws {
        let (_, raster) = try Fixtures.render(try Fixtures.quadrants(), "image/crop,x_150,y_20,w_500,h_500")
        #expect(raster.width == 50 && raster.height == 80)
        #expect(raster.pixel(0, 0) == Fixtures.green && raster.pixel(0, 79) == Fixtures.yellow)
        let unknownKey = try Fixtures.render(try Fixtures.quadrants(), "image/crop,w_100,h_50,x_100,y_50,r_1").1
        #expect(unknownKey.width == 100 && unknownKey.height == 50 && unknownKey.pixel(0, 0) == Fixtures.yellow)
    }

    @Test func startOutsideIsBadRequest() throws {
        #expect { try Fixtures.render(try Fixtures.quadrants(), "image/crop,x_200,w_10") } throws: {
            let error = $0 as? ProcessError
            return error?.code == .badRequest && error?.message.contains("out of image") == true
        }
    }

    @Test func indexcrop() throws {
        let source = try Fixtures.quadrants()
        let second = try Fixtures.render(source, "image/indexcrop,x_60,i_2").1
        #expect(second.width == 60 && second.height == 100 && second.pixel(0, 0) == Fixtures.green)
        let last = try Fixtures.render(source, "image/indexcrop,x_60,i_3").1
        #expect(last.width == 20)
        let beyond = try Fixtures.render(source, "image/indexcrop,x_60,i_4").1
        #expect(beyond.width == 200 && beyond.height == 100)
        let rows = try Fixtures.render(source, "image/indexcrop,y_50,i_1").1
        #expect(rows.width == 200 && rows.height == 50 && rows.pixel(0, 0) == Fixtures.blue)
    }
}

@Suite(.ownThreads) struct ShapeTests {
    @Test func circleIsTransparentOutsideForPNG() throws {
        let (_, raster) = try Fixtures.render(try Fixtures.solid(200, 100, Fixtures.blue), "image/circle,r_40")
        #expect(raster.width == 81 && raster.height == 81 && raster.bands == 4)
        #expect(raster.pixel(0, 0)[3] == 0)
        #expect(raster.pixel(40, 40) == [0, 0, 255, 255])
        #expect(raster.pixel(40, 1)[3] == 255)
    }

    @Test func circleIsWhiteOutsideForJPEG() throws {
        let (output, raster) = try Fixtures.render(try Fixtures.solid(200, 100, Fixtures.blue, as: .jpg), "image/circle,r_40")
        #expect(output.kind == .image(.jpg) && raster.bands == 3)
        #expect(Fixtures.near(raster.pixel(1, 1), [255, 255, 255], tolerance: 6))
        #expect(Fixtures.near(raster.pixel(40, 40), Fixtures.blue, tolerance: 12))
    }

    @Test func circleRadiusIsCapped() throws {
        let raster = try Fixtures.render(try Fixtures.solid(200, 100, Fixtures.blue), "image/circle,r_400").1
        #expect(raster.width == 99 && raster.height == 99)
    }

    @Test func roundedCorners() throws {
        let (_, raster) = try Fixtures.render(try Fixtures.solid(200, 100, Fixtures.green), "image/rounded-corners,r_30")
        #expect(raster.width == 200 && raster.height == 100 && raster.bands == 4)
        for (x, y) in [(0, 0), (199, 0), (0, 99), (199, 99), (3, 3)] { #expect(raster.pixel(x, y)[3] == 0, "\(x),\(y)") }
        for (x, y) in [(100, 0), (0, 50), (30, 30), (100, 50)] { #expect(raster.pixel(x, y)[3] == 255, "\(x),\(y)") }
        let jpeg = try Fixtures.render(try Fixtures.solid(200, 100, Fixtures.green, as: .jpg), "image/rounded-corners,r_30").1
        #expect(Fixtures.near(jpeg.pixel(0, 0), [255, 255, 255], tolerance: 6))
    }

    @Test func roundedCornersOnGIFIsRefused() throws {
        #expect { try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/rounded-corners,r_10") } throws: {
            ($0 as? ProcessError)?.code == .badRequest
        }
    }
}

@Suite(.ownThreads) struct RotateTests {
    @Test func quarterTurnIsClockwise() throws {
        let raster = try Fixtures.render(try Fixtures.quadrants(), "image/rotate,90").1
        #expect(raster.width == 100 && raster.height == 200)
        // Clockwise: the top-left (red) goes to the top-right, bottom-left (blue) to the top-left.
        #expect(raster.pixel(99, 0) == Fixtures.red)
        #expect(raster.pixel(0, 0) == Fixtures.blue)
        #expect(raster.pixel(0, 199) == Fixtures.yellow)
        let half = try Fixtures.render(try Fixtures.quadrants(), "image/rotate,180").1
        #expect(half.pixel(0, 0) == Fixtures.yellow)
    }

    @Test func anyAngleGrowsTheCanvas() throws {
        let (_, png) = try Fixtures.render(try Fixtures.solid(100, 100, Fixtures.red), "image/rotate,45")
        #expect(abs(png.width - 142) <= 2 && abs(png.height - 142) <= 2)
        #expect(png.bands == 4 && png.pixel(0, 0)[3] == 0)
        #expect(Fixtures.near(png.pixel(png.width / 2, png.height / 2), [255, 0, 0, 255], tolerance: 2))
        let (_, jpg) = try Fixtures.render(try Fixtures.solid(100, 100, Fixtures.red, as: .jpg), "image/rotate,45")
        #expect(Fixtures.near(jpg.pixel(1, 1), [255, 255, 255], tolerance: 6))
        // A clockwise turn: the top-left corner of the source ends at the top middle.
        let (_, turned) = try Fixtures.render(try Fixtures.quadrants(100, 100), "image/rotate,30")
        let top = (0..<turned.width).first { turned.pixel($0, 2)[3] > 200 } ?? 0
        #expect(Fixtures.near(turned.pixel(top + 1, 3), [255, 0, 0, 255], tolerance: 40))
    }

    @Test func sourceOver4096IsRefused() throws {
        let source = try Fixtures.solid(4100, 8, Fixtures.red)
        #expect { try Fixtures.render(source, "image/rotate,90") } throws: { ($0 as? ProcessError)?.ec == "0040-00000006" }
        #expect(try Fixtures.render(source, "image/resize,w_1000/rotate,90").1.height == 1000)
    }
}
