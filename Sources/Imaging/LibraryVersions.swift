import CVipsShim
import Foundation

/// The versions behind `Engine.libraryVersions`, read once per process.
enum LibraryVersions {
    static let list: [(name: String, version: String)] = {
        // No libvips start-up: a no-op build asks for the engine version and must stay cheap.
        guard let text = dv_library_versions() else {
            return [("libvips", Vips.version)]
        }
        defer { dv_free(text) }
        var seen = Set<String>()
        return String(cString: text).split(separator: "\n").compactMap { line in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            let name = String(line[..<equals])
            guard seen.insert(name).inserted else { return nil }
            return (name, String(line[line.index(after: equals)...]).replacingOccurrences(of: " ", with: "-"))
        }
    }()
}
