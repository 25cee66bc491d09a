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

/// Every file below `folder` (relative path → bytes).
func treeContents(_ folder: URL) throws -> [String: Data] {
    var result: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(atPath: folder.path)
    while let name = enumerator?.nextObject() as? String {
        var isFolder: ObjCBool = false
        let path = folder.appendingPathComponent(name).path
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
            result[name] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }
    return result
}
