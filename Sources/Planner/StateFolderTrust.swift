import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who may own the places Derive keeps a build state and its tokens in (attack 18's S1b, S10,
/// S12, S13, S6), as git's `safe.directory` and ssh's `StrictModes` decide it:
///
/// - the state folder and Derive's files in it (`state.sqlite` and its `-journal`, `-wal`,
///   `-shm`, `build.lock`, the witness) belong to the user running Derive and no one else may
///   write them (group write only through the user's own private group); every folder above it
///   (and every symbolic link on the way) belongs to that user or to root, and no one else may
///   write it unless it is sticky (`/tmp`). Else another user could rename the state away and put
///   a forged one (or a hot journal SQLite would replay) in its place, and the victim's own build
///   would delete the victim's files on its word. Checked before SQLite opens anything there.
/// - the folder of tokens is opened from `/` folder by folder (`openat`, `O_NOFOLLOW|O_DIRECTORY`),
///   the home (or `XDG_STATE_HOME`) and everything below it must be the user's: root running with
///   another user's HOME (`sudo -E`) neither follows that user's links nor creates folders in their
///   home; the token is then not kept (said, and the state treated as unbindable).
///
/// New state folders are made 0700, the database 0600 (SQLite gives its journals the database's mode).
public enum StateFolderTrust {
    static var user: uid_t { geteuid() }

    /// The user's name for a uid (`uid N` when the password database has none).
    static func name(ofUser uid: uid_t) -> String {
        var entry = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    /// Whether group write is harmless: the group is the running user's own private group (their
    /// primary group, named as they are, with no other member), as Debian's ssh allows.
    static func groupIsPrivate(_ gid: gid_t) -> Bool {
        var entry = passwd(), found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(user, &entry, &buffer, buffer.count, &found) == 0, found != nil, entry.pw_gid == gid, let userName = entry.pw_name else { return false }
        var group = Glibc.group(), groupFound: UnsafeMutablePointer<Glibc.group>?
        var groupBuffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &group, &groupBuffer, groupBuffer.count, &groupFound) == 0, groupFound != nil,
              let groupName = group.gr_name, strcmp(groupName, userName) == 0 else { return false }
        var member = group.gr_mem
        while let name = member?.pointee {
            if strcmp(name, userName) != 0 { return false }
            member = member?.advanced(by: 1)
        }
        return true
    }

    /// Whether someone other than the owner may write it.
    static func writableByOthers(_ info: stat) -> Bool {
        info.st_mode & 0o002 != 0 || (info.st_mode & 0o020 != 0 && !groupIsPrivate(info.st_gid))
    }

    static func mode(_ info: stat) -> String { String(format: "%04o", Int(info.st_mode & 0o7777)) }

    /// Why a folder above the state folder (or above the home) is unsafe; nil when it is not.
    static func aboveProblem(_ info: stat, _ path: String) -> String? {
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return "\(path) is not a folder" }
        if info.st_uid != 0, info.st_uid != user {
            return "\(path) belongs to \(name(ofUser: info.st_uid)), not to \(name(ofUser: user)) (who runs derive)\(user == 0 ? "" : " nor to root")"
        }
        if info.st_mode & S_ISVTX == 0, writableByOthers(info) {
            return "\(path) may be written by other users (mode \(mode(info)), not sticky)"
        }
        return nil
    }

    /// Why a folder or file that must be the user's own is not; nil when it is.
    static func ownProblem(_ info: stat, _ path: String) -> String? {
        if info.st_uid != user { return "\(path) belongs to \(name(ofUser: info.st_uid)), not to \(name(ofUser: user)) (who runs derive)" }
        if (info.st_mode & S_IFMT) != S_IFLNK, writableByOthers(info) { return "\(path) may be written by other users (mode \(mode(info)))" }
        return nil
    }

    static func components(_ path: String) -> [String] {
        URL(literalFilePath: path).standardizedFileURL.path.split(separator: "/").map(String.init)
    }

    /// Checks the way to `path` (absolute): every symbolic link on it belongs to root or the user,
    /// and every real folder above the deepest existing part passes `aboveProblem`. Returns the
    /// deepest existing part's real path and the names below it that do not exist yet.
    static func checkWay(to path: String) throws -> (real: String, missing: [String])? {
        let parts = components(path)
        var existing = 0
        var lexical = ""
        for part in parts {
            let next = lexical + "/" + part
            var info = stat()
            guard lstat(next, &info) == 0 else { break }
            if (info.st_mode & S_IFMT) == S_IFLNK, info.st_uid != 0, info.st_uid != user {
                throw PlanError(message: "\(next) is a symbolic link made by \(name(ofUser: info.st_uid)), not by \(name(ofUser: user)) (who runs derive) nor root")
            }
            lexical = next
            existing += 1
        }
        guard let resolved = realpath(lexical.isEmpty ? "/" : lexical, nil) else { return nil }
        defer { free(resolved) }
        return (String(cString: resolved), Array(parts.dropFirst(existing)))
    }

    /// The message's tail: what to do about a state folder Derive will not trust.
    static func stateFix(_ folder: String) -> String {
        "another user could replace the build state there and have this build delete your files on its word, so Derive does not use it; "
            + "set 'state:' in the manifest to a folder of your own, or make \(folder) and the folders above it yours and not writable by others "
            + "(if you run derive as root, e.g. `sudo derive build`, in another user's project: run it as that user instead)"
    }

    /// Throws (a plain message naming the folder, its owner and the fix) when the state folder, a
    /// folder above it, or one of Derive's files in it is not safe to trust. Nothing is created.
    /// `toMake` false (`plan`, `check`): a state folder that does not exist is nothing to trust,
    /// wherever it would be made (root's CI in a checkout another uid owns).
    public static func check(stateFolder folder: String, toMake: Bool = true) throws {
        guard let way = try checkWay(to: folder), toMake || way.missing.isEmpty else { return }
        let real = way.real
        // The real folders above (and, when the state folder does not exist yet, the deepest one
        // that does, where it would be made).
        let realParts = components(real)
        var path = ""
        var above: [String] = ["/"]
        for part in realParts.dropLast(way.missing.isEmpty ? 1 : 0) { path += "/" + part; above.append(path) }
        for folder in above {
            var info = stat()
            guard stat(folder, &info) == 0 else { continue }
            if let problem = aboveProblem(info, folder) {
                throw PlanError(message: "the state folder \(URL(literalFilePath: folderPath(real, way.missing)).path) is not safe: \(problem); " + stateFix(folder))
            }
        }
        guard way.missing.isEmpty else { return }
        var info = stat()
        guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return }
        if info.st_uid == 0, user != 0 { throw PlanError(message: madeByRoot(real, real)) }
        if let problem = ownProblem(info, real) { throw PlanError(message: "the state folder is not safe: \(problem); " + stateFix(real)) }
        for name in StateFiles.files {
            var file = stat()
            guard lstat(real + "/" + name, &file) == 0 else { continue }
            if file.st_uid == 0, user != 0 { throw PlanError(message: madeByRoot(real + "/" + name, real)) }
            if let problem = ownProblem(file, real + "/" + name) {
                throw PlanError(message: "Derive's file in the state folder is not safe: \(problem); another user could have planted it "
                    + "(a journal SQLite would replay, a forged state), so Derive opens nothing there; remove it (as its owner or root) if you "
                    + "did not put it there, or make it yours (`chown`, `chmod go-w`)")
            }
        }
    }

    /// A state folder (or file in it) root made in the user's project: a `sudo derive build`.
    static func madeByRoot(_ path: String, _ folder: String) -> String {
        "\(path) belongs to root (a `sudo derive build`?), so \(name(ofUser: user)) cannot use the build state there: remove the state folder as root "
            + "(`sudo rm -rf \(folder)`) and build again as \(name(ofUser: user)); Derive then starts from derive.lock, deleting nothing"
    }

    static func folderPath(_ real: String, _ missing: [String]) -> String {
        ([real == "/" ? "" : real] + missing).joined(separator: "/")
    }

    /// Checks, then makes the state folder (each missing folder 0700, checked again once made).
    public static func makeFolder(_ folder: String) throws {
        try check(stateFolder: folder)
        guard let way = try checkWay(to: folder), !way.missing.isEmpty else { return }
        var path = way.real == "/" ? "" : way.real
        var made: [String] = []
        defer { if !made.isEmpty { StateFolderMade.note(made, stateFolder: folder) } }   // so `clean` removes only these
        for part in way.missing {
            path += "/" + part
            if mkdir(path, 0o700) == 0 {
                made.append(path)
            } else if errno != EEXIST {
                let failure = errno
                throw PlanError(message: cannotMake(path, errno: failure))
            }
        }
        try check(stateFolder: folder)
    }

    /// Why `path` (a folder of the way to the state folder) could not be made, as it is: a folder
    /// above it this user may not enter hides whether it exists (a state folder root made with a
    /// `sudo derive build`, mode 0700), which "cannot create" misnamed (attack 39b's L7).
    static func cannotMake(_ path: String, errno failure: Int32) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        var info = stat()
        guard failure == EACCES || failure == EPERM, stat(parent, &info) == 0 else {
            return "cannot create the state folder \(path): \(String(cString: strerror(failure)))"
        }
        let owner = name(ofUser: info.st_uid), me = name(ofUser: user)
        let fix = "run derive as \(owner), or give \(parent) to \(me) (`\(info.st_uid == 0 ? "sudo " : "")chown -R \(me) \(parent)`)"
        if access(parent, X_OK) != 0 {
            // What is inside cannot even be looked at: the state folder may well be there.
            return "cannot open the state folder \(path): \(parent) belongs to \(owner) (mode \(mode(info))) and \(me) may not look inside it, "
                + "so the build state there (if any) cannot be read or made (a `sudo derive build`?); \(fix); or set 'state:' in the manifest to a folder of your own"
        }
        return "cannot create the state folder \(path): \(parent) belongs to \(owner) (mode \(mode(info))) and \(me) may not write in it; "
            + "\(fix); or set 'state:' in the manifest to a folder of your own"
    }

    /// Checks and makes the state folder, then makes the database 0600 (created empty when absent,
    /// so SQLite never makes it world-readable; its journals take its mode).
    public static func prepare(stateFolder folder: String, database: String) throws {
        try makeFolder(folder)
        makePrivate(database: database)
    }

    /// Makes the database 0600 (created empty when absent) before SQLite opens it: a state
    /// started afresh after one was moved aside is private too.
    public static func makePrivate(database: String) {
        let fd = open(database, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }   // a link or worse: the store's own handling says what
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid == user, (info.st_mode & S_IFMT) == S_IFREG, info.st_mode & 0o077 != 0 { _ = fchmod(fd, 0o600) }
    }

    /// Checks the database at `database` and SQLite's side files beside it (`-journal`, `-wal`,
    /// `-shm`) before SQLite opens anything there, throwing a message that names the file and
    /// the fix:
    /// - a FIFO, socket or device at any of them: SQLite's open would wait forever on a FIFO
    ///   (attack 9's finding 5), and none is a file Derive writes;
    /// - a side file SQLite did not write: with `state: .` (or `state:` naming a user's folder) a
    ///   user's `state.sqlite-wal` holding notes is not Derive's, and SQLite deletes, truncates or
    ///   replays whatever has that name when it opens the database (finding 6). A side file is
    ///   SQLite's when it is empty or starts with SQLite's header for its kind: a rollback
    ///   journal's magic (or the zeroed header of a finished one), a WAL's magic, a WAL index's
    ///   version (or zeros).
    /// - a symbolic link at any of them: never followed (issue 9, 4), as serve's store refuses one.
    public static func checkDatabaseFiles(_ database: String) throws {
        let folder = (database as NSString).deletingLastPathComponent
        for suffix in [""] + StateFiles.journalSuffixes {
            let path = database + suffix
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let what = suffix.isEmpty ? "the build state (SQLite's database)" : "SQLite's \(suffix.dropFirst()) file of the build state"
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw PlanError(message: "\(path) is a symbolic link: Derive keeps \(what) at that name and never follows a link there (it may lead to "
                    + "another project's state or a file of yours, which SQLite would write, replay or delete), so Derive opens nothing there; "
                    + "remove the link (or move it out of \(folder)), or set 'state:' in the manifest to a folder of its own")
            }
            let kind: String? = switch info.st_mode & S_IFMT {
            case S_IFIFO: "a FIFO"
            case S_IFSOCK: "a socket"
            case S_IFCHR, S_IFBLK: "a device"
            default: nil
            }
            if let kind {
                throw PlanError(message: "\(path) is \(kind), not a file: Derive keeps \(what) at that name, and opening it would wait forever or fail, "
                    + "so Derive opens nothing there; remove it (or move it out of \(folder)), or set 'state:' in the manifest to a folder of its own")
            }
            // A folder there (attack 39a's F3): SQLite only says "disk I/O error" or "unable to open",
            // which read as permissions. Never moved aside or removed: it may hold the user's files.
            if (info.st_mode & S_IFMT) == S_IFDIR {
                throw PlanError(message: "\(path) is a folder, not a file: Derive keeps \(what) at that name, so no command can read or write "
                    + "the build state while the folder is there, and Derive opens, moves and deletes nothing in it (it may hold your files); "
                    + "move that folder out of \(folder) (or remove it if it is empty and not yours), then run derive build again (it rebuilds "
                    + "the state from the lock and the outputs); or set 'state:' in the manifest to a folder of its own")
            }
            guard !suffix.isEmpty, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 else { continue }
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }   // SQLite's own error says what then
            var head = [UInt8](repeating: 0, count: 8)
            let count = pread(fd, &head, head.count, 0)
            close(fd)
            let header: String
            let holds: Bool
            switch suffix {
            case "-journal":
                header = "rollback journal header"
                holds = count == 8 && (head == [0xD9, 0xD5, 0x05, 0xF9, 0x20, 0xA1, 0x63, 0xD7] || head.allSatisfy { $0 == 0 })
            case "-wal":
                header = "WAL header"
                holds = count >= 4 && head[0..<3] == [0x37, 0x7F, 0x06] && (head[3] == 0x82 || head[3] == 0x83)
            default:   // -shm: the WAL index's version, 3007000, in the machine's byte order
                header = "WAL index header"
                let version = UInt32(3_007_000)
                let bytes = withUnsafeBytes(of: version) { Array($0) }
                holds = count >= 4 && (Array(head[0..<4]) == bytes || head[0..<4].allSatisfy { $0 == 0 })
            }
            guard !holds else { continue }
            throw PlanError(message: "\(path) is not a file SQLite wrote (it does not start with SQLite's \(header)), so it is not Derive's: "
                + "opening the build state beside it would make SQLite delete or replay it, so Derive opens nothing there; "
                + "move it out of \(folder) if it is yours, or set 'state:' in the manifest to a folder of its own")
        }
        if let application = foreignApplication(database) {
            // Its journal is its own too: SQLite would replay or delete it, Derive would write the
            // database, and `clean` delete it (attack 27's finding 1).
            throw PlanError(message: "\(database) is another application's SQLite database (application_id \(application), not Derive's "
                + "\"DrSt\"), so it is not Derive's build state: Derive opens, writes, moves and deletes nothing there; move it (with any "
                + "state.sqlite-journal beside it) out of \(folder) if it is yours, or set 'state:' in the manifest to a folder of its own")
        }
        // SQLite's files, but whose? Judged against Derive's own database beside them (issue 9).
        for (suffix, what) in [("-wal", "a write-ahead log"), ("-shm", "a write-ahead log's index")] {
            var info = stat()
            guard lstat(database + suffix, &info) == 0 else { continue }
            // SQLite opens a log whenever one exists: it replays it into the state, or deletes it.
            throw notDerives(database + suffix, "is \(what), and Derive keeps its build state in SQLite's rollback-journal mode, never with one: "
                + "it belongs to another database (of yours, or put there)", folder)
        }
        try leaveWALMode(database, folder)
        try checkJournal(database)
        try UnstampedState.check(database)   // an unstamped database is Derive's only with Derive's own schema
    }

    /// A database whose header says WAL mode (bytes 18 and 19 are 2) makes SQLite create a `-wal`
    /// and a `-shm` beside it whenever it is opened (a read-only opening leaves them there), which
    /// the next opening would then refuse. Derive's own state (stamped) switched to WAL mode by
    /// hand, with no log beside it (refused above), holds every page in the file: it goes back
    /// to rollback-journal mode as SQLite's `PRAGMA journal_mode = DELETE` leaves it, bytes 18
    /// and 19 set to 1. Any other database in WAL mode is not Derive's state: refused, unchanged.
    static func leaveWALMode(_ database: String, _ folder: String) throws {
        let fd = open(database, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 100)
        guard SQLiteFiles.preadFully(fd, &bytes, at: 0) == 100, let header = SQLiteFiles.header(bytes), bytes[18] == 2 || bytes[19] == 2 else { return }
        guard header.applicationID == applicationID else {
            throw PlanError(message: "\(database) is an SQLite database in WAL mode that is not stamped Derive's, so it is not Derive's build state "
                + "(which is never in WAL mode): opening it would make SQLite create a -wal and a -shm beside it, so Derive opens nothing there; "
                + "move it out of \(folder) if it is yours, or set 'state:' in the manifest to a folder of its own")
        }
        let writable = open(database, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard writable >= 0 else { throw unopenable(database, errno: errno) }
        defer { close(writable) }
        let rollback: [UInt8] = [1, 1]
        guard pwrite(writable, rollback, 2, 18) == 2 else { throw unopenable(database, errno: errno) }
    }

    /// `PRAGMA application_id` of Derive's build state ("DrSt"), set when it is made (an older
    /// unstamped state gets it at its next opening for a build): a journal is Derive's only when
    /// it journals a page 1 carrying it.
    public static let applicationID: Int32 = 0x4472_5374

    /// The `application_id` in the header of the SQLite database at `database` when it is another
    /// application's: neither 0 (no application claims it: a database of SQLite's defaults, or a
    /// state an older Derive made before the stamp, judged by its tables) nor Derive's. Nil when
    /// the file is absent, empty, not an SQLite database, or not claimed by another application.
    /// Such a database is never Derive's state, whatever tables it holds (or none).
    static func foreignApplication(_ database: String) -> Int32? {
        let fd = open(database, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let header = SQLiteFiles.header(ofDatabase: fd), header.applicationID != 0, header.applicationID != applicationID else { return nil }
        return header.applicationID
    }

    /// The refusal of SQLite's side file `path` that is not Derive's: `why`, then the fix.
    static func notDerives(_ path: String, _ why: String, _ folder: String) -> PlanError {
        PlanError(message: "\(path) \(why); opening the build state beside it would make SQLite replay it into the state, overwrite or delete it, "
            + "so Derive opens nothing there and leaves it as it is: move it out of \(folder) (with the database it belongs to) if it is yours, "
            + "or set 'state:' in the manifest to a folder of its own; if an interrupted derive left it, remove it together with "
            + "the database beside it (the next build starts again from derive.lock)")
    }

    /// Throws unless the rollback journal beside `database` (when there is one) is Derive's:
    /// SQLite rolls a hot journal back into the database as it opens it (or deletes it when the
    /// database is empty), and Derive's next write overwrites and deletes any journal there.
    /// Derive's state is stamped (`applicationID`), and every write transaction in rollback mode
    /// journals page 1 (the change counter), so a journal is Derive's when:
    /// - a connection holds the database's write lock (a derive writing it now: the journal is
    ///   live, SQLite leaves it to that writer);
    /// - it is the journal of a database being created (attack 27's finding 2: a kill during a new
    ///   state's first commit, which writes only Derive's stamp): it began on a database of 0
    ///   pages and so records none, and the database beside it is still empty (Derive makes it
    ///   empty before SQLite opens it) or holds Derive's stamp. Rolling it back (or SQLite's
    ///   deleting it beside an empty database) empties the database again: no page of anyone's
    ///   is in either file, and the build starts the state afresh;
    /// - the database is Derive's (SQLite's header with Derive's stamp), the journal's page size
    ///   is the database's, and either its record of page 1 carries Derive's header, or (a journal
    ///   not yet synced, first bytes zero: nothing written to the database since) every page it
    ///   recorded is still the database's page, byte for byte (none recorded: the database still
    ///   has the size the journal began with); an empty journal beside Derive's database holds nothing.
    /// No database beside it, another database, or another database's journal: refused.
    static func checkJournal(_ database: String) throws {
        let path = database + "-journal", folder = (database as NSString).deletingLastPathComponent
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let db = open(database, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard db >= 0 else { throw notDerives(path, "is a rollback journal with no build state beside it (SQLite would delete it), so it is not Derive's", folder) }
        defer { close(db) }
        if SQLiteFiles.lockHeld(on: db, start: SQLiteFiles.reservedByte.start, length: SQLiteFiles.reservedByte.length) { return }
        var databaseInfo = stat()
        guard fstat(db, &databaseInfo) == 0 else { throw unopenable(database, errno: errno) }
        let header = SQLiteFiles.header(ofDatabase: db)
        let stamped = header?.applicationID == applicationID
        // Empty: the database Derive made for a new state, before SQLite wrote its first page.
        let empty = databaseInfo.st_size == 0
        guard stamped || empty else {
            throw notDerives(path, "is a rollback journal beside \(database), which is not a database stamped Derive's (an older Derive's state, "
                + "or another database), so the journal cannot be shown to be Derive's", folder)
        }
        guard info.st_size > 0 else { return }
        let journal = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard journal >= 0 else { throw unopenable(path, errno: errno) }
        defer { close(journal) }
        let notOfThisState = "is not a rollback journal of the build state beside it"
        guard let journalHeader = SQLiteFiles.journalHeader(journal), empty || journalHeader.pageSize == header?.pageSize else {
            throw notDerives(path, notOfThisState + (header.map { " (its header does not give the state's page size, \($0.pageSize))" } ?? " (its header is not SQLite's)"), folder)
        }
        let records = SQLiteFiles.journalRecords(journal, journalHeader)
        if journalHeader.originalPages == 0 {
            // A database being created: SQLite journals no page past the database's size then.
            guard records.isEmpty else {
                throw notDerives(path, notOfThisState + " (it records pages of a database that had none)", folder)
            }
            return
        }
        guard let header, !empty else {
            throw notDerives(path, notOfThisState + " (it began on a database of \(journalHeader.originalPages) pages, and \(database) is empty)", folder)
        }
        if let pageOne = records.first(where: { $0.page == 1 }) {
            var bytes = [UInt8](repeating: 0, count: 100)
            guard SQLiteFiles.preadFully(journal, &bytes, at: pageOne.offset) == 100,
                  let recorded = SQLiteFiles.header(bytes), recorded.applicationID == applicationID, recorded.pageSize == header.pageSize else {
                throw notDerives(path, notOfThisState + " (its record of page 1 is another database's header)", folder)
            }
            return
        }
        guard !journalHeader.hasMagic else {
            throw notDerives(path, notOfThisState + " (it holds no record of page 1, which SQLite journals in every write of Derive's)", folder)
        }
        if records.isEmpty {
            guard Int(databaseInfo.st_size) == journalHeader.originalPages * header.pageSize else {
                throw notDerives(path, notOfThisState + " (it began on a database of another size)", folder)
            }
            return
        }
        var original = [UInt8](repeating: 0, count: header.pageSize), now = original
        for record in records {
            guard SQLiteFiles.preadFully(journal, &original, at: record.offset) == header.pageSize,
                  SQLiteFiles.preadFully(db, &now, at: (Int(record.page) - 1) * header.pageSize) == header.pageSize, original == now else {
                throw notDerives(path, notOfThisState + " (its record of page \(record.page) is not the state's page)", folder)
            }
        }
    }

    /// The plain message for a state file that cannot be opened (never a Foundation error dump).
    public static func unopenable(_ path: String, errno error: Int32) -> PlanError {
        var message = "cannot open \(path): \(String(cString: strerror(error)).lowercased())"
        var info = stat()
        if error == EACCES || error == EPERM, lstat(path, &info) == 0, info.st_uid != user {
            let owner = name(ofUser: info.st_uid)
            let folder = (path as NSString).deletingLastPathComponent
            message += "; it belongs to \(owner)\(info.st_uid == 0 ? " (a `sudo derive build`?)" : ""): remove \(folder) as \(owner) (`sudo rm -rf \(folder)`), or run derive as \(owner)"
        }
        return PlanError(message: message)
    }

    /// Whether `folder` (a cache of the user's, e.g. `~/.cache/derive`) is, or may be made, the
    /// user's own: it is theirs and not writable by others, or the deepest folder of it that exists
    /// is theirs (or a sticky one of root's, as /tmp), and every folder above belongs to them or root.
    /// Root with another user's HOME then creates and writes nothing in that home.
    public static func isOwnFolder(_ folder: String) -> Bool {
        guard let way = try? checkWay(to: folder) else { return false }
        var info = stat()
        guard stat("/", &info) == 0, aboveProblem(info, "/") == nil else { return false }
        let parts = components(way.real)
        var path = ""
        for (index, part) in parts.enumerated() {
            path += "/" + part
            guard stat(path, &info) == 0 else { return false }
            let last = index == parts.count - 1
            if last, way.missing.isEmpty {
                if ownProblem(info, path) != nil { return false }
            } else if aboveProblem(info, path) != nil {
                return false
            }
            if last, !way.missing.isEmpty, info.st_uid != user, info.st_mode & S_ISVTX == 0 { return false }
        }
        return true
    }

    // MARK: The folder of tokens

    /// The folder of tokens as (base, names below it): `XDG_STATE_HOME` + `derive/states`, else
    /// the home + `.local/state/derive/states` (the same choice as `StateBinding.folder()`).
    static func tokenPlace() -> (base: String, below: [String])? {
        guard let folder = StateBinding.folder() else { return nil }
        let below = ProcessInfo.processInfo.environment["XDG_STATE_HOME"].map { $0.hasPrefix("/") } == true
            ? ["derive", "states"] : [".local", "state", "derive", "states"]
        let base = String(folder.dropLast(below.joined(separator: "/").count + 1))
        return (base, below)
    }

    static func tokenError(_ text: String) -> PlanError { PlanError(message: "the build state's token is not kept: " + text) }

    /// Opens the folder of tokens (`create`: making what is missing below the home, 0700) and
    /// returns its descriptor. Throws a plain message when the way is not the user's.
    static func openTokenFolder(create: Bool) throws -> Int32 {
        guard let place = tokenPlace() else { throw tokenError("no folder to keep it in: set HOME or XDG_STATE_HOME") }
        let way: (real: String, missing: [String])
        do {
            guard let found = try checkWay(to: place.base) else { throw tokenError("cannot resolve \(place.base)") }
            way = found
        } catch let error as PlanError where !error.message.hasPrefix("the build state's token") {
            throw tokenError(error.message + " (on the way to \(place.base))")
        }
        // From `/`, folder by folder, never through a link.
        var fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw tokenError("cannot open /") }
        var path = ""
        let realParts = components(way.real)
        for (index, part) in realParts.enumerated() {
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            path += "/" + part
            guard next >= 0 else { throw tokenError("cannot open \(path) as a folder without following a link: \(String(cString: strerror(errno)))") }
            fd = next
            var info = stat()
            guard fstat(fd, &info) == 0 else { close(fd); throw tokenError("cannot read \(path)") }
            let isBase = way.missing.isEmpty && index == realParts.count - 1
            if let problem = isBase ? ownProblem(info, path) : aboveProblem(info, path) {
                close(fd)
                throw tokenError(problem + (isBase ? " — Derive creates nothing in another user's home (HOME or XDG_STATE_HOME kept by `sudo -E`?)" : ""))
            }
            if !isBase, index == realParts.count - 1, info.st_uid != user, info.st_mode & S_ISVTX == 0 {
                close(fd)
                throw tokenError("\(path) belongs to \(name(ofUser: info.st_uid)); Derive creates no folder in it")
            }
        }
        for part in way.missing + place.below {
            var next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT, create {
                if mkdirat(fd, part, 0o700) != 0, errno != EEXIST {
                    let error = String(cString: strerror(errno))
                    close(fd)
                    throw tokenError("cannot create \(path)/\(part) (for the build state's token): \(error)")
                }
                next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let failure = errno
            close(fd)
            path += "/" + part
            guard next >= 0 else {
                throw tokenError(failure == ELOOP || failure == ENOTDIR
                    ? "\(path) is a symbolic link or not a folder, which Derive does not follow for the build state's token"
                    : "cannot open \(path) (for the build state's token): \(String(cString: strerror(failure)))")
            }
            fd = next
            var info = stat()
            guard fstat(fd, &info) == 0 else { close(fd); throw tokenError("cannot read \(path)") }
            if let problem = ownProblem(info, path) { close(fd); throw tokenError(problem) }
        }
        return fd
    }

    /// Writes `text` as the token file `name` (a temporary file renamed into place, 0600).
    public static func writeToken(_ text: String, name: String) throws {
        // Never one `readToken` would refuse: the write fails instead, and the caller says so.
        guard text.utf8.count <= maxTokenBytes else {
            throw tokenError("the token file \(name) would hold \(text.utf8.count) bytes, more than the \(maxTokenBytes) a token may hold; it was not written")
        }
        let folder = try openTokenFolder(create: true)
        defer { close(folder) }
        let temporary = name + ".\(getpid()).tmp"
        let fd = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw tokenError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = write(fd, bytes, bytes.count)
        // On disk before it is named: a secret lost in a power cut unbinds every state it sealed.
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, renameat(folder, temporary, folder, name) == 0 else {
            let error = String(cString: strerror(errno))
            unlinkat(folder, temporary, 0)
            throw tokenError("cannot write the token file \(name): \(error)")
        }
    }

    /// Removes the token file `name`, if there (best effort).
    static func removeToken(name: String) {
        guard let folder = try? openTokenFolder(create: false) else { return }
        defer { close(folder) }
        _ = unlinkat(folder, name, 0)
    }

    /// The most a token file may hold (1 MiB): a lock's provenance (`LockProvenance`, a line per
    /// bucket) or the folders made for a state (`StateFolderMade`) stay far below it. A token
    /// over it is never written (`writeToken` refuses) and never read in part: read, it is no
    /// token at all, so whatever it would vouch for is not vouched for (the lock is the lock's
    /// word again, `clean` keeps the folders it cannot prove it made, a state is not bound).
    public static let maxTokenBytes = 1 << 20

    /// The token file `name`'s bytes, whole (round 39: only the first 4 KiB were read, so a long
    /// provenance lost its last buckets' lines); nil when the way to it or the file is not the
    /// user's, when it is empty, or when it holds more than `maxTokenBytes`.
    public static func readToken(name: String) -> Data? {
        guard let folder = try? openTokenFolder(create: false) else { return nil }
        defer { close(folder) }
        let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)   // a FIFO planted there never blocks
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == user, info.st_size <= maxTokenBytes else { return nil }
        // Up to one byte past the bound: a file that grew past it since the stat is refused too.
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while data.count <= maxTokenBytes {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            data.append(contentsOf: buffer.prefix(count))
        }
        return data.isEmpty || data.count > maxTokenBytes ? nil : data
    }

    // MARK: Moved-aside states

    /// Whether `path` is a state Derive moved aside: a regular file of the user's holding an
    /// SQLite database with Derive's tables and no others (a user's file of that name is not).
    static func isMovedAsideState(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        var info = stat()
        var header = [UInt8](repeating: 0, count: 16)
        let count = fstat(fd, &info) == 0 ? read(fd, &header, 16) : -1
        close(fd)
        guard count == 16, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == user, header == Array("SQLite format 3\0".utf8) else { return false }
        return StateOwnership.foreignTables(path) == []
    }
}
