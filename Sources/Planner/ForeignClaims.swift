import Confinement
import Foundation
import GRDB

/// Files another manifest's build state records: the state at `state.sqlite` when another
/// manifest owns it (a copied project before its first build: what `plan` and `check` see, and
/// what `build` moves aside) and the states moved aside as "owned by another manifest", whose
/// manifest still exists. A bucket folder outside the project tree (`path: ../shared-out`) is
/// reached by the copy and the original alike; the copy must not adopt, delete or clean the
/// original's outputs or index just because its copied lock vouches for their bytes. One
/// definition for `plan`, `check`, `build` and `clean`, so they agree.
public enum ForeignClaims {
    /// Output file (in the real folder it was written to) → the manifest claiming it.
    public struct Files: Sendable {
        public var claims: [String: String] = [:]
        public var isEmpty: Bool { claims.isEmpty }

        /// The manifest claiming `file`, looked up by its path and by its real folder's path.
        public func claimant(of file: String) -> String? {
            if let other = claims[file] { return other }
            guard let slash = file.lastIndex(of: "/") else { return nil }
            return claims[RealFolder.of(String(file[..<slash])) + String(file[slash...])]
        }
    }

    public static func files(stateFolder: String, owner: String) -> Files {
        var files = Files()
        forEachForeignState(in: stateFolder, owner: owner) { other, db in
            for row in try Row.fetchAll(db, sql: "SELECT path, folder FROM outputs WHERE folder != ''") {
                let path: String = row[0], folder: String = row[1]
                files.claims[folder + "/" + String(path.drop { $0 != "/" }.dropFirst())] = other
            }
            return false
        }
        return files
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

    /// Opens the state and each moved-aside foreign state read-only, in name order, and gives
    /// `body` its owner when that is another manifest that still exists, and a database; `body`
    /// returns true to stop. States that cannot be read claim nothing.
    static func forEachForeignState(in stateFolder: String, owner: String, _ body: (String, Database) throws -> Bool) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stateFolder) else { return }
        let prefix = StateFiles.movedAsidePrefixes.first { $0.hasSuffix("foreign-") }!
        func foreign(_ name: String) -> Bool {
            name == StateFiles.database || (name.hasPrefix(prefix) && name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "-" }))
        }
        for name in names.sorted() where foreign(name) {
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

/// Other manifests' claims as one command needs them: read on first use, then kept, so a plan
/// opens the states moved aside once however many outputs and indexes it asks about.
public final class ForeignClaimLookup: @unchecked Sendable {
    public let stateFolder: String
    public let owner: String
    private let lock = NSLock()
    private var loadedFiles: ForeignClaims.Files?
    private var indexes: [String: String?] = [:]

    public init(stateFolder: String, owner: String) {
        self.stateFolder = stateFolder
        self.owner = owner
    }

    /// Output files other manifests' states record.
    public var files: ForeignClaims.Files {
        lock.withLock {
            if let loadedFiles { return loadedFiles }
            let files = ForeignClaims.files(stateFolder: stateFolder, owner: owner)
            loadedFiles = files
            return files
        }
    }

    /// The manifest whose state records `path` as its index; nil when none does.
    public func index(_ path: String) -> String? {
        lock.withLock {
            if let known = indexes[path] { return known }
            let other = ForeignClaims.controlFile(path, stateFolder: stateFolder, owner: owner)
            indexes[path] = other
            return other
        }
    }
}
