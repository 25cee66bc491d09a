import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a state folder for one `derive serve`: two servers on one folder would
/// each keep their own table of appendable objects in memory and disagree (attack 11, finding 4).
/// `flock(2)` on `serve.lock` in the state folder (`ServeLockFile`: only Derive's own file is
/// opened or written), held until the process ends; the file says which process holds it.
/// `derive clean` takes it too while it removes serve's files. Builds take `build.lock`, not
/// this one: serve and build may run together.
public final class ServeLock: Sendable {
    private let file: ServeLockFile
    public var path: String { file.path }

    public struct Held: Error, CustomStringConvertible {
        /// The holder `ServeLockFile` names when the state folder's abstract socket is bound.
        static let socketHolder = "a process whose serve.lock was removed while it ran"

        public var holder: String
        public var path: String
        public var description: String {
            if holder.hasSuffix(ServeLockFile.cleanNote) {
                return "derive clean (\(holder.dropLast(ServeLockFile.cleanNote.count))) is removing serve's files from this state folder (\(path) is locked); start serve again when it has finished"
            }
            if holder == Self.socketHolder {
                // What is known: the name is bound, not by whom (abstract names have no owner
                // and may be bound by any local user; attack 14, F5).
                let folder = (path as NSString).deletingLastPathComponent
                var info = stat()
                let name = stat(folder, &info) == 0 ? "derive-serve-state-\(info.st_dev)-\(info.st_ino)" : "derive-serve-state-…"
                return "another process holds this state folder's lock socket (the abstract Unix socket @\(name)): a derive serve whose \(StateFiles.serveLock) was removed while it ran, or another program binding that name; `ss -xlp | grep \(name)` shows its pid. Stop it, or give this manifest another state folder (state:)"
            }
            return "another derive serve (\(holder)) uses this state folder (\(path) is locked); stop it, or give this manifest another state folder (state:)"
        }
    }

    public init(stateFolder: String) throws {
        // Owner-only, as a build makes it (attack 23's F3): it holds renders of private objects.
        do { try StateFiles.createPrivateFolder(stateFolder) } catch {
            throw ServeSetupError(message: "\((error as NSError).localizedDescription); derive serve keeps its cache, uploads and lock there.")
        }
        do { file = try ServeLockFile(folder: stateFolder) } catch let failure {  // typed throws: always a ServeLockFile.Failure
            switch failure {
            case .held(let holder, let path): throw Held(holder: holder, path: path)
            case .notDerives: throw ServeSetupError(message: "\(failure) derive serve locks the state folder with that file.")
            }
        }
        // Held now: no other serve is writing there.
        StateFiles.makeServeEntriesPrivate(in: stateFolder)
    }
}
