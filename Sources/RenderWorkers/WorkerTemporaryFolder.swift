import Foundation
import ImagingCore
#if canImport(Glibc)
import Glibc
#endif

/// A render worker's private temporary folder, and the environment that sends every temporary
/// file of its libraries there and caps ImageMagick (the BMP codec).
///
/// Why: ImageMagick spills its pixel cache to a temporary file when an image passes its memory
/// limit (a 8000×8000 BMP: 640 MB) and unlinks it only when it finishes; a worker killed
/// mid-render (deadline, disconnect, SIGTERM) would leave the file in /tmp for ever. The parent
/// creates `<tmp>/derive-worker.<parent pid>.<n>` before starting the worker and removes it once
/// the worker has ended (exited, crashed or killed); folders of a parent that died are swept
/// when a pool starts.
struct WorkerTemporaryFolder: Sendable {
    static let prefix = "derive-worker."

    /// ImageMagick's caps in the worker (`ImageMagickCaps`, which the engine names when they run out).
    static let imageMagickEnvironment = ImageMagickCaps.environment

    let path: String

    /// The folder under which workers' folders are made: the parent's `TMPDIR`, else /tmp.
    static func base(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let folder = environment["TMPDIR"], folder.hasPrefix("/") {
            return folder.count > 1 && folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        }
        return "/tmp"
    }

    /// Creates a fresh folder (mode 0700) for one worker.
    static func create(base: String = WorkerTemporaryFolder.base()) throws -> WorkerTemporaryFolder {
        for _ in 0..<16 {
            let path = "\(base)/\(prefix)\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            if mkdir(path, 0o700) == 0 { return WorkerTemporaryFolder(path: path) }
            if errno != EEXIST {
                throw WorkerError.launch("cannot create the render worker's temporary folder \(path): \(String(cString: strerror(errno))); set TMPDIR to a writable folder")
            }
        }
        throw WorkerError.launch("cannot create a render worker's temporary folder in \(base)")
    }

    /// The worker's environment: the parent's, with every temporary path pointing here.
    func environment(from parent: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var environment = parent
        for (key, value) in Self.imageMagickEnvironment { environment[key] = value }
        for key in ["TMPDIR", "MAGICK_TMPDIR", "MAGICK_TEMPORARY_PATH"] { environment[key] = path }
        environment[Self.environmentVariable] = path
        return environment
    }

    /// Tells the worker which folder is its own (it empties it if the parent dies first).
    static let environmentVariable = "DERIVE_WORKER_TMPDIR"

    /// Removes the folder and whatever the worker left in it (links are removed, never followed).
    func remove() {
        Self.removeTree(path)
    }

    static func removeTree(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR {
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
                for entry in entries { removeTree(path + "/" + entry) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Removes the folders of every worker this process started, at its exit (`derive serve`
    /// at SIGTERM or SIGINT): one whose worker was killed just before, or raced its own exit,
    /// would stay until the next `derive` swept it.
    static func removeOwn(base: String = WorkerTemporaryFolder.base()) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for entry in entries where entry.hasPrefix("\(prefix)\(getpid()).") {
            var status = stat()
            let path = base + "/" + entry
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR, status.st_uid == getuid() else { continue }
            removeTree(path)
        }
    }

    /// Removes the folders of workers whose parent is no longer running (it was killed before
    /// it could remove them). Only folders owned by this user, named as `create` names them.
    static func sweep(base: String = WorkerTemporaryFolder.base()) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            let parts = entry.dropFirst(prefix.count).split(separator: ".")
            guard parts.count == 2, let parent = pid_t(parts[0]), parent > 0, UInt32(parts[1]) != nil else { continue }
            let alive = kill(parent, 0) == 0 || errno == EPERM
            guard !alive else { continue }
            var status = stat()
            let path = base + "/" + entry
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR, status.st_uid == getuid() else { continue }
            removeTree(path)
        }
    }
}
