import ArgumentParser
import Imaging

/// Overrides for the engine's source and output limits (defaults are OSS's).
struct LimitOptions: ParsableArguments {
    @Option(name: .long, help: "Largest source, in bytes (default 20971520).")
    var maxBytes: Int?

    @Option(name: .long, help: "Largest source side, in pixels (default 30000).")
    var maxSide: Int?

    @Option(name: .long, help: "Largest source pixel count, frames included (default 250000000).")
    var maxPixels: Int?

    @Option(name: .long, help: "Largest output side, in pixels (default 16384).")
    var maxOutputSide: Int?

    @Option(name: .long, help: "Deadline of one render in seconds; 0 for none (default 20).")
    var renderSeconds: Double?

    @Option(name: .long, help: "Largest work estimate of one render, in units (default 4000000000).")
    var maxWork: Int?

    @Option(name: .long, help: "Largest memory estimate of one render, in bytes (default 402653184).")
    var maxMemory: Int?

    /// The longest deadline accepted (one day): larger values, infinities and NaN would overflow
    /// the timers or silently mean "none" (which is 0).
    static let maxRenderSeconds: Double = 86_400

    /// The largest value any size or count limit takes (the manifest's bound too): larger values
    /// would overflow the sums made from them (the worker's memory cap adds headroom).
    static let maxLimit = Int(Int64.max / 4)

    mutating func validate() throws {
        for (flag, value) in [("--max-bytes", maxBytes), ("--max-side", maxSide), ("--max-pixels", maxPixels),
                              ("--max-output-side", maxOutputSide), ("--max-work", maxWork), ("--max-memory", maxMemory)] {
            if let value, !(1...Self.maxLimit).contains(value) {
                throw ValidationError("\(flag) must be from 1 to \(Self.maxLimit), not \(value)")
            }
        }
        if let renderSeconds, !(renderSeconds >= 0 && renderSeconds <= Self.maxRenderSeconds) {
            throw ValidationError("--render-seconds must be a number of seconds from 0 (no deadline) to 86400, not \(renderSeconds)")
        }
    }

    var limits: Limits {
        Limits(maxBytes: maxBytes, maxSide: maxSide, maxPixels: maxPixels, maxOutputSide: maxOutputSide,
               renderSeconds: renderSeconds, maxWork: maxWork, maxMemory: maxMemory)
    }
}
