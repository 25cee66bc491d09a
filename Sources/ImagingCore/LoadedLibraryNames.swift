import Foundation

/// Whether the text libraries this process has loaded (HarfBuzz, fontconfig, FreeType, cairo,
/// Pango: as `/proc/self/maps` names them) hold a name as a string of their own. A library
/// reads a variable with `getenv("HB_SHAPER_LIST")`: a name none of them holds, none of them
/// reads (attack 52c's 4: `HB_FOO=1` rebuilt every text watermark). Asked of the libraries
/// loaded, not of a list: another HarfBuzz that reads another name is asked as it is.
enum LoadedLibraryNames {
    /// The text libraries' file names start with one of these.
    static let libraries = ["libharfbuzz", "libfontconfig", "libfreetype", "libcairo", "libpango"]

    /// Each mapped text library's bytes, read once per process; nil when there are none, or one
    /// cannot be read (then every name counts: when in doubt, rebuild).
    static let loaded: [Data]? = {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
        var paths = Set<String>()
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            let name = (path as NSString).lastPathComponent
            if libraries.contains(where: { name.hasPrefix($0) }) { paths.insert(path) }
        }
        guard !paths.isEmpty else { return nil }
        var contents: [Data] = []
        for path in paths.sorted() {
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            contents.append(data)
        }
        return contents
    }()

    /// True when a loaded text library holds `name` as the end of a C string (the linker may
    /// store "HB_OPTIONS" as the tail of another string), or when that cannot be known.
    static func mayBeRead(_ name: String) -> Bool {
        guard let loaded else { return true }
        let needle = Data(name.utf8) + [0]
        return loaded.contains { $0.range(of: needle) != nil }
    }
}
