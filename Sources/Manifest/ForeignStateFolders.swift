import Confinement
import Foundation
import GRDBSQLite
#if canImport(Glibc)
import Glibc
#endif

/// No bucket, lock or index lies inside a folder holding another manifest's build state, whatever
/// folder that manifest is in (attack 29's finding 10: `out: {path: ../b/.derive/derive}` passed
/// validation, its build wrote there, and b's next build stopped on a file that was not its
/// own). The checks of manifests in this manifest's own folder (`validateSiblings`) find their
/// state folders by name; a state elsewhere is found by what it holds: a `state.sqlite` stamped
/// Derive's ("DrSt"), or one beside Derive's `build.lock` (a state from before the stamp), or by
/// its name: `.derive/<stem>` beside a manifest of that stem (its default, made or not yet).
/// A folder that holds a manifest too (`state: .`) is its user's folder, not refused here.
///
/// A database counts only when it really is a state, another manifest's (attack 37a's M2: one
/// empty stamped file planted in `/tmp` stopped every project below it): this user's own (Derive
/// opens no state another user owns, `StateFolderTrust`, and that user's state folder is one no
/// one else may write, so this manifest's builds cannot write into it) and naming its manifest
/// (its owner record, or a manifest found whose `state:` is that folder). This user's stamped
/// file that names none is said as a warning, not taken for anyone's state.
///
/// A rule's outputs count as its output folder: the bucket's folder and the fixed folders of its
/// `to:` before the first placeholder (attack 31's F3: a bucket at `../b/.derive` with
/// `to: out/derive/{name}.jpg` wrote into b's `.derive/derive`). Each path is resolved by the
/// file system as far as it exists (links followed; its deepest existing ancestor decides), and
/// the refusal names the manifest whose state it is, when one is found.
extension ControlFiles {
    func validateForeignStates(into diagnostics: inout Diagnostics) {
        let own = FileSystemPath(manifest: manifest.stateFolder)
        var targets = [(what: "the lock file \(display(manifest.lockFile))", path: manifest.lockFile, location: locations.lock ?? rootLocation)]
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            targets.append(("the index \(display(bucket.path + "/" + index.path))", bucket.path + "/" + index.path, locations.index ?? rootLocation))
        }
        for bucket in manifest.buckets {
            targets.append(("bucket '\(bucket.name)' (\(bucket.declaredPath))", bucket.path, bucket.pathLocation))
        }
        for outline in outlines {
            guard let name = outline.targetBucket, let bucket = manifest.bucket(named: name), let to = outline.to,
                  let folder = Self.fixedFolder(of: to.text) else { continue }
            targets.append(("the outputs of rule \(outline.label) (\(name)/\(to.text))", bucket.path + folder, outline.toLocation.advanced(by: outline.toOffset)))
        }
        var strays: [String] = []
        var passed: Set<String> = []
        for target in targets {
            // Said already (a neighbour's state folder in this folder): once is enough.
            let location = target.location
            guard !diagnostics.errors.contains(where: { $0.file == location.file && $0.line == location.line && $0.column == location.column }),
                  let (state, owner) = Self.foreignStateFolder(holding: target.path, own: own, strays: &strays, passed: &passed) else { continue }
            let whose = owner.map { " (the build state of \($0))" } ?? ""
            diagnostics.error(location,
                              "\(target.what) is inside \(display(state)), a folder holding another manifest's Derive build state\(whose); that manifest's builds would open, overwrite, move aside or delete what this one writes there, and this one's would break its state",
                              hint: "choose a path outside \(display(state))")
        }
        for stray in Set(strays).sorted() {
            diagnostics.warning(rootLocation,
                                "\(display(stray)) carries Derive's build-state stamp but names no manifest (it has no owner record), so it is not taken for another manifest's build state",
                                hint: "delete it if no build uses that folder as its state")
        }
    }

    /// The folders of a `to:` key (`derive/{name}.jpg` → `/derive`) up to the first placeholder,
    /// below the bucket's folder; nil for none (the bucket's folder itself, checked already).
    static func fixedFolder(of key: String) -> String? {
        let fixed = key.prefix { $0 != "{" }
        guard let last = fixed.lastIndex(of: "/") else { return nil }
        return "/" + fixed[..<last]
    }

    /// The manifest whose build state `folder` holds, when one is found: the manifest of the
    /// stem beside `.derive/<stem>`, else a manifest in a folder above whose `state:` (or default)
    /// is this folder, compared by the file system.
    static func stateOwner(of folder: String) -> String? {
        let parent = (folder as NSString).deletingLastPathComponent
        if (parent as NSString).lastPathComponent == ".derive",
           let owner = manifestCandidates(stem: (folder as NSString).lastPathComponent, in: (parent as NSString).deletingLastPathComponent)
            .first(where: couldBeManifest) {
            return owner
        }
        let state = FileSystemPath(manifest: folder)
        var above = parent
        for _ in 0..<4 {
            if let owner = manifests(in: above).first(where: { FileSystemPath(manifest: controlFiles(ofSibling: $0).state).sameFile(as: state) }) {
                return owner
            }
            if above == "/" || above.isEmpty { break }
            above = (above as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// The folder at or above `path` that holds another manifest's Derive build state (not `own`),
    /// with that manifest when it is known; nil when none does. This user's stamped databases
    /// that name no manifest, met on the way, are added to `strays`.
    /// `passed`: folders this validation already found holding no other manifest's state (and
    /// whose stray, if any, is in `strays`): not judged again. Every target's walk goes up to
    /// `/`, so without it each listed `/tmp` and every folder above the project once per target
    /// (issue 15: a tenth of a one-edit plan at 4 000 outputs, in a project below `/tmp`).
    static func foreignStateFolder(holding path: String, own: FileSystemPath, strays: inout [String],
                                   passed: inout Set<String>) -> (folder: String, owner: String?)? {
        var folder = FileSystemPath(manifest: path).real
        while true {
            if passed.contains(folder) {
                // Judged in this validation: it holds no other manifest's state.
            } else if !FileSystemPath(manifest: folder).sameFile(as: own), manifests(in: folder).isEmpty {
                if isDefaultStateFolder(folder) { return (folder, stateOwner(of: folder)) }
                switch stateDatabase(in: folder) {
                case .none: break
                case .owned(let recorded): return (folder, stateOwner(of: folder) ?? recorded)
                case .ownerless:
                    if let owner = stateOwner(of: folder) { return (folder, owner) }
                    strays.append(folder + "/" + StateFiles.database)
                }
            }
            passed.insert(folder)
            if folder == "/" || folder.isEmpty { return nil }
            folder = (folder as NSString).deletingLastPathComponent
        }
    }

    /// Whether `folder` is `.derive/<stem>` beside a manifest of that stem: its default state
    /// folder, made or not yet (a neighbour not built yet).
    static func isDefaultStateFolder(_ folder: String) -> Bool {
        let parent = (folder as NSString).deletingLastPathComponent
        guard (parent as NSString).lastPathComponent == ".derive" else { return false }
        let owners = manifestCandidates(stem: (folder as NSString).lastPathComponent, in: (parent as NSString).deletingLastPathComponent)
        return owners.contains(where: couldBeManifest)
    }

    /// What the `state.sqlite` in a folder is, for `foreignStateFolder`.
    enum StateDatabase {
        /// None there, not Derive's, or not this user's (never a state this user's builds share).
        case none
        /// This user's Derive state, whose owner record names this manifest.
        case owned(String)
        /// This user's, stamped Derive's, but naming no manifest (no owner record, or unreadable).
        case ownerless
    }

    /// The state database in `folder`: Derive's when stamped "DrSt" (bytes 68 to 71 of its
    /// header), or, unstamped, beside a `build.lock` holding Derive's `pid …` line; counted only
    /// when it is a regular file of the user running Derive.
    /// Kept while the database, its write-ahead log and the build lock beside it keep their stamps
    /// (`StampedAnswers`: each sibling's state was opened about five times per no-op, attack 50c's M5).
    static func stateDatabase(in folder: String) -> StateDatabase {
        let path = folder + "/" + StateFiles.database
        return statesRead.answer(folder, stamping: [path, path + "-wal", path + "-journal", folder + "/" + StateFiles.buildLock]) {
            stateDatabaseReadNow(in: folder)
        }
    }

    static let statesRead = StampedAnswers<StateDatabase>()

    /// `stateDatabase(in:)` read now.
    static func stateDatabaseReadNow(in folder: String) -> StateDatabase {
        let path = folder + "/" + StateFiles.database
        guard let (header, owner) = stateDatabaseHeader(in: folder), owner == geteuid() else { return .none }
        if !isStampedDerives(header) {
            guard LockFirstLine.read(folder + "/" + StateFiles.buildLock)?.starts(with: Data("pid ".utf8)) ?? false else { return .none }
        }
        return recordedOwner(database: path).map(StateDatabase.owned) ?? .ownerless
    }

    /// The first 100 bytes of the state database in `folder` and its owner's uid, when it is a
    /// regular file (never followed through a link) that starts as an SQLite database does.
    /// Read once per `ReadSnapshot` (attack 52c's 1: each sibling's header was read about twice
    /// per no-op, by the state check and by `holdsDeriveState`).
    static func stateDatabaseHeader(in folder: String) -> (header: [UInt8], owner: uid_t)? {
        ReadSnapshot.answer("state database header", folder) { stateDatabaseHeaderReadNow(in: folder) }
    }

    private static func stateDatabaseHeaderReadNow(in folder: String) -> (header: [UInt8], owner: uid_t)? {
        let fd = open(folder + "/" + StateFiles.database, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        var header = [UInt8](repeating: 0, count: 100)
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, pread(fd, &header, 100, 0) == 100,
              header.starts(with: ProjectMarkers.sqliteMagic) else { return nil }
        return (header, info.st_uid)
    }

    /// Whether a state database's header carries Derive's stamp ("DrSt", bytes 68 to 71).
    static func isStampedDerives(_ header: [UInt8]) -> Bool { header[68..<72].elementsEqual(Array("DrSt".utf8)) }

    /// The manifest the owner record of the database at `path` names, nil when it names none.
    static func recordedOwner(database path: String) -> String? {
        recordedOwnerAndPlace(database: path)?.manifest
    }

    /// The owner record of the database at `path`: the manifest it names and where that lies seen
    /// from the state folder (empty in a state from before the place was recorded, whose table
    /// has no such column); nil when it names none. Read as an immutable file: no journal beside
    /// it is looked at or replayed, nothing is locked or written (another build may be writing
    /// it: a torn read names nothing).
    /// Read once per `ReadSnapshot` (two checks of one load asked it of each sibling's state).
    static func recordedOwnerAndPlace(database path: String) -> (manifest: String, place: String)? {
        ReadSnapshot.answer("recorded owner", path) { recordedOwnerAndPlaceReadNow(database: path) }
    }

    private static func recordedOwnerAndPlaceReadNow(database path: String) -> (manifest: String, place: String)? {
        var uri = URLComponents()
        uri.scheme = "file"
        uri.path = path
        uri.queryItems = [URLQueryItem(name: "immutable", value: "1")]
        guard let text = uri.string else { return nil }
        var db: OpaquePointer?
        defer { sqlite3_close(db) }
        guard sqlite3_open_v2(text, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nil) == SQLITE_OK else { return nil }
        var statement: OpaquePointer?
        defer { sqlite3_finalize(statement) }
        let hasPlace = sqlite3_prepare_v2(db, "SELECT manifest, place FROM owner", -1, &statement, nil) == SQLITE_OK
        guard hasPlace || sqlite3_prepare_v2(db, "SELECT manifest FROM owner", -1, &statement, nil) == SQLITE_OK,
              sqlite3_step(statement) == SQLITE_ROW, let owner = sqlite3_column_text(statement, 0) else { return nil }
        let place = hasPlace ? sqlite3_column_text(statement, 1).map { String(cString: $0) } ?? "" : ""
        let name = String(cString: owner)
        return name.isEmpty ? nil : (name, place)
    }
}
