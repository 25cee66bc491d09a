import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Watermarks drawn on a white 200×100 image, with marks read from a temporary bucket folder.
@Suite(.ownThreads) struct WatermarkTests {
    let bucket: URL
    let white: Data

    init() throws {
        bucket = FileManager.default.temporaryDirectory.appendingPathComponent("derive-wm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: bucket, withIntermediateDirectories: true)
        white = try Fixtures.solid(200, 100, [255, 255, 255])
        try Fixtures.solid(20, 10, [255, 0, 0]).write(to: bucket.appendingPathComponent("red.png"))
        try Fixtures.solid(100, 100, [0, 0, 255]).write(to: bucket.appendingPathComponent("blue.png"))
        try Fixtures.sample("spinner.gif").write(to: bucket.appendingPathComponent("anim.gif"))
    }

    func render(_ process: String, on source: Data? = nil) throws -> Raster {
        let output = try Engine().render(source ?? white, try Pipeline.parse(process), resolver: FolderResolver(root: bucket.path))
        return try Raster.decode(output.bytes)
    }

    func b64(_ text: String) -> String { Base64URL.encode(text) }

    /// The bounding box and count of pixels that are not white.
    func ink(_ raster: Raster, isInk: ([UInt8]) -> Bool = { $0.prefix(3).contains { $0 < 200 } })
        -> (minX: Int, minY: Int, maxX: Int, maxY: Int, count: Int) {
        var box = (minX: Int.max, minY: Int.max, maxX: -1, maxY: -1, count: 0)
        for y in 0..<raster.height {
            for x in 0..<raster.width where isInk(raster.pixel(x, y)) {
                box.minX = min(box.minX, x); box.minY = min(box.minY, y)
                box.maxX = max(box.maxX, x); box.maxY = max(box.maxY, y); box.count += 1
            }
        }
        return box
    }

    static func isRed(_ pixel: [UInt8]) -> Bool { pixel[0] > 200 && pixel[1] < 60 && pixel[2] < 60 }

    /// A 20×10 mark with 10 px margins lands in its rectangle and nowhere else.
    @Test(arguments: [("nw", 10, 10), ("north", 90, 10), ("ne", 170, 10), ("west", 10, 45), ("center", 90, 45),
                      ("east", 170, 45), ("sw", 10, 80), ("south", 90, 80), ("se", 170, 80)])
    func anchors(_ g: String, _ x: Int, _ y: Int) throws {
        let raster = try render("image/format,png/watermark,image_\(b64("red.png")),g_\(g)")
        let box = ink(raster, isInk: Self.isRed)
        #expect(box.minX == x && box.minY == y && box.maxX == x + 19 && box.maxY == y + 9, "\(g): \(box)")
        #expect(box.count == 200)
    }

    @Test func defaultsAreSouthEastWithTenPixelMargins() throws {
        let box = ink(try render("image/format,png/watermark,image_\(b64("red.png"))"), isInk: Self.isRed)
        #expect(box.minX == 170 && box.minY == 80)
    }

    @Test func marginsAndVoffset() throws {
        let shifted = ink(try render("image/format,png/watermark,image_\(b64("red.png")),g_nw,x_30,y_5"), isInk: Self.isRed)
        #expect(shifted.minX == 30 && shifted.minY == 5)
        let up = ink(try render("image/format,png/watermark,image_\(b64("red.png")),g_east,voffset_20"), isInk: Self.isRed)
        #expect(up.minX == 170 && up.minY == 25)
        let down = ink(try render("image/format,png/watermark,image_\(b64("red.png")),g_center,voffset_-30"), isInk: Self.isRed)
        #expect(down.minY == 75)
    }

    @Test func opacityBlends() throws {
        let raster = try render("image/format,png/watermark,image_\(b64("red.png")),g_nw,t_50")
        let pixel = raster.pixel(15, 15)
        #expect(abs(Int(pixel[0]) - 255) <= 1 && abs(Int(pixel[1]) - 128) <= 2 && abs(Int(pixel[2]) - 128) <= 2, "\(pixel)")
        let invisible = try render("image/format,png/watermark,image_\(b64("red.png")),g_nw,t_0")
        #expect(invisible.pixel(15, 15) == [255, 255, 255])
    }

    /// Tiles of 20×10 with 10 px gaps: a grid with a cell at the anchor, covering the image.
    @Test func tilingCoversWithGaps() throws {
        let raster = try render("image/format,png/watermark,image_\(b64("red.png")),g_nw,x_0,y_0,fill_1,padx_10,pady_10")
        for tileX in stride(from: 0, to: 200, by: 30) {
            for tileY in stride(from: 0, to: 100, by: 20) {
                #expect(Self.isRed(raster.pixel(tileX + 5, tileY + 5)), "tile at \(tileX),\(tileY)")
                if tileX + 25 < 200 { #expect(raster.pixel(tileX + 25, tileY + 5) == [255, 255, 255], "gap right of \(tileX),\(tileY)") }
                if tileY + 15 < 100 { #expect(raster.pixel(tileX + 5, tileY + 15) == [255, 255, 255], "gap below \(tileX),\(tileY)") }
            }
        }
        // Anchored elsewhere, the grid moves with the anchor: a tile sits exactly at (170, 80).
        let anchored = try render("image/format,png/watermark,image_\(b64("red.png")),fill_1,padx_10,pady_10")
        #expect(Self.isRed(anchored.pixel(170, 80)) && Self.isRed(anchored.pixel(189, 89)))
        #expect(anchored.pixel(169, 80) == [255, 255, 255] && anchored.pixel(170, 79) == [255, 255, 255])
        #expect(Self.isRed(anchored.pixel(140, 60)) && Self.isRed(anchored.pixel(0, 0)))
    }

    @Test func textSizeScales() throws {
        let text = b64("Hello")
        let small = ink(try render("image/format,png/watermark,text_\(text),size_20,g_nw"))
        let large = ink(try render("image/format,png/watermark,text_\(text),size_40,g_nw"))
        let ratio = Double(large.maxX - large.minX + 1) / Double(small.maxX - small.minX + 1)
        #expect(ratio > 1.7 && ratio < 2.3, "\(small) \(large)")
        #expect(small.minX >= 10 && small.minY >= 10)
    }

    @Test func textColourAndCJK() throws {
        let raster = try render("image/format,png/watermark,text_\(b64("水印 Derive")),size_40,color_FF0000,g_nw")
        #expect(ink(raster, isInk: Self.isRed).count > 200)
        let fonts = ["wqy-zenhei", "wqy-microhei", "fangzhengshusong", "fangzhengkaiti", "fangzhengheiti", "fangzhengfangsong", "droidsansfallback"]
        var renders: Set<Data> = []
        for font in fonts {
            let output = try Engine().render(white, try Pipeline.parse("image/format,png/watermark,text_\(b64("中文水印")),type_\(b64(font)),size_30,g_nw"))
            #expect(ink(try Raster.decode(output.bytes)).count > 100, "\(font)")
            renders.insert(output.bytes)
            #expect(try FontCatalog.file(for: font).hasPrefix("/usr/share/fonts/"))
        }
        #expect(renders.count >= 5, "the fonts should look different")
    }

    @Test func rotationTurnsTheBoundingBox() throws {
        let text = b64("Rotate me")
        let flat = ink(try render("image/format,png/watermark,text_\(text),size_20,g_center"))
        let turned = ink(try render("image/format,png/watermark,text_\(text),size_20,g_center,rotate_90"))
        #expect(flat.maxX - flat.minX > flat.maxY - flat.minY)
        #expect(turned.maxY - turned.minY > turned.maxX - turned.minX)
    }

    @Test func shadowDarkensBelowRight() throws {
        let plain = ink(try render("image/format,png/watermark,text_\(b64("ABC")),size_40,color_FFFFFF,g_nw"), isInk: { $0[0] < 250 })
        let shaded = ink(try render("image/format,png/watermark,text_\(b64("ABC")),size_40,color_FFFFFF,shadow_100,g_nw"), isInk: { $0[0] < 250 })
        #expect(plain.count == 0)
        #expect(shaded.count > 100)
    }

    /// `resize,P_50` sizes the mark relative to the main image: 50 % of 200×100 → at most 100×50.
    @Test func nestedProcessResizesRelativeToTheMainImage() throws {
        let process = "blue.png?x-oss-process=image/resize,P_50"
        let box = ink(try render("image/format,png/watermark,image_\(b64(process)),g_nw,x_0,y_0"))
        #expect(box.maxX - box.minX + 1 == 50 && box.maxY - box.minY + 1 == 50, "\(box)")
        let cropped = "blue.png?x-oss-process=image/crop,w_30,h_20/rotate,90"
        let turned = ink(try render("image/format,png/watermark,image_\(b64(cropped)),g_nw,x_0,y_0"))
        #expect(turned.maxX - turned.minX + 1 == 20 && turned.maxY - turned.minY + 1 == 30, "\(turned)")
    }

    @Test func mixedImageAndText() throws {
        let mark = "image_\(b64("red.png")),text_\(b64("II")),size_40,interval_10,g_nw,x_0,y_0"
        let imageFirst = try render("image/format,png/watermark,\(mark),order_0,align_0")
        let red = ink(imageFirst, isInk: Self.isRed), black = ink(imageFirst, isInk: { $0[0] < 100 && $0[1] < 100 })
        #expect(red.minX == 0 && red.minY == 0)
        #expect(black.minX >= 30)
        let textFirst = try render("image/format,png/watermark,\(mark),order_1,align_2")
        let red2 = ink(textFirst, isInk: Self.isRed), black2 = ink(textFirst, isInk: { $0[0] < 100 && $0[1] < 100 })
        #expect(red2.minX > black2.maxX)
        #expect(red2.maxY > black2.minY + 10)   // bottom-aligned with the taller text
    }

    @Test func severalMarksInOneChain() throws {
        let raster = try render("image/format,png/watermark,image_\(b64("red.png")),g_nw/watermark,image_\(b64("red.png")),g_se/watermark,text_\(b64("x")),g_center")
        #expect(Self.isRed(raster.pixel(15, 15)) && Self.isRed(raster.pixel(175, 85)))
        #expect(ink(raster).count > 400)
    }

    @Test func deterministic() throws {
        let process = "image/watermark,text_\(b64("同样 same")),size_30,shadow_50,rotate_20,fill_1/watermark,image_\(b64("red.png")),t_60"
        let a = try Engine().render(white, try Pipeline.parse(process), resolver: FolderResolver(root: bucket.path)).bytes
        let b = try Engine().render(white, try Pipeline.parse(process), resolver: FolderResolver(root: bucket.path)).bytes
        #expect(a == b)
    }

    @Test func errors() throws {
        func code(_ process: String, resolver: any ObjectResolver) -> ProcessError? {
            do { _ = try Engine().render(white, try Pipeline.parse(process), resolver: resolver); return nil } catch { return error as? ProcessError }
        }
        let folder = FolderResolver(root: bucket.path)
        #expect(code("image/watermark,image_\(b64("missing.png"))", resolver: folder)?.code == .watermarkError)
        #expect(code("image/watermark,image_\(b64("anim.gif"))", resolver: folder)?.ec == "0040-00000027")
        #expect(code("image/watermark,image_\(b64("../escape.png"))", resolver: folder)?.code == .watermarkError)
        #expect(code("image/watermark,image_\(b64("red.png"))", resolver: NoObjects())?.message.contains("--bucket-root") == true)
        let four = Array(repeating: "watermark,image_\(b64("red.png"))", count: 4).joined(separator: "/")
        #expect(code("image/\(four)", resolver: folder)?.message.contains("at most 3 image watermarks") == true)
        let three = ["nw", "north", "se"].map { "watermark,g_\($0),image_\(b64("red.png"))" }.joined(separator: "/")
        #expect(code("image/\(three)", resolver: folder) == nil)
        // Spec §2.13: two image watermarks may not sit at exactly the same position.
        let twins = Array(repeating: "watermark,g_ne,x_5,image_\(b64("red.png"))", count: 2).joined(separator: "/")
        #expect(code("image/\(twins)", resolver: folder)?.message.contains("same position") == true)
    }
}
