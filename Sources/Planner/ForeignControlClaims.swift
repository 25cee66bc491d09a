import Foundation
import GRDB

extension ForeignClaims {
    /// The manifest whose (moved-aside) state records `path` as a file it wrote besides outputs
    /// (its index), compared by real path; nil when none does.
    public static func controlFile(_ path: String, stateFolder: String, owner: String) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stateFolder) else { return nil }
        let real = realPath(path)
        let prefix = StateStore.fileName + ".foreign-"
        for name in names.sorted() where name.hasPrefix(prefix) && name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "-" }) {
            var configuration = Configuration()
            configuration.readonly = true
            guard let queue = try? DatabaseQueue(path: stateFolder + "/" + name, configuration: configuration) else { continue }
            defer { try? queue.close() }
            guard let other = try? queue.read({ db in try String.fetchOne(db, sql: "SELECT manifest FROM owner") }), other != owner,
                  FileManager.default.fileExists(atPath: other),
                  let paths = try? queue.read({ db in try String.fetchAll(db, sql: "SELECT path FROM controlFiles") })
            else { continue }
            if paths.contains(where: { $0 == path || realPath($0) == real }) { return other }
        }
        return nil
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
