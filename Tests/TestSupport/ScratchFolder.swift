import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fresh folder for one test's project, two levels below a folder of its own in the temporary
/// directory: `/tmp/<prefix>-<uuid>/p/<prefix>`.
///
/// Why so deep: a derive run looks for other projects near its manifest (the direct sub-folders
/// of the manifest's parent folder and of the one above it, up to 64 manifests read:
/// `ForeignProjectFiles.nearbyHeight`). A test project made directly in `/tmp` had every other
/// test's project as a neighbour, so each of the suite's thousands of runs listed `/tmp` and
/// loaded 64 foreign manifests: most of a debug validation's time, and a test's outcome could
/// depend on what another test left there. At this depth the folders a run scans hold only this
/// test's own files.
///
/// The test removes the folder it was given (as before); the two empty folders above it are
/// removed when the test process exits (only if empty: a folder a test left on purpose stays).
public enum ScratchFolder {
    public static func make(_ prefix: String) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        let folder = root.appendingPathComponent("p").appendingPathComponent(prefix)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        made.withLock { $0.append(root.path) }
        registerCleanup
        return folder
    }

    /// `make` as a path.
    public static func path(_ prefix: String) throws -> String { try make(prefix).path }

    private static let made = Mutex<[String]>([])

    private static let registerCleanup: Void = {
        atexit { ScratchFolder.removeEmptyRoots() }
    }()

    static func removeEmptyRoots() {
        for root in made.withLock({ $0 }) {
            rmdir(root + "/p")
            rmdir(root)
        }
    }
}

/// A value behind a lock (the standard library's `Mutex` needs a newer deployment target here).
final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
