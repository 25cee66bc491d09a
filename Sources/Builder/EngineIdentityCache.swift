import Foundation
import ImagingCore
import Planner
import RenderWorkers
#if canImport(Glibc)
import Glibc
#endif

/// The engine's identity without loading libvips in derive: `derive-render-worker --describe`
/// reports it, and the answer is kept on disk, keyed by the identity (path, device, inode, size,
/// mtime, ctime) of the worker executable, of every shared object it mapped (libvips, its
/// modules and codec libraries), of the font files it named, of every configuration file
/// fontconfig loaded or looked for (an include not there yet), of the user's configuration places
/// (present or not) and of every font, configuration and cache folder fontconfig reads, each
/// subfolder of a font folder included (a font added anywhere in one changes its folder's stat). Any of those changing asks the worker again; so does a
/// different `LD_LIBRARY_PATH`, `LD_PRELOAD`, `FONTCONFIG_*`, `HOME`, `XDG_*_HOME`, locale or
/// `FREETYPE_PROPERTIES` (`TextDrawing.environmentVariables`). When in
/// doubt, it asks. The answer names how each font is drawn too (`FontCatalog.Resolved`), so a
/// configuration that turns antialiasing off changes the fingerprint of text watermarks.
///
/// The identity also holds the SHA-256 of the libvips file (`libvips-file` among the
/// libraries), so a rebuilt or patched libvips with the same version number still changes every
/// fingerprint.
public enum EngineIdentityCache {
    /// The cache folder; empty or `off` keeps nothing (every command asks the worker).
    public static let environmentVariable = "DERIVE_ENGINE_CACHE"
    /// 4: the stamps cover every include target and every font subfolder (attack 30, finding 1).
    static let format = 4

    /// What `lookup` found: the worker's report, the libvips file's digest, and whether the
    /// answer came from disk (no worker was started).
    public struct Found: Sendable {
        public var report: EngineReport
        public var libvipsDigest: String
        public var fromCache: Bool
        /// Font files of types the report does not name, asked of the same worker when needed.
        public var fonts: WorkerFonts
        /// What the answer was read against: the stat of every file and folder it depends on
        /// (the worker, its libraries, fonts, fontconfig's configuration). A long-lived process
        /// (watch) that looks the engine up again compares it to know whether anything changed,
        /// even a configuration the seven OSS fonts' report does not show.
        public var inputs: String = ""
        /// The stat of each of those files and folders, as the answer was read against them.
        var stamps: [Stamp] = []

        /// Whether every file and folder the answer depends on still has the stat it had: one
        /// stat each, no cache file read, no worker. A long-lived server (`derive serve`) asks
        /// this every few seconds and looks the engine up again only when it is false.
        public var isCurrent: Bool { stamps.allSatisfy { Stamp($0.path) == $0 } }

        /// Whether `other` is another engine, or was read against other files.
        public func differs(from other: Found) -> Bool {
            report != other.report || libvipsDigest != other.libvipsDigest || inputs != other.inputs
        }

        /// The engine part of every fingerprint.
        public var identity: EngineIdentity {
            var libraries: [String: String] = [:]
            for library in report.libraries where libraries[library.name] == nil { libraries[library.name] = library.version }
            libraries["libvips-file"] = "sha256-" + libvipsDigest
            let fonts = self.fonts
            return EngineIdentity(renderVersion: report.renderVersion, libvips: report.libvips, encoder: report.encoderSettings,
                                  libraries: libraries, fontFile: { fonts.file($0) }, fontRendering: { fonts.rendering($0) },
                                  textDrawing: { fonts.drawing($0) })
        }
    }

    /// One file's identity as stat(2) gives it; `missing` when there is no such file.
    struct Stamp: Equatable, Sendable {
        var path: String
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var size: Int64 = -1
        var modified: [Int] = []
        var changed: [Int] = []

        init(path: String, device: UInt64, inode: UInt64, size: Int64, modified: [Int], changed: [Int]) {
            self.path = path; self.device = device; self.inode = inode; self.size = size; self.modified = modified; self.changed = changed
        }

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

    struct Entry {
        var format: Int
        var stamps: [Stamp]
        var report: EngineReport
        var libvipsDigest: String

        /// The file's bytes: a header line, then numbers and length-prefixed strings, one a line.
        /// Not JSON: `JSONDecoder` took 13 of the 24 million instructions of `derive --version`
        /// (every command reads this file) for 150 stamps; this reads in a few hundred thousand.
        var encoded: Data {
            var out = EntryWriter()
            out.line(Array(EngineIdentityCache.header.utf8))
            out.number(format)
            out.string(libvipsDigest)
            out.number(stamps.count)
            for stamp in stamps {
                out.string(stamp.path)
                out.number(Int(bitPattern: UInt(stamp.device))); out.number(Int(bitPattern: UInt(stamp.inode))); out.number(Int(stamp.size))
                out.numbers(stamp.modified); out.numbers(stamp.changed)
            }
            out.string(report.version); out.string(report.renderVersion); out.string(report.libvips)
            out.string(report.encoderSettings)
            out.number(report.libraries.count)
            for library in report.libraries { out.string(library.name); out.string(library.version) }
            out.number(report.fonts.count)
            for (type, file) in report.fonts.sorted(by: { $0.key < $1.key }) { out.string(type); out.string(file) }
            out.number(report.fontRendering.count)
            for (type, rendering) in report.fontRendering.sorted(by: { $0.key < $1.key }) { out.string(type); out.string(rendering) }
            out.number(report.fontConfigurationPaths.count)
            for file in report.fontConfigurationPaths { out.string(file) }
            out.string(report.libvipsFile)
            out.number(report.mappedFiles.count)
            for file in report.mappedFiles { out.string(file) }
            return Data(out.bytes)
        }

        /// The entry in `data`, or nil for anything else (another format, a truncated or garbled
        /// file): the caller then asks the worker.
        init?(_ data: Data) {
            var input = EntryReader(bytes: [UInt8](data))
            guard let header = input.line(), header.elementsEqual(EngineIdentityCache.header.utf8), let format = input.number(), let digest = input.string(),
                  let count = input.count() else { return nil }
            var stamps: [Stamp] = []
            stamps.reserveCapacity(count)
            for _ in 0..<count {
                guard let path = input.string(), let device = input.number(), let inode = input.number(), let size = input.number(),
                      let modified = input.numbers(), let changed = input.numbers() else { return nil }
                stamps.append(Stamp(path: path, device: UInt64(UInt(bitPattern: device)), inode: UInt64(UInt(bitPattern: inode)),
                                    size: Int64(size), modified: modified, changed: changed))
            }
            guard let version = input.string(), let renderVersion = input.string(), let libvips = input.string(),
                  let encoder = input.string(), let libraryCount = input.count() else { return nil }
            var libraries: [EngineReport.Library] = []
            for _ in 0..<libraryCount {
                guard let name = input.string(), let libraryVersion = input.string() else { return nil }
                libraries.append(EngineReport.Library(name: name, version: libraryVersion))
            }
            guard let fontCount = input.count() else { return nil }
            var fonts: [String: String] = [:]
            for _ in 0..<fontCount {
                guard let type = input.string(), let file = input.string() else { return nil }
                fonts[type] = file
            }
            guard let renderingCount = input.count() else { return nil }
            var rendering: [String: String] = [:]
            for _ in 0..<renderingCount {
                guard let type = input.string(), let text = input.string() else { return nil }
                rendering[type] = text
            }
            guard let configurationCount = input.count() else { return nil }
            var configuration: [String] = []
            for _ in 0..<configurationCount {
                guard let file = input.string() else { return nil }
                configuration.append(file)
            }
            guard let libvipsFile = input.string(), let mappedCount = input.count() else { return nil }
            var mapped: [String] = []
            for _ in 0..<mappedCount {
                guard let file = input.string() else { return nil }
                mapped.append(file)
            }
            guard input.atEnd else { return nil }
            self.init(format: format, stamps: stamps,
                      report: EngineReport(version: version, renderVersion: renderVersion, libvips: libvips, encoderSettings: encoder,
                                           libraries: libraries, fonts: fonts, fontRendering: rendering,
                                           fontConfigurationPaths: configuration, libvipsFile: libvipsFile, mappedFiles: mapped),
                      libvipsDigest: digest)
        }

        init(format: Int, stamps: [Stamp], report: EngineReport, libvipsDigest: String) {
            self.format = format; self.stamps = stamps; self.report = report; self.libvipsDigest = libvipsDigest
        }
    }

    /// The first line of a cache file; another line is another format (a miss).
    static let header = "derive-engine-cache"

    /// `Found.inputs` for these stamps.
    static func inputs(_ stamps: [Stamp]) -> String {
        var out = EntryWriter()
        for stamp in stamps {
            out.string(stamp.path)
            out.number(Int(bitPattern: UInt(stamp.device))); out.number(Int(bitPattern: UInt(stamp.inode))); out.number(Int(stamp.size))
            out.numbers(stamp.modified); out.numbers(stamp.changed)
        }
        return ContentDigests.digest(Data(out.bytes))
    }

    /// Where fontconfig looks for configuration, fonts and its caches: a font installed or
    /// removed changes one of these folders (fc-cache rewrites its cache files).
    static func fontFolders(_ environment: [String: String]) -> [String] {
        var folders = ["/etc/fonts", "/etc/fonts/conf.d", "/var/cache/fontconfig", "/usr/share/fonts", "/usr/local/share/fonts"]
        if let home = environment["HOME"], !home.isEmpty {
            folders += [home + "/.fonts", home + "/.local/share/fonts", home + "/.cache/fontconfig"]
        }
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty { folders.append(cache + "/fontconfig") }
        // Debian's 50-user.conf reads fonts from `$XDG_DATA_HOME/fonts` when it is set.
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { folders.append(data + "/fonts") }
        return folders
    }

    /// Where a user's fontconfig configuration may be, whether it is there or not (Debian's
    /// `50-user.conf` reads these): creating one must ask the worker again (attack 20's B1).
    static func userConfiguration(_ environment: [String: String]) -> [String] {
        var places: [String] = []
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty {
            places += [config + "/fontconfig", config + "/fontconfig/fonts.conf", config + "/fontconfig/conf.d"]
        }
        if let home = environment["HOME"], !home.isEmpty {
            places += [home + "/.config/fontconfig", home + "/.config/fontconfig/fonts.conf", home + "/.config/fontconfig/conf.d",
                       home + "/.fonts.conf", home + "/.fonts.conf.d"]
        }
        places += ["/etc/fonts/fonts.conf", "/etc/fonts/local.conf"]
        return places
    }

    /// The engine of the worker `executable` (default: the one beside derive), from the cache
    /// when nothing it depends on changed. `environment` is the worker's (tests: a copied libvips).
    public static func lookup(executable: String? = nil,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Found {
        let worker = try executable ?? WorkerLocation.find(environment: environment)
        let file = cacheFile(worker: worker, environment: environment)
        if let file, let data = FileManager.default.contents(atPath: file),
           let entry = Entry(data), entry.format == format,
           entry.stamps.allSatisfy({ Stamp($0.path) == $0 }) {
            let read = inputs(entry.stamps)
            return Found(report: entry.report, libvipsDigest: entry.libvipsDigest, fromCache: true,
                         fonts: WorkerFonts(worker: worker, environment: environment, known: entry.report.fonts,
                                            rendering: entry.report.fontRendering, store: file + ".fallbacks", inputs: read),
                         inputs: read, stamps: entry.stamps)
        }
        // Stamps first: a file changing while the worker reports makes the entry stale, not wrong.
        let before = Stamp(worker)
        let report = try RenderWorkerPool.describe(executable: worker, environment: environment)
        guard !report.libvipsFile.isEmpty, let libvips = FileManager.default.contents(atPath: report.libvipsFile) else {
            throw EngineLookupError(message: "the render worker \(worker) did not name a readable libvips file ('\(report.libvipsFile)'); reinstall derive-render-worker and libvips")
        }
        let digest = ContentDigests.digest(libvips)
        let paths = report.mappedFiles + report.fonts.values.sorted() + fontFolders(environment)
            + report.fontConfigurationPaths + userConfiguration(environment)
        let stamps = [before] + paths.map(Stamp.init)
        if let file, Stamp(worker) == before, Stamp(report.libvipsFile) == stamps.first(where: { $0.path == report.libvipsFile }) {
            save(Entry(format: format, stamps: stamps, report: report, libvipsDigest: digest), to: file)
        }
        // Fallback answers kept only against an entry that was saved (its stamps are the inputs).
        let read = inputs(stamps)
        return Found(report: report, libvipsDigest: digest, fromCache: false,
                     fonts: WorkerFonts(worker: worker, environment: environment, known: report.fonts, rendering: report.fontRendering,
                                        store: file.map { $0 + ".fallbacks" }, inputs: read),
                     inputs: read, stamps: stamps)
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
        // The locale and FreeType's properties too: the kept drawings of texts depend on them (attack 50b's H4, M1).
        let decisive = ["LD_LIBRARY_PATH", "LD_PRELOAD", "FONTCONFIG_FILE", "FONTCONFIG_PATH", "FONTCONFIG_SYSROOT", "HOME", "XDG_CACHE_HOME",
                        "XDG_CONFIG_HOME", "XDG_DATA_HOME"].map { "\($0)=\(environment[$0] ?? "")" }
            + [TextDrawing.environmentWords(environment)]
        let key = ContentDigests.digest(([worker] + decisive).joined(separator: "\n"))
        return folder + "/engine-" + key.prefix(32) + ".cache"
    }

    /// Written to a fresh file and renamed over the old one; a failure only costs the next
    /// command a worker start.
    static func save(_ entry: Entry, to file: String) {
        let folder = (file as NSString).deletingLastPathComponent
        guard StateFolderTrust.isOwnFolder(folder),   // never in another user's home (`sudo -E`: attack 18's S10)
              (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil else { return }
        let data = entry.encoded
        let temporary = file + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, file) != 0 { unlink(temporary) }
    }
}

public struct EngineLookupError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Writes an engine cache entry: each value on its own line, strings as their byte count then
/// their bytes (so any byte, a newline included, round-trips).
struct EntryWriter {
    var bytes: [UInt8] = []

    mutating func line(_ text: [UInt8]) { bytes.append(contentsOf: text); bytes.append(0x0A) }
    mutating func number(_ value: Int) { line(Array(String(value).utf8)) }
    mutating func numbers(_ values: [Int]) { number(values.count); for value in values { number(value) } }
    mutating func string(_ text: String) { number(text.utf8.count); line(Array(text.utf8)) }
}

/// Reads what `EntryWriter` wrote; every method returns nil at anything unexpected.
struct EntryReader {
    let bytes: [UInt8]
    var position = 0

    var atEnd: Bool { position == bytes.count }

    mutating func line() -> ArraySlice<UInt8>? {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { return nil }
        defer { position = end + 1 }
        return bytes[position..<end]
    }

    mutating func number() -> Int? {
        guard let text = line(), !text.isEmpty, text.count <= 20 else { return nil }
        return Self.decimal(text)
    }

    /// `Int(String(decoding: text, as: UTF8.self))` read from the bytes: an optional `+` or `-`,
    /// then one or more ASCII digits, nil on anything else or beyond `Int`'s range. The String
    /// and the standard parser made a tenth of `derive --version` (every command reads about
    /// 1 000 numbers here; issue 15). `EngineCacheNumberTests` compares it with `Int(_:)`.
    static func decimal(_ text: ArraySlice<UInt8>) -> Int? {
        var digits = text
        var negative = false
        if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int(byte &- UInt8(ascii: "0"))
            let (shifted, over) = value.multipliedReportingOverflow(by: 10)
            // Accumulated with the sign, so Int.min reads as it is written.
            let (next, out) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !over, !out else { return nil }
            value = next
        }
        return value
    }

    /// A count of items that follow, each at least one line: never more than the lines left.
    mutating func count() -> Int? {
        guard let value = number(), value >= 0, value <= bytes.count - position else { return nil }
        return value
    }

    mutating func numbers() -> [Int]? {
        guard let count = count() else { return nil }
        var values: [Int] = []
        for _ in 0..<count {
            guard let value = number() else { return nil }
            values.append(value)
        }
        return values
    }

    mutating func string() -> String? {
        guard let count = count(), count < bytes.count - position, bytes[position + count] == 0x0A else { return nil }
        defer { position += count + 1 }
        return String(decoding: bytes[position..<(position + count)], as: UTF8.self)
    }
}
