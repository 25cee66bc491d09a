import ArgumentParser
import ImagingCore
import ProcessLanguage

/// A limit flag's value, parsed exactly as the manifest's `limits:` values are (LimitNumber).
struct LimitValue: ExpressibleByArgument {
    let value: Int
    /// As written: a number past Int's range is kept saturated and named as written.
    let text: String
    init?(argument: String) {
        if LimitNumber.isOutOfRange(argument) {
            value = argument.hasPrefix("-") ? Int.min : Int.max
        } else {
            guard let value = LimitNumber.parse(argument) else { return nil }
            self.value = value
        }
        text = argument
    }
}

/// Overrides for the engine's source and output limits (defaults are OSS's).
struct LimitOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "Largest source, in bytes (default 20971520).")
    var maxBytes: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Largest source side, in pixels (default 30000).")
    var maxSide: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Largest source pixel count, frames included (default 250000000).")
    var maxPixels: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Largest output side, in pixels (default 16384).")
    var maxOutputSide: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Deadline of one render in whole seconds, 0 to 86400; 0 for none (default 20).")
    var renderSeconds: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Largest work estimate of one render, in units (default 4000000000).")
    var maxWork: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Largest memory estimate of one render, in bytes (default 402653184).")
    var maxMemory: LimitValue?

    /// The longest deadline accepted (one day): larger values, infinities and NaN would overflow
    /// the timers or silently mean "none" (which is 0).
    static let maxRenderSeconds = 86_400

    /// The largest value any size or count limit takes (the manifest's bound too): larger values
    /// would overflow the sums made from them (the worker's memory cap adds headroom).
    static let maxLimit = Int(Int64.max / 4)

    mutating func validate() throws {
        for (flag, value) in [("--max-bytes", maxBytes), ("--max-side", maxSide), ("--max-pixels", maxPixels),
                              ("--max-output-side", maxOutputSide), ("--max-work", maxWork), ("--max-memory", maxMemory)] {
            if let value, !(1...Self.maxLimit).contains(value.value) {
                throw ValidationError("\(flag) must be from 1 to \(Self.maxLimit), not \(value.text)")
            }
        }
        if let seconds = renderSeconds, !(0...Self.maxRenderSeconds).contains(seconds.value) {
            throw ValidationError("--render-seconds must be a whole number of seconds from 0 (no deadline) to 86400, not \(seconds.text)")
        }
    }

    var limits: Limits {
        Limits(maxBytes: maxBytes?.value, maxSide: maxSide?.value, maxPixels: maxPixels?.value, maxOutputSide: maxOutputSide?.value,
               renderSeconds: renderSeconds.map { Double($0.value) }, maxWork: maxWork?.value, maxMemory: maxMemory?.value)
    }
}
