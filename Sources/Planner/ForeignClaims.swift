import Confinement
import Foundation
import GRDB

/// Files another manifest's build state records: the states moved aside as "owned by another
/// manifest" (a copied project) whose manifest still exists. A bucket folder outside the project
/// tree (`path: ../shared-out`) is reached by the copy and the original alike; the copy must not
/// adopt, delete or clean the original's outputs or index just because its copied lock vouches
/// for their bytes.
public enum ForeignClaims {
    /// Output file → the manifest claiming it.
    public static func files(stateFolder: String, owner: String) -> [String: String] {
        var claims: [String: String] = [:]
        forEachForeignState(in: stateFolder, owner: owner) { other, db in
            for row in try Row.fetchAll(db, sql: "SELECT path, folder FROM outputs WHERE folder != ''") {
                let path: String = row[0], folder: String = row[1]
                claims[folder + "/" + String(path.drop { $0 != "/" }.dropFirst())] = other
            }
            return false
        }
        return claims
    }

    /// The manifest whose state records `path` as a file it wrote besides outputs (its index),
    /// compared by real path; nil when none does.
    public static func controlFile(_ path: String, stateFolder: String, owner: String) -> String? {
        let real = realPath(path)
        var claimant: String?
        forEachForeignState(in: stateFolder, owner: owner) { other, db in
            let paths = try String.fetchAll(db, sql: "SELECT path FROM controlFiles")
            guard paths.contains(where: { $0 == path || realPath($0) == real }) else { return false }
            claimant = other
            return true
        }
        return claimant
    }

    /// Opens each moved-aside foreign state read-only, in name order, and gives `body` its owner
    /// (another manifest that still exists) and a database; `body` returns true to stop. States
    /// that cannot be read claim nothing.
    static func forEachForeignState(in stateFolder: String, owner: String, _ body: (String, Database) throws -> Bool) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stateFolder) else { return }
        let prefix = StateFiles.movedAsidePrefixes.first { $0.hasSuffix("foreign-") }!
        for name in names.sorted() where name.hasPrefix(prefix) && name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "-" }) {
            var configuration = Configuration()
            configuration.readonly = true
            guard let queue = try? DatabaseQueue(path: stateFolder + "/" + name, configuration: configuration) else { continue }
            defer { try? queue.close() }
            let stop = try? queue.read { db -> Bool in
                guard let other = try String.fetchOne(db, sql: "SELECT manifest FROM owner"), other != owner,
                      FileManager.default.fileExists(atPath: other) else { return false }
                return try body(other, db)
            }
            if stop == true { return }
        }
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
