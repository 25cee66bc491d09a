import Foundation

/// The files directly in `folder` with their bytes: the attack tests compare a folder before and
/// after a command to prove it touched nothing.
func contents(_ folder: URL) throws -> [String: Data] {
    var result: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
        result[name] = try Data(contentsOf: folder.appendingPathComponent(name))
    }
    return result
}
