#if canImport(Glibc)
import Glibc
#endif

/// The names Derive gives its own files in a manifest's state folder: one list for the
/// manifest's validation (a lock may not take one of them), the ownership checks (only these
/// files are opened, overwritten or deleted there) and `clean` (which removes them by name).
public enum StateFiles {
    public static let database = "state.sqlite"
    /// What SQLite appends to a database's name for its journal files.
    public static let journalSuffixes = ["-wal", "-shm", "-journal"]
    public static let databaseJournals = journalSuffixes.map { database + $0 }
    public static let buildLock = "build.lock"
    public static let witness = "noop-witness"
    /// The witness's record of each input file's stat and content digest (the touched-only path).
    public static let witnessInputs = "noop-witness.inputs"
    /// An empty file whose times the kernel sets to "now": the file system's clock, which the
    /// racy-timestamp rule reads (`FileSystemClock`).
    public static let clockStamp = "clock-stamp"
    /// The folder a build keeps its finished `{hash}` renders in until they are written, so an
    /// interrupted build does not render them again (`BuildRenderCache`).
    public static let buildRenders = "build-renders"
    /// The folder `derive serve` caches renders in.
    public static let serveCache = "serve-cache"
    /// `derive serve`'s multipart uploads in progress (parts until CompleteMultipartUpload).
    public static let serveUploads = "serve-uploads"
    /// Held (flock) by a running `derive serve`, so a second one on the state folder refuses to start.
    public static let serveLock = "serve.lock"
    /// `derive serve`'s record of the objects AppendObject created.
    public static let serveAppendable = "serve-appendable.json"
    /// `derive serve`'s object metadata (Content-Type, x-oss-meta-*, ETag of uploads): its own
    /// database, which the builder never opens (`clean` keeps it: it describes uploaded objects).
    public static let objectMetadata = "serve-metadata.sqlite"
    public static let objectMetadataJournals = journalSuffixes.map { objectMetadata + $0 }
    /// Prefixes of a database moved aside (corrupt, or another manifest's) and its journals.
    public static let movedAsidePrefixes = ["state.sqlite.corrupt-", "state.sqlite.foreign-"]

    /// Whether the file `info` describes can be Derive's clock stamp: an empty regular file with
    /// one name (one with a second name is a hard link to a file of the user's). One rule for
    /// the build, which sets its times, and `clean`, which removes it.
    public static func isClockStamp(_ info: stat) -> Bool {
        (info.st_mode & S_IFMT) == S_IFREG && info.st_size == 0 && info.st_nlink == 1
    }

    /// The files `clean` removes by name.
    public static var files: [String] { [database] + databaseJournals + [buildLock, witness, witnessInputs, clockStamp] }

    /// Whether a name directly in the state folder is reserved for Derive and SQLite: one of
    /// Derive's, or any name starting with the database's (journals of moved-aside databases too).
    public static func isReserved(_ name: String) -> Bool {
        isDerives(name) || name.hasPrefix(database)
    }

    /// Whether a name directly in the state folder is, or may become, one of Derive's.
    public static func isDerives(_ name: String) -> Bool {
        files.contains(name) || name == buildRenders || name == serveCache || name == objectMetadata || objectMetadataJournals.contains(name)
            || name == serveUploads || name == serveAppendable || name == serveLock || movedAsidePrefixes.contains { name.hasPrefix($0) }
    }
}
