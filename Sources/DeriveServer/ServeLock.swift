import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a state folder for one `derive serve`: two servers on one folder would
/// each keep their own table of appendable objects in memory and disagree (attack 11, finding 4).
/// `flock(2)` on `serve.lock` in the state folder, held until the process ends; the file says
/// which process holds it. Builds take `build.lock`, not this one: serve and build may run together.
public final class ServeLock: Sendable {
    private let descriptor: Int32
    public let path: String

    public struct Held: Error, CustomStringConvertible {
        public var holder: String
        public var path: String
        public var description: String {
            "another derive serve (\(holder)) uses this state folder (\(path) is locked); stop it, or give this manifest another state folder (state:)"
        }
    }

    public init(stateFolder: String) throws {
        try FileManager.default.createDirectory(atPath: stateFolder, withIntermediateDirectories: true)
        path = stateFolder + "/" + StateFiles.serveLock
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
            throw ServeSetupError(message: "cannot open \(path) (\(reason)); derive serve locks the state folder with that file. Remove what is there.")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ServeSetupError(message: "\(path) is not a regular file; derive serve locks the state folder with that file. Remove what is there.")
        }
        var result: Int32
        repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        guard result == 0 else {
            var text = [UInt8](repeating: 0, count: 256)
            let count = pread(fd, &text, text.count, 0)
            close(fd)
            let holder = String(decoding: text.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Held(holder: holder.isEmpty ? "a process that has not written its pid yet" : holder, path: path)
        }
        let line = Array("pid \(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
