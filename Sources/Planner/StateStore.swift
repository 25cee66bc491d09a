import Foundation
import GRDB

/// One file's content digest as last hashed, with the `stat` it had then (git's index idea).
public struct FileRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "files"
    public var path: String
    public var size: Int64
    public var mtime: Int64
    public var inode: Int64
    public var digest: String
    /// Image format sniffed from the first bytes (`jpg`, `png`, ...), empty when unknown.
    public var format: String
    /// When the digest was taken (ns): a file modified within the racy margin of this is rehashed.
    public var recorded: Int64

    public init(path: String, size: Int64, mtime: Int64, inode: Int64, digest: String, format: String, recorded: Int64) {
        self.path = path; self.size = size; self.mtime = mtime; self.inode = inode
        self.digest = digest; self.format = format; self.recorded = recorded
    }

    /// Decodes by column position (no Codable): state tables are read whole on every plan.
    public init(row: Row) {
        self.init(path: row[0], size: row[1], mtime: row[2], inode: row[3], digest: row[4], format: row[5], recorded: row[6])
    }
}

/// What was built for one output: every fingerprint component, kept separately so a plan
/// can say which one changed.
public struct OutputRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "outputs"
    /// `bucket/key` of the output.
    public var path: String
    public var rule: String
    /// `bucket/key` of the source.
    public var source: String
    public var style: String?
    /// Matrix values as `name=value` joined by `,`, sorted.
    public var matrix: String
    public var engine: String
    public var pipeline: String
    public var sourceDigest: String
    /// Other objects the pipeline reads, `name=digest` joined by `,`.
    public var dependencies: String
    public var encoder: String
    public var actionKey: String
    public var acl: String
    public var outputDigest: String
    public var size: Int64
    public var width: Int
    public var height: Int
    public var format: String
    public var builtAt: Int64

    public init(path: String, rule: String, source: String, style: String?, matrix: String, engine: String, pipeline: String,
                sourceDigest: String, dependencies: String, encoder: String, actionKey: String, acl: String,
                outputDigest: String, size: Int64, width: Int, height: Int, format: String, builtAt: Int64) {
        self.path = path; self.rule = rule; self.source = source; self.style = style; self.matrix = matrix
        self.engine = engine; self.pipeline = pipeline; self.sourceDigest = sourceDigest; self.dependencies = dependencies
        self.encoder = encoder; self.actionKey = actionKey; self.acl = acl; self.outputDigest = outputDigest
        self.size = size; self.width = width; self.height = height; self.format = format; self.builtAt = builtAt
    }

    /// Decodes by column position (no Codable), in the table's column order.
    public init(row: Row) {
        self.init(path: row[0], rule: row[1], source: row[2], style: row[3], matrix: row[4], engine: row[5], pipeline: row[6],
                  sourceDigest: row[7], dependencies: row[8], encoder: row[9], actionKey: row[10], acl: row[11],
                  outputDigest: row[12], size: row[13], width: row[14], height: row[15], format: row[16], builtAt: row[17])
    }
}

/// The build state: an SQLite database (GRDB) in the manifest's state folder.
public final class StateStore: Sendable {
    public let queue: DatabaseQueue
    public let folder: String

    public init(folder: String) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: folder + "/state.sqlite", configuration: configuration)
        try Self.migrator.migrate(queue)
    }

    /// A throwaway store for tests.
    public init(inMemory: Void = ()) throws {
        folder = ""
        queue = try DatabaseQueue()
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "files") { t in
                t.primaryKey("path", .text)
                t.column("size", .integer).notNull()
                t.column("mtime", .integer).notNull()
                t.column("inode", .integer).notNull()
                t.column("digest", .text).notNull()
                t.column("format", .text).notNull()
                t.column("recorded", .integer).notNull()
            }
            try db.create(table: "outputs") { t in
                t.primaryKey("path", .text)
                t.column("rule", .text).notNull()
                t.column("source", .text).notNull()
                t.column("style", .text)
                t.column("matrix", .text).notNull()
                t.column("engine", .text).notNull()
                t.column("pipeline", .text).notNull()
                t.column("sourceDigest", .text).notNull()
                t.column("dependencies", .text).notNull()
                t.column("encoder", .text).notNull()
                t.column("actionKey", .text).notNull()
                t.column("acl", .text).notNull()
                t.column("outputDigest", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("width", .integer).notNull()
                t.column("height", .integer).notNull()
                t.column("format", .text).notNull()
                t.column("builtAt", .integer).notNull()
            }
        }
        return migrator
    }

    public func allFiles() throws -> [String: FileRecord] {
        try queue.read { db in
            Dictionary(try FileRecord.fetchAll(db, sql: "SELECT path, size, mtime, inode, digest, format, recorded FROM files")
                .map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func allOutputs() throws -> [String: OutputRecord] {
        try queue.read { db in
            Dictionary(try OutputRecord.fetchAll(db, sql: """
                SELECT path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                       actionKey, acl, outputDigest, size, width, height, format, builtAt FROM outputs
                """).map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func saveFiles(_ records: [FileRecord]) throws {
        guard !records.isEmpty else { return }
        try queue.write { db in
            for record in records { try record.save(db) }
        }
    }

    /// Records a built output (after its file was renamed into place) with its file digest, in one transaction.
    public func recordOutput(_ record: OutputRecord, file: FileRecord?) throws {
        try queue.write { db in
            try record.save(db)
            try file?.save(db)
        }
    }

    public func removeOutputs(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try queue.write { db in
            _ = try OutputRecord.deleteAll(db, keys: paths)
        }
    }

    public func removeFiles(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try queue.write { db in
            _ = try FileRecord.deleteAll(db, keys: paths)
        }
    }
}
