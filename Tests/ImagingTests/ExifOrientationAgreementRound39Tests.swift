import Foundation
import Imaging
import ImagingCore
import Testing
import TestSupport

/// Attack 39b's M3: the planner's header reader (`SourceHeader`) and libvips disagreed on the
/// EXIF orientation of a JPEG with two Exif APP1 segments (the planner took the last, libvips
/// the first) and of an Orientation entry typed SLONG holding a SHORT's bytes (libvips read
/// none, the planner 6): the index gave the wrong size, widths were not built, outputs were
/// duplicated. Each crafted file here is drawn by the engine and read by the planner; the two
/// sizes must agree, whichever way the engine goes.
@Suite(.ownThreads) struct ExifOrientationAgreementRound39Tests {
    /// The JPEG's segments up to the scan (marker, whole segment bytes), and the rest from SOS on.
    static func segments(_ data: Data) -> (segments: [(marker: UInt8, bytes: Data)], rest: Data) {
        let bytes = [UInt8](data)
        var offset = 2, found: [(UInt8, Data)] = []
        while offset + 4 <= bytes.count, bytes[offset + 1] != 0xDA {
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            found.append((bytes[offset + 1], Data(bytes[offset..<offset + 2 + length])))
            offset += 2 + length
        }
        return (found, Data(bytes[offset...]))
    }

    static func app1(_ payload: [UInt8]) -> Data {
        Data([0xFF, 0xE1, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload)
    }

    static func isFrame(_ marker: UInt8) -> Bool { (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) }

    /// Samples/orientation-6.jpg (stored 200×300, drawn 300×200) with the IFD0 Orientation entry's
    /// type, component count and 4 value bytes replaced.
    static func retyped(_ type: Int, count: Int = 1, value: [UInt8]) throws -> Data {
        var bytes = [UInt8](try Fixtures.sample("orientation-6.jpg"))
        let tiff = try #require(Data(bytes).range(of: Data("Exif\0\0".utf8))).upperBound
        let big = bytes[tiff] == 0x4D
        func u16(_ at: Int) -> Int { big ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : Int(bytes[at + 1]) << 8 | Int(bytes[at]) }
        func put16(_ at: Int, _ v: Int) { let b = [UInt8(v >> 8), UInt8(v & 0xFF)]; bytes[at] = big ? b[0] : b[1]; bytes[at + 1] = big ? b[1] : b[0] }
        let ifdOffset = tiff + (big ? u16(tiff + 4) << 16 | u16(tiff + 6) : u16(tiff + 6) << 16 | u16(tiff + 4))
        for entry in 0..<u16(ifdOffset) {
            let at = ifdOffset + 2 + entry * 12
            guard u16(at) == 0x0112 else { continue }
            put16(at + 2, type)
            let countBytes: [UInt8] = [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
            for i in 0..<4 { bytes[at + 4 + i] = big ? countBytes[i] : countBytes[3 - i] }
            for i in 0..<4 { bytes[at + 8 + i] = value[i] }
            return Data(bytes)
        }
        Issue.record("no Orientation entry in orientation-6.jpg")
        return Data(bytes)
    }

    /// 6 written as a SHORT, a LONG and a BYTE would hold it, in the file's byte order.
    static func six(_ layout: String, big: Bool) -> [UInt8] {
        switch layout {
        case "short": return big ? [0, 6, 0, 0] : [6, 0, 0, 0]
        case "long": return big ? [0, 0, 0, 6] : [6, 0, 0, 0]
        default: return [6, 0, 0, 0]
        }
    }

    /// Every crafted file, named.
    static func crafted() throws -> [(String, Data)] {
        let one = try Fixtures.sample("orientation-1.jpg"), six = try Fixtures.sample("orientation-6.jpg")
        let big = [UInt8](six)[[UInt8](six).firstIndex(of: 0x45)! + 6] == 0x4D
        var files: [(String, Data)] = []
        for type in 0...13 {
            for layout in ["short", "long", "byte"] {
                files.append(("type \(type) as \(layout)", try retyped(type, value: Self.six(layout, big: big))))
            }
        }
        files.append(("SHORT, 0 components", try retyped(3, count: 0, value: Self.six("short", big: big))))
        files.append(("SHORT, 2 components", try retyped(3, count: 2, value: Self.six("short", big: big))))
        let (sixSegments, rest) = segments(six)
        let exif1 = try #require(segments(one).segments.first { $0.marker == 0xE1 }).bytes
        let exif6 = try #require(sixSegments.first { $0.marker == 0xE1 }).bytes
        let others = sixSegments.filter { $0.marker != 0xE1 }.map(\.bytes)
        func jpeg(_ parts: [Data]) -> Data { Data([0xFF, 0xD8]) + parts.reduce(Data(), +) + rest }
        files.append(("Exif 1 then Exif 6", jpeg([exif1, exif6] + others)))
        files.append(("Exif 6 then Exif 1", jpeg([exif6, exif1] + others)))
        files.append(("a damaged Exif then Exif 6", jpeg([app1(Array("Exif\0\0garbage-garbage".utf8)), exif6] + others)))
        files.append(("an 'Exif\\0' APP1 then Exif 6", jpeg([app1(Array("Exif\0".utf8)), exif6] + others)))
        files.append(("an 'Exif' APP1 of 4 bytes then Exif 6", jpeg([app1(Array("Exif".utf8)), exif6] + others)))
        files.append(("XMP then Exif 6", jpeg([app1(Array("http://ns.adobe.com/xap/1.0/\0<x/>".utf8)), exif6] + others)))
        files.append(("'exif' then Exif 6", jpeg([app1(Array("exif\0\0".utf8) + Array(exif1.dropFirst(10))), exif6] + others)))
        files.append(("Exif 6 without its null bytes", jpeg([app1(Array("Exif".utf8) + Array(exif6.dropFirst(10)))] + others)))
        let beforeFrame = sixSegments.filter { $0.marker != 0xE1 && !isFrame($0.marker) }.map(\.bytes)
        let frames = sixSegments.filter { isFrame($0.marker) }.map(\.bytes)
        files.append(("Exif 6 after the frame header", jpeg(beforeFrame + frames + [exif6])))
        return files
    }

    @Test func thePlannerReadsTheSizeTheEngineDrawsForEveryCraftedJPEG() throws {
        var disagreements: [String] = []
        var rotated = 0
        for (name, source) in try Self.crafted() {
            let drawn = try Fixtures.render(source, "image/format,png").1
            guard let header = SourceHeader.displayedSize(source) else {
                disagreements.append("\(name): the planner read no size")
                continue
            }
            if drawn.width == 300 { rotated += 1 }
            if header.width != drawn.width || header.height != drawn.height {
                disagreements.append("\(name): planner \(header.width)x\(header.height), engine \(drawn.width)x\(drawn.height)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        // Both ways are exercised: some files are drawn turned, some not.
        #expect(rotated >= 8 && rotated <= 20, "\(rotated) drawn turned")
    }
}
