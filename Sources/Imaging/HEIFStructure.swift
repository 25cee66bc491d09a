/// The ISOBMFF structure of a HEIC or AVIF file, walked without decoding (README, "Corrupt
/// input"). libheif with libde265 renders damaged HEVC data as grey or garbled pixels without
/// an error, so what the bytes can prove wrong is checked here: box sizes, every `iloc` extent
/// inside the file, and each HEVC item's NAL units, which must tile the item exactly and never
/// contain 00 00 00/01/02 (emulation prevention forbids it, so zeroed data shows). AV1 has no
/// such rule; dav1d already refuses damaged OBU headers (README, known limits).
enum HEIFStructure {
    private struct Damage: Error {
        let reason: String
    }

    private struct Box {
        let type: String
        let start: Int   // first payload byte
        let end: Int
    }

    /// Why `bytes` is not a well-formed HEIF/AVIF, or nil when its structure holds.
    static func problem(_ bytes: UnsafeRawBufferPointer) -> String? {
        switch boxes(bytes, from: 0, to: bytes.count) {
        case .failure(let damage): return damage.reason
        case .success(let top):
            guard let meta = top.first(where: { $0.type == "meta" }) else { return "the file has no 'meta' box" }
            // meta is a full box: 4 bytes of version and flags before its children.
            guard case .success(let children) = boxes(bytes, from: meta.start + 4, to: meta.end) else {
                return "the file's 'meta' box is damaged"
            }
            guard let iloc = children.first(where: { $0.type == "iloc" }),
                  let items = locations(bytes, iloc) else { return "the file's item locations ('iloc') are damaged" }
            for item in items {
                for extent in item.extents where extent.upperBound > bytes.count {
                    return "item \(item.id)'s data (bytes \(extent.lowerBound)..<\(extent.upperBound)) lies past the end of the \(bytes.count)-byte file (cut short)"
                }
            }
            let types = children.first(where: { $0.type == "iinf" }).map { itemTypes(bytes, $0) } ?? [:]
            let nalLength = lengthSize(bytes, children)
            for item in items where types[item.id] == "hvc1" {
                let data = item.extents.flatMap { Array(bytes[$0]) }
                if let nalLength, let problem = nalUnits(data, lengthSize: nalLength) { return "item \(item.id): " + problem }
            }
            return nil
        }
    }

    /// The boxes tiling [start, end); a size past the end or a name that is not text fails.
    private static func boxes(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Result<[Box], Damage> {
        var result: [Box] = []
        var offset = start
        while offset < end {
            guard offset + 8 <= end else { return .failure(Damage(reason: "the file ends with \(end - offset) stray bytes inside a box")) }
            let type = fourCC(bytes, offset + 4)
            guard type.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                return .failure(Damage(reason: "the file has a damaged box header at byte \(offset)"))
            }
            var size = Int(be(bytes, offset, 4))
            var header = 8
            if size == 1 {
                guard offset + 16 <= end else { return .failure(Damage(reason: "the '\(type)' box at byte \(offset) is cut short")) }
                let large = be(bytes, offset + 8, 8)
                guard large <= UInt64(Int.max) else { return .failure(Damage(reason: "the '\(type)' box at byte \(offset) has an impossible size")) }
                size = Int(large)
                header = 16
            } else if size == 0 {
                size = end - offset
            }
            guard size >= header, size <= end - offset else {
                return .failure(Damage(reason: "the '\(type)' box at byte \(offset) claims \(size) bytes, past the end of its container (cut short or damaged)"))
            }
            result.append(Box(type: type, start: offset + header, end: offset + size))
            offset += size
        }
        return .success(result)
    }

    private struct Item {
        let id: Int
        var extents: [Range<Int>]
    }

    /// The file-offset extents of each item in `iloc` (construction method 0); nil if damaged.
    private static func locations(_ bytes: UnsafeRawBufferPointer, _ iloc: Box) -> [Item]? {
        var reader = Reader(bytes: bytes, offset: iloc.start, end: iloc.end)
        guard let version = reader.read(1), version <= 2, reader.skip(3),
              let sizes = reader.read(1), let sizes2 = reader.read(1) else { return nil }
        let offsetSize = Int(sizes >> 4)
        let lengthSize = Int(sizes & 15)
        let baseSize = Int(sizes2 >> 4)
        let indexSize = version > 0 ? Int(sizes2 & 15) : 0
        let allowed: Set<Int> = [0, 4, 8]
        guard allowed.isSuperset(of: [offsetSize, lengthSize, baseSize, indexSize]),
              let count = reader.read(version < 2 ? 2 : 4) else { return nil }
        var items: [Item] = []
        for _ in 0..<count {
            guard let id = reader.read(version < 2 ? 2 : 4) else { return nil }
            var method: UInt64 = 0
            if version > 0 { guard let m = reader.read(2) else { return nil }; method = m & 15 }
            guard reader.skip(2), let base = reader.read(baseSize), let extents = reader.read(2) else { return nil }
            var item = Item(id: Int(id), extents: [])
            for _ in 0..<extents {
                guard reader.skip(indexSize), let offset = reader.read(offsetSize), let length = reader.read(lengthSize) else { return nil }
                guard method == 0 else { continue }
                let (start, overflow) = base.addingReportingOverflow(offset)
                guard !overflow, start <= UInt64(Int.max / 2), length <= UInt64(Int.max / 2) else { return nil }
                // Length 0 means "to the end of the file".
                let end = length == 0 ? max(Int(start), bytes.count) : Int(start) + Int(length)
                item.extents.append(Int(start)..<end)
            }
            items.append(item)
        }
        return items
    }

    /// Item types from `iinf`'s version 2/3 `infe` entries.
    private static func itemTypes(_ bytes: UnsafeRawBufferPointer, _ iinf: Box) -> [Int: String] {
        var reader = Reader(bytes: bytes, offset: iinf.start, end: iinf.end)
        guard let version = reader.read(1), reader.skip(3), reader.skip(version == 0 ? 2 : 4),
              case .success(let entries) = boxes(bytes, from: reader.offset, to: iinf.end) else { return [:] }
        var types: [Int: String] = [:]
        for entry in entries where entry.type == "infe" {
            var infe = Reader(bytes: bytes, offset: entry.start, end: entry.end)
            guard let v = infe.read(1), v >= 2, infe.skip(3), let id = infe.read(v == 2 ? 2 : 4), infe.skip(2),
                  infe.offset + 4 <= entry.end else { continue }
            types[Int(id)] = fourCC(bytes, infe.offset)
        }
        return types
    }

    /// The NAL length size all `hvcC` boxes agree on (nil when they differ or none exists).
    private static func lengthSize(_ bytes: UnsafeRawBufferPointer, _ metaChildren: [Box]) -> Int? {
        guard let iprp = metaChildren.first(where: { $0.type == "iprp" }),
              case .success(let properties) = boxes(bytes, from: iprp.start, to: iprp.end),
              let ipco = properties.first(where: { $0.type == "ipco" }),
              case .success(let all) = boxes(bytes, from: ipco.start, to: ipco.end) else { return nil }
        let sizes = Set(all.filter { $0.type == "hvcC" && $0.end - $0.start > 21 }.map { Int(bytes[$0.start + 21] & 3) + 1 })
        return sizes.count == 1 ? sizes.first : nil
    }

    /// Length-prefixed HEVC NAL units: they tile the data, the forbidden bit is 0, no 00 00 0x
    /// (x <= 2) inside and no zero last byte.
    private static func nalUnits(_ data: [UInt8], lengthSize: Int) -> String? {
        var offset = 0
        while offset < data.count {
            guard offset + lengthSize <= data.count else { return "its HEVC data ends inside a NAL length" }
            var length = 0
            for byte in data[offset..<(offset + lengthSize)] { length = length << 8 | Int(byte) }
            offset += lengthSize
            guard length > 0, length <= data.count - offset else {
                return "a HEVC NAL unit at byte \(offset) claims \(length) bytes of the \(data.count - offset) left (damaged or cut short)"
            }
            let unit = data[offset..<(offset + length)]
            guard unit.first! & 0x80 == 0, unit.last! != 0 else { return "a HEVC NAL unit at byte \(offset) is damaged" }
            var zeros = 0
            for byte in unit {
                if zeros >= 2 && byte <= 2 { return "a HEVC NAL unit at byte \(offset) holds a zero run that coded data cannot contain (damaged)" }
                zeros = byte == 0 ? zeros + 1 : 0
            }
            offset += length
        }
        return nil
    }

    /// Big-endian fields read in sequence within a box.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset: Int
        let end: Int

        mutating func read(_ size: Int) -> UInt64? {
            guard size <= end - offset else { return nil }
            let value = HEIFStructure.be(bytes, offset, size)
            offset += size
            return value
        }

        mutating func skip(_ size: Int) -> Bool {
            guard size <= end - offset else { return false }
            offset += size
            return true
        }
    }

    static func be(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ size: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in offset..<(offset + size) { value = value << 8 | UInt64(bytes[index]) }
        return value
    }
}

extension HEIFStructure {
    static func fourCC(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> String {
        String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
    }
}
