import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether the text libraries this process has loaded (HarfBuzz, fontconfig, FreeType, cairo,
/// Pango: as `/proc/self/maps` names them) hold a name as a string of their own. A library
/// reads a variable with `getenv("HB_SHAPER_LIST")`: a name none of them holds, none of them
/// reads (attack 52c's 4: `HB_FOO=1` rebuilt every text watermark). Asked of the libraries
/// loaded, not of a list: another HarfBuzz that reads another name is asked as it is. Only the
/// render worker loads them; in a process that loads none every name counts.
enum LoadedLibraryNames {
    /// The text libraries' file names start with one of these.
    static let libraries = ["libharfbuzz", "libfontconfig", "libfreetype", "libcairo", "libpango"]

    /// Each mapped text library's bytes, read once per process; nil when there are none, or one
    /// cannot be read (then every name counts: when in doubt, rebuild).
    static let loaded: [Data]? = {
        guard let maps = procFile("/proc/self/maps") else { return nil }
        var paths = Set<String>()
        for line in String(decoding: maps, as: UTF8.self).split(separator: "\n") {
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

    /// A file of /proc read to its end: it says its size is 0, and a read by the size it says
    /// gives nothing (f53's attempt read /proc/self/maps so, found no library and counted every
    /// name). Bounded (16 MiB); nil when it cannot be read.
    static func procFile(_ path: String) -> Data? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while data.count < 16 << 20 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
        return nil
    }

    /// True when a loaded text library holds `name` as the end of a C string (the linker may
    /// store "HB_OPTIONS" as the tail of another string), or when that cannot be known.
    static func mayBeRead(_ name: String) -> Bool {
        guard let loaded else { return true }
        let needle = Data(name.utf8) + [0]
        return loaded.contains { $0.range(of: needle) != nil }
    }
}
