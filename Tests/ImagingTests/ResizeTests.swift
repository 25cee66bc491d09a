import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

@Suite(.ownThreads) struct ResizeTests {
    /// The spec's worked example, drawn: a 200×100 source with w_150,h_80 in all five modes.
    @Test(arguments: [("lfit", 150, 75), ("mfit", 160, 80), ("fill", 150, 80), ("pad", 150, 80), ("fixed", 150, 80)])
    func workedExample(_ mode: String, _ w: Int, _ h: Int) throws {
        let (output, raster) = try Fixtures.render(try Fixtures.quadrants(), "image/resize,m_\(mode),w_150,h_80")
        #expect(output.kind == .image(.png))
        #expect(raster.width == w && raster.height == h)
        // The quadrants stay where they were.
        #expect(Fixtures.near(raster.pixel(5, raster.height / 2 - 12), Fixtures.red))
        #expect(Fixtures.near(raster.pixel(raster.width - 6, raster.height - 8), Fixtures.yellow))
    }

    @Test func padFillsWithColour() throws {
        let (_, raster) = try Fixtures.render(try Fixtures.quadrants(), "image/resize,m_pad,w_150,h_80,color_00FF00")
        // 150×75 centred in 150×80: rows 0-1 and 78-79 are padding.
        #expect(raster.pixel(75, 0) == [0, 255, 0])
        #expect(raster.pixel(10, 79) == [0, 255, 0])
        #expect(Fixtures.near(raster.pixel(10, 10), Fixtures.red))
    }

    @Test func fillCropsTheCentre() throws {
        // 200×100 to a 50×50 fill: scaled to 100×50, then the middle 50 columns kept, so the
        // left half of the output is from the red/blue column and the right from green/yellow.
        let (_, raster) = try Fixtures.render(try Fixtures.quadrants(), "image/resize,m_fill,w_50,h_50")
        #expect(raster.width == 50 && raster.height == 50)
        #expect(Fixtures.near(raster.pixel(5, 5), Fixtures.red))
        #expect(Fixtures.near(raster.pixel(45, 5), Fixtures.green))
    }

    @Test func limitPreventsEnlarging() throws {
        let source = try Fixtures.quadrants()
        #expect(try Fixtures.render(source, "image/resize,w_400").1.width == 200)
        let enlarged = try Fixtures.render(source, "image/resize,w_400,limit_0").1
        #expect(enlarged.width == 400 && enlarged.height == 200)
    }

    @Test func percentAndSides() throws {
        let source = try Fixtures.quadrants()
        let half = try Fixtures.render(source, "image/resize,p_50").1
        #expect(half.width == 100 && half.height == 50)
        let long = try Fixtures.render(source, "image/resize,l_120").1
        #expect(long.width == 120 && long.height == 60)
        let short = try Fixtures.render(source, "image/resize,s_40").1
        #expect(short.width == 80 && short.height == 40)
    }

    /// A big JPEG to a thumbnail goes through shrink-on-load and still lands on the exact size
    /// with the right colours.
    @Test func shrinkOnLoadKeepsExactSizes() throws {
        let source = try Fixtures.quadrants(2400, 1600, as: .jpg)
        for (process, w, h) in [("resize,w_200", 200, 133), ("resize,m_fixed,w_333,h_111", 333, 111),
                                ("resize,m_fill,w_120,h_120", 120, 120), ("resize,m_pad,w_120,h_120", 120, 120)] {
            let (output, raster) = try Fixtures.render(source, "image/" + process)
            #expect(output.kind == .image(.jpg))
            #expect(raster.width == w && raster.height == h, "\(process): \(raster.width)x\(raster.height)")
        }
        let (output, raster) = try Fixtures.render(source, "image/resize,w_200")
        // Decoded at 1/4 (600x400: the largest shrink leaving twice the target), never at the full 2400x1600.
        #expect(output.decodedPixels == 600 * 400)
        #expect(try Fixtures.render(source, "image/rotate,90/resize,w_200").0.decodedPixels == 2400 * 1600)
        #expect(try Fixtures.render(source, "image/resize,w_1000").0.decodedPixels == 2400 * 1600)
        #expect(try Fixtures.render(source, "image/resize,w_600").0.decodedPixels == 1200 * 800)
        #expect(Fixtures.near(raster.pixel(10, 10), Fixtures.red, tolerance: 20))
        #expect(Fixtures.near(raster.pixel(190, 120), Fixtures.yellow, tolerance: 20))
    }

    @Test func outputLimitFromFlags() throws {
        let limits = Limits(maxOutputSide: 100)
        #expect { try Fixtures.render(try Fixtures.quadrants(), "image/resize,w_150", limits: limits) } throws: {
            ($0 as? ProcessError)?.ec == "0040-00000007"
        }
    }
}
