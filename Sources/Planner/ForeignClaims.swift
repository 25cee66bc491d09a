import Foundation
import GRDB

/// Output files another manifest's build state records: the states moved aside as "owned by
/// another manifest" (a copied project) whose manifest still exists. A bucket folder outside the
/// project tree (`path: ../shared-out`) is reached by the copy and the original alike; the copy
/// must not adopt (and later delete) the original's outputs just because its copied lock
/// vouches for their bytes.
public enum ForeignClaims {
    /// File → the manifest claiming it.
    public static func files(stateFolder: String, owner: String) -> [String: String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stateFolder) else { return [:] }
        var claims: [String: String] = [:]
        let prefix = StateStore.fileName + ".foreign-"
        for name in names where name.hasPrefix(prefix) && name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "-" }) {
            var configuration = Configuration()
            configuration.readonly = true
            guard let queue = try? DatabaseQueue(path: stateFolder + "/" + name, configuration: configuration) else { continue }
            defer { try? queue.close() }
            guard let other = try? queue.read({ db in try String.fetchOne(db, sql: "SELECT manifest FROM owner") }), other != owner,
                  FileManager.default.fileExists(atPath: other),
                  let rows = try? queue.read({ db in try Row.fetchAll(db, sql: "SELECT path, folder FROM outputs WHERE folder != ''") })
            else { continue }
            for row in rows {
                let path: String = row[0], folder: String = row[1]
                claims[folder + "/" + String(path.drop { $0 != "/" }.dropFirst())] = other
            }
        }
        return claims
    }
}
