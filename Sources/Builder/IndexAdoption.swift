import Foundation
import Manifest
import Planner

/// Whether an index found without a record of writing it (a fresh clone, a removed or
/// recovered state) is Derive's: its bytes must be exactly what Derive writes for the outputs
/// the lock lists. The index carries every field it shows; the lock vouches for each output's
/// size, dimensions and format. Anything else is a user's file and is left alone.
enum IndexAdoption {
    static func isDerives(_ data: Data, lock: LockFile?, manifest: Manifest, indexBucket: String) -> Bool {
        guard let lock, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              object["version"] as? Int == 1, let sources = object["sources"] as? [String: Any] else { return false }
        var records: [OutputRecord] = []
        for (source, value) in sources {
            guard let entry = value as? [String: Any], let derivatives = entry["derivatives"] as? [[String: Any]] else { return false }
            for item in derivatives {
                guard let path = item["path"] as? String, let rule = item["rule"] as? String, let width = item["width"] as? Int,
                      let height = item["height"] as? Int, let format = item["format"] as? String, let bytes = item["bytes"] as? Int,
                      let acl = item["acl"] as? String else { return false }
                let matrix = (item["matrix"] as? [String: String])?.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") ?? ""
                // Each output must be the lock's, with the lock's size, dimensions and format.
                guard let locked = lock.entries[path], locked.bytes == Int64(bytes), locked.width == width, locked.height == height,
                      locked.format.isEmpty || locked.format == format else { return false }
                records.append(OutputRecord(path: path, rule: rule, source: source, style: item["style"] as? String, matrix: matrix,
                                            engine: "", pipeline: "", sourceDigest: "", dependencies: "", encoder: "", actionKey: "",
                                            acl: acl, outputDigest: locked.digest, size: Int64(bytes), width: width, height: height,
                                            format: format, builtAt: 0, folder: ""))
            }
        }
        guard records.count == lock.entries.count else { return false }
        return IndexWriter.json(records, manifest: manifest, indexBucket: indexBucket) == data
    }
}

/// The index could not be written; its message starts with the index's path.
struct IndexError: Error, CustomStringConvertible {
    var message: String
    var path: String
    var description: String { message }
}
