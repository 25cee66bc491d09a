import Testing
import TestSupport
import Builder

/// `DominantColour` on known pixels (attack 36a's M6): the most populated cell of an 8-levels-a-
/// channel histogram, answered as the mean of its pixels; ties to the cell met first in reading
/// order; transparent pixels left out.
@Suite(.ownThreads) struct DominantColourTests {
    static let blue = [0x20, 0x50, 0xC0, 255], red = [0xE0, 0x20, 0x20, 255]

    @Test func theMostPopulatedCellWinsOverAMinorityHue() {
        let rgba = pixels(50, 50) { x, y in x >= 20 && x < 25 && y >= 20 && y < 25 ? Self.red : Self.blue }
        #expect(DominantColour.hex(width: 50, height: 50, rgba: rgba) == "#2050c0")
    }

    /// Noise within one cell averages out: the mean of the cell, rounded half up.
    @Test func aCellAnswersTheMeanOfItsPixels() {
        // 0x20 and 0x21 alternate in red (mean 32.5, rounded up to 33 = 0x21); green and blue fixed.
        let rgba = pixels(4, 1) { x, _ in [0x20 + x % 2, 0x50, 0xC0, 255] }
        #expect(DominantColour.hex(width: 4, height: 1, rgba: rgba) == "#2150c0")
    }

    @Test func aTieGoesToTheCellMetFirstInReadingOrder() {
        let leftBlue = pixels(10, 10) { x, _ in x < 5 ? Self.blue : Self.red }
        let leftRed = pixels(10, 10) { x, _ in x < 5 ? Self.red : Self.blue }
        let topRed = pixels(10, 10) { _, y in y < 5 ? Self.red : Self.blue }
        #expect(DominantColour.hex(width: 10, height: 10, rgba: leftBlue) == "#2050c0")
        #expect(DominantColour.hex(width: 10, height: 10, rgba: leftRed) == "#e02020")
        #expect(DominantColour.hex(width: 10, height: 10, rgba: topRed) == "#e02020")
    }

    @Test func transparentPixelsAreNotThePicture() {
        let mostlyClear = pixels(10, 10) { x, _ in x < 8 ? [255, 0, 0, 127] : [0x30, 0xA0, 0x40, 128] }
        #expect(DominantColour.hex(width: 10, height: 10, rgba: mostlyClear) == "#30a040")
        let clear = pixels(3, 3) { _, _ in [10, 20, 30, 0] }
        #expect(DominantColour.hex(width: 3, height: 3, rgba: clear) == nil)
        #expect(DominantColour.hex(width: 0, height: 0, rgba: []) == nil)
    }
}
