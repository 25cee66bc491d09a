import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

@Suite(.ownThreads) struct OrientationTests {
    /// Samples/orientation-N.jpg store the same 300×200 picture (red square top-left) under
    /// each EXIF orientation; every one must come out upright.
    @Test(arguments: 1...8)
    func samplesComeOutUpright(_ n: Int) throws {
        let source = try Fixtures.sample("orientation-\(n).jpg")
        for process in ["image/format,png", "image/resize,w_150/format,png", "image/auto-orient,1/crop,w_300,h_200"] {
            let (_, raster) = try Fixtures.render(source, process)
            let scale = raster.width == 150 ? 2 : 1
            #expect(raster.width == 300 / scale && raster.height == 200 / scale, "\(n) \(process): \(raster.width)x\(raster.height)")
            #expect(Fixtures.near(raster.pixel(10 / scale, 10 / scale), [214, 40, 40], tolerance: 24), "\(n) \(process)")
            #expect(!Fixtures.near(raster.pixel(raster.width - 10 / scale, 10 / scale), [214, 40, 40], tolerance: 60), "\(n) \(process)")
        }
    }

    @Test func autoOrientZeroKeepsStoredPixels() throws {
        let source = try Fixtures.sample("orientation-6.jpg")
        let stored = try Fixtures.render(source, "image/auto-orient,0/format,png").1
        #expect(stored.width == 200 && stored.height == 300)
        // The position of auto-orient in the chain does not matter: it decides the decoding.
        let late = try Fixtures.render(source, "image/resize,w_100/auto-orient,0").1
        #expect(late.width == 100 && late.height == 150)
    }
}
