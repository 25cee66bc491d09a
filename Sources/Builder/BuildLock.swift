import Foundation
import Confinement
import Planner
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a state folder, so two builds never write the same state. The file
/// says who holds it; a second build exits at once naming the holder.
public final class BuildLock {
    private let descriptor: Int32
    public let path: String
    public static let fileName = StateFiles.buildLock

    public struct Held: Error, CustomStringConvertible {
        public var holder: String
        public var description: String { "another build holds the lock on this state: \(holder)" }
    }

    public init(folder: String) throws {
        try StateOwnership.check(folder: folder)   // never write over, or later delete, a user's files
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/" + Self.fileName
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot open \(path): \(String(cString: strerror(errno)))"])
        }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        guard fcntl(descriptor, F_SETLK, &lock) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(descriptor)
            throw Held(holder: holder?.isEmpty == false ? holder! : "unknown process")
        }
        let host = ProcessInfo.processInfo.hostName
        let text = "pid \(getpid()) on \(host), since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(descriptor, 0)
        _ = text.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    /// The holder's line stays after release (closing drops the lock): the file stays
    /// recognisably Derive's, and the line is only ever shown while someone holds the lock.
    deinit {
        close(descriptor)
    }
}
