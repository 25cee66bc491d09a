import Foundation
import Planner
import RenderWorkers
#if canImport(Glibc)
import Glibc
#endif

/// The engine's identity without loading libvips in derive: `derive-render-worker --describe`
/// reports it, and the answer is kept on disk, keyed by the identity (path, device, inode, size,
/// mtime, ctime) of the worker executable, of every shared object it mapped (libvips, its
/// modules and codec libraries), of the font files it named and of fontconfig's configuration
/// and cache folders. Any of those changing asks the worker again; so does a different
/// `LD_LIBRARY_PATH`, `LD_PRELOAD`, `FONTCONFIG_*` or `HOME`. When in doubt, it asks.
///
/// The identity also holds the SHA-256 of the libvips file (`libvips-file` among the
/// libraries), so a rebuilt or patched libvips with the same version number still changes every
/// fingerprint.
public enum EngineIdentityCache {
    /// The cache folder; empty or `off` keeps nothing (every command asks the worker).
    public static let environmentVariable = "DERIVE_ENGINE_CACHE"
    static let format = 1

    /// What `lookup` found: the worker's report, the libvips file's digest, and whether the
    /// answer came from disk (no worker was started).
    public struct Found: Sendable {
        public var report: EngineReport
        public var libvipsDigest: String
        public var fromCache: Bool
        /// Font files of types the report does not name, asked of the same worker when needed.
        public var fonts: WorkerFonts

        /// The engine part of every fingerprint.
        public var identity: EngineIdentity {
            var libraries: [String: String] = [:]
            for library in report.libraries where libraries[library.name] == nil { libraries[library.name] = library.version }
            libraries["libvips-file"] = "sha256-" + libvipsDigest
            let fonts = self.fonts
            return EngineIdentity(renderVersion: report.renderVersion, libvips: report.libvips, encoder: report.encoderSettings,
                                  libraries: libraries, fontFile: { fonts.file($0) })
        }
    }

    /// One file's identity as stat(2) gives it; `missing` when there is no such file.
    struct Stamp: Codable, Equatable {
        var path: String
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var size: Int64 = -1
        var modified: [Int] = []
        var changed: [Int] = []

        init(_ path: String) {
            self.path = path
            var info = stat()
            guard stat(path, &info) == 0 else { return }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = [info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
            changed = [info.st_ctim.tv_sec, info.st_ctim.tv_nsec]
        }
    }

    struct Entry: Codable {
        var format: Int
        var stamps: [Stamp]
        var report: EngineReport
        var libvipsDigest: String
    }

    /// Where fontconfig looks for configuration, fonts and its caches: a font installed or
    /// removed changes one of these folders (fc-cache rewrites its cache files).
    static func fontFolders(_ environment: [String: String]) -> [String] {
        var folders = ["/etc/fonts", "/etc/fonts/conf.d", "/var/cache/fontconfig", "/usr/share/fonts", "/usr/local/share/fonts"]
        if let home = environment["HOME"], !home.isEmpty {
            folders += [home + "/.fonts", home + "/.local/share/fonts", home + "/.cache/fontconfig"]
        }
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty { folders.append(cache + "/fontconfig") }
        return folders
    }

    /// The engine of the worker `executable` (default: the one beside derive), from the cache
    /// when nothing it depends on changed. `environment` is the worker's (tests: a copied libvips).
    public static func lookup(executable: String? = nil,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Found {
        let worker = try executable ?? WorkerLocation.find(environment: environment)
        let file = cacheFile(worker: worker, environment: environment)
        if let file, let data = FileManager.default.contents(atPath: file),
           let entry = try? JSONDecoder().decode(Entry.self, from: data), entry.format == format,
           entry.stamps.allSatisfy({ Stamp($0.path) == $0 }) {
            return Found(report: entry.report, libvipsDigest: entry.libvipsDigest, fromCache: true,
                         fonts: WorkerFonts(worker: worker, environment: environment, known: entry.report.fonts))
        }
        // Stamps first: a file changing while the worker reports makes the entry stale, not wrong.
        let before = Stamp(worker)
        let report = try RenderWorkerPool.describe(executable: worker, environment: environment)
        guard !report.libvipsFile.isEmpty, let libvips = FileManager.default.contents(atPath: report.libvipsFile) else {
            throw EngineLookupError(message: "the render worker \(worker) did not name a readable libvips file ('\(report.libvipsFile)'); reinstall derive-render-worker and libvips")
        }
        let digest = ContentDigests.digest(libvips)
        let paths = report.mappedFiles + report.fonts.values.sorted() + fontFolders(environment)
        let stamps = [before] + paths.map(Stamp.init)
        if let file, Stamp(worker) == before, Stamp(report.libvipsFile) == stamps.first(where: { $0.path == report.libvipsFile }) {
            save(Entry(format: format, stamps: stamps, report: report, libvipsDigest: digest), to: file)
        }
        return Found(report: report, libvipsDigest: digest, fromCache: false,
                     fonts: WorkerFonts(worker: worker, environment: environment, known: report.fonts))
    }

    /// The cache file for this worker and the environment that decides what it loads; nil when
    /// caching is off or there is no folder for it.
    static func cacheFile(worker: String, environment: [String: String]) -> String? {
        let folder: String
        if let chosen = environment[environmentVariable] {
            guard !chosen.isEmpty, chosen != "off" else { return nil }
            folder = chosen
        } else if let cache = environment["XDG_CACHE_HOME"], cache.hasPrefix("/") {
            folder = cache + "/derive"
        } else if let home = environment["HOME"], home.hasPrefix("/") {
            folder = home + "/.cache/derive"
        } else {
            return nil
        }
        let decisive = ["LD_LIBRARY_PATH", "LD_PRELOAD", "FONTCONFIG_FILE", "FONTCONFIG_PATH", "FONTCONFIG_SYSROOT", "HOME", "XDG_CACHE_HOME"]
            .map { "\($0)=\(environment[$0] ?? "")" }
        let key = ContentDigests.digest(([worker] + decisive).joined(separator: "\n"))
        return folder + "/engine-" + key.prefix(32) + ".json"
    }

    /// Written to a fresh file and renamed over the old one; a failure only costs the next
    /// command a worker start.
    static func save(_ entry: Entry, to file: String) {
        let folder = (file as NSString).deletingLastPathComponent
        guard (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil,
              let data = try? JSONEncoder().encode(entry) else { return }
        let temporary = file + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, file) != 0 { unlink(temporary) }
    }
}

public struct EngineLookupError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
