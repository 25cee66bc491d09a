import Foundation
import ImagingCore
import ProcessLanguage

/// What a render worker says about its engine when started with `--describe`: everything a
/// fingerprint records, and the shared objects it mapped, so that derive can keep the answer on
/// disk and ask again only when one of those files (or the worker) changes. derive itself never
/// loads libvips for it.
public struct EngineReport: Sendable, Hashable, Codable {
    public struct Library: Sendable, Hashable, Codable {
        public var name: String
        public var version: String
        public init(name: String, version: String) { self.name = name; self.version = version }
    }

    /// `Engine.version`: the render version and every library's version, as one line.
    public var version: String
    public var renderVersion: String
    public var libvips: String
    /// The encoder settings that are not in pipelines (`Engine.encoderSettings`).
    public var encoderSettings: String
    /// The libraries that produce bytes, libvips first (`Engine.libraryVersions`).
    public var libraries: [Library]
    /// Watermark font `type` → the file fontconfig picks (the seven OSS types and those asked
    /// with `--font`); types whose font is missing are absent.
    public var fonts: [String: String]
    /// Watermark font `type` → how fontconfig says its glyphs are drawn (`FontCatalog.Resolved`):
    /// a configuration file may turn antialiasing off for the same file.
    public var fontRendering: [String: String]
    /// Every file and folder fontconfig's answers depend on (`FontCatalog.configurationPaths`):
    /// the configuration files it loaded, the places its includes name (present or not) and the
    /// font, configuration and cache folders it reads, subfolders included. The engine cache asks
    /// again when one changes, appears or goes.
    public var fontConfigurationPaths: [String]
    /// The libvips shared object the worker mapped (real path), "" when it was not found.
    public var libvipsFile: String
    /// Every shared object mapped after libvips started (its modules included), real paths, sorted.
    public var mappedFiles: [String]
    /// For each `--drawable TYPE TEXT` asked (keyed `EngineReport.drawableKey`): why the text
    /// cannot be drawn in that font (`FontCatalog.checkDrawable`), "" when it can. Nil unless asked
    /// (`derive validate`); optional, so reports kept on disk before it read as they were.
    public var undrawable: [String: String]?
    /// For each `--drawn TYPE TEXT SIZE` asked (keyed `TextToDraw.key`): how the render draws
    /// it (`FontCatalog.drawing`: every face, the environment, or why it cannot). Nil unless
    /// asked; optional, so reports kept before it read as they were.
    public var drawings: [String: TextDrawing]?
    /// For each `--font TYPE` asked whose family is installed but drawn as another (a strong
    /// alias): the family fontconfig draws instead (`FontCatalog.substitute`). Optional, so
    /// reports kept before it read as they were.
    public var fontSubstitutes: [String: String]?

    /// The key of `undrawable` for `text` in the font of `type` (NUL is in neither: both were arguments).
    public static func drawableKey(text: String, type: String) -> String { type + "\u{0}" + text }

    public init(version: String, renderVersion: String, libvips: String, encoderSettings: String, libraries: [Library],
                fonts: [String: String], fontRendering: [String: String] = [:], fontConfigurationPaths: [String] = [],
                libvipsFile: String = "", mappedFiles: [String] = []) {
        self.version = version
        self.renderVersion = renderVersion
        self.libvips = libvips
        self.encoderSettings = encoderSettings
        self.libraries = libraries
        self.fonts = fonts
        self.fontRendering = fontRendering
        self.fontConfigurationPaths = fontConfigurationPaths
        self.libvipsFile = libvipsFile
        self.mappedFiles = mappedFiles
    }

    /// The shared objects this process has mapped (from /proc/self/maps), real paths, sorted.
    static func mappedSharedObjects() -> [String] {
        // Read to the end: procfs files report a size of 0, which whole-file readers trust.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps") else { return [] }
        defer { try? handle.close() }
        let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        var files = Set<String>()
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            guard path.contains(".so") else { continue }
            files.insert(path)
        }
        return files.sorted()
    }
}

/// The engine a `derive-render-worker` runs (Imaging's `Engine`, wired in the executable's
/// main), so that this module, which derive links, does not link libvips.
public struct WorkerEngine: Sendable {
    /// `Engine.version`, sent in every hello.
    public var version: @Sendable () -> String
    /// Starts libvips before the first request.
    public var start: @Sendable () -> Void
    /// The report for `--describe`, without `libvipsFile` and `mappedFiles` (the loop fills them
    /// in); its fonts are the seven OSS types' and those of the font types given.
    public var describe: @Sendable (_ fontTypes: [String]) -> EngineReport
    /// Renders (or only checks, `RenderReach`) with `Engine.render`'s contract.
    public var render: @Sendable (_ source: Data, _ pipeline: Pipeline, _ limits: Limits, _ resolver: any ObjectResolver, _ reach: RenderReach) throws -> RenderOutput
    /// Why `text` cannot be drawn in the font of `type` (`FontCatalog.checkDrawable`), nil when it can.
    public var undrawable: @Sendable (_ text: String, _ type: String) -> String?
    /// How the render draws a text (`FontCatalog.drawing`).
    public var drawing: @Sendable (_ text: TextToDraw) -> TextDrawing

    public init(version: @escaping @Sendable () -> String, start: @escaping @Sendable () -> Void,
                describe: @escaping @Sendable ([String]) -> EngineReport,
                render: @escaping @Sendable (Data, Pipeline, Limits, any ObjectResolver, RenderReach) throws -> RenderOutput,
                undrawable: @escaping @Sendable (String, String) -> String? = { _, _ in nil },
                drawing: @escaping @Sendable (TextToDraw) -> TextDrawing = { _ in TextDrawing(faces: [], environment: "") }) {
        self.version = version
        self.start = start
        self.describe = describe
        self.render = render
        self.undrawable = undrawable
        self.drawing = drawing
    }
}
