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
}

extension EngineDescription {
    /// The renderer a server uses when given none: only an engine loaded in this process has
    /// one (`Engine`'s renders on the calling thread); a described engine renders in workers.
    public var inProcessRenderer: (any ImageRenderer)? { nil }
}
