import Confinement
import Foundation

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
        public var holder: String
        public var path: String
        public var description: String {
            if holder.hasSuffix(ServeLockFile.cleanNote) {
                return "derive clean (\(holder.dropLast(ServeLockFile.cleanNote.count))) is removing serve's files from this state folder (\(path) is locked); start serve again when it has finished"
            }
            return "another derive serve (\(holder)) uses this state folder (\(path) is locked); stop it, or give this manifest another state folder (state:)"
        }
    }

    public init(stateFolder: String) throws {
        try FileManager.default.createDirectory(atPath: stateFolder, withIntermediateDirectories: true)
        do { file = try ServeLockFile(folder: stateFolder) } catch let failure {  // typed throws: always a ServeLockFile.Failure
            switch failure {
            case .held(let holder, let path): throw Held(holder: holder, path: path)
            case .notDerives: throw ServeSetupError(message: "\(failure) derive serve locks the state folder with that file.")
            }
        }
    }
}
