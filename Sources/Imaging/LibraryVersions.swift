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
            // "LIBTIFF, Version 4.5.0", "v3.6.0", "so 12.3.4": keep the version number itself.
            let text = String(line[line.index(after: equals)...])
            guard let number = text.range(of: #"[0-9][0-9A-Za-z.+~_-]*"#, options: .regularExpression) else { return nil }
            return (name, String(text[number]))
        }
    }()
}
