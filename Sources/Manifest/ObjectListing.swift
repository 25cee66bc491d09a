import Foundation

/// Lists the objects of a bucket folder. The disk is behind this seam so validation and
/// planning can be tested without touching it.
public protocol ObjectLister: Sendable {
    /// Keys (paths relative to `folder`, `/`-separated) of the regular files below it, sorted;
    /// entries whose name starts with `.` are skipped, and so is any folder in `skipping`.
    /// Nil when the folder does not exist.
    func keys(inFolder folder: String, skipping: [String]) -> [String]?
}

public struct DiskObjectLister: ObjectLister {
    public init() {}

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else { return nil }
        let root = URL(fileURLWithPath: folder).standardizedFileURL
        let skipped = Set(skipping.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        guard let enumerator = FileManager.default.enumerator(
            at: root, includingPropertiesForKeys: [.isRegularFileKey, .isDirectoryKey],
            options: [.skipsHiddenFiles]) else { return [] }
        var keys: [String] = []
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in enumerator {
            let path = url.standardizedFileURL.path
            let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isDirectoryKey])
            if values?.isDirectory == true {
                if skipped.contains(path) { enumerator.skipDescendants() }
                continue
            }
            guard values?.isRegularFile == true, path.hasPrefix(prefix) else { continue }
            keys.append(String(path.dropFirst(prefix.count)))
        }
        return keys.sorted()
    }
}
