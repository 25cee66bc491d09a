import Foundation

/// What a server needs to know of the engine without loading it: the limits renders run with,
/// the version every cache key records, and the font file behind a text watermark's `type`.
/// `Engine` (Imaging) describes itself; `derive serve` uses what its render worker reported.
public protocol EngineDescription: Sendable {
    var limits: Limits { get }
    /// Derive's render version, every library that produces bytes and the encoder settings:
    /// what a rendered result depends on besides its pipeline and inputs.
    var identity: String { get }
    /// The font file for a watermark `type`, nil when it is not installed.
    func fontFile(_ type: String) -> String?
    /// How that font's glyphs are drawn (`FontCatalog.Resolved.rendering`), nil when unknown.
    func fontRendering(_ type: String) -> String?
    /// Renders on the calling thread, when this engine is loaded in the process (else nil).
    var inProcessRenderer: (any ImageRenderer)? { get }
    /// The description in force now, taken once per request so that its cache key and its render
    /// agree. A long-lived server's engine can change under it (a fontconfig file written, a
    /// library upgraded): `derive serve` looks it up again every few seconds. A fixed engine is itself.
    func current() -> any EngineDescription
    /// Counts the changes of `current()`: a render keyed under one description is kept in a cache
    /// only when the same one is still in force after the render (it may have run on a worker
    /// started after the change). 0 for a fixed engine.
    var generation: Int { get }
}

extension EngineDescription {
    /// The renderer a server uses when given none: only an engine loaded in this process has
    /// one (`Engine`'s renders on the calling thread); a described engine renders in workers.
    public var inProcessRenderer: (any ImageRenderer)? { nil }
    public func current() -> any EngineDescription { self }
    public var generation: Int { 0 }
}
