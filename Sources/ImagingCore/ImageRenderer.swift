import Foundation
import ProcessLanguage

/// Something that renders a pipeline with the engine's contract: the same output, or the same
/// `ProcessError`, as `Engine.render`. Render workers (module RenderWorkers) run it in child
/// processes; `InProcessRenderer` runs it on the calling thread.
public protocol ImageRenderer: Sendable {
    func render(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver,
                cancellation: RenderCancellation?) throws -> RenderOutput
}

/// The engine on the calling thread (Imaging's tests, the fuzzer, and tests that need no isolation).
public struct InProcessRenderer: ImageRenderer {
    public init() {}

    public func render(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver,
                       cancellation: RenderCancellation?) throws -> RenderOutput {
        try Engine(limits: limits).render(source, pipeline, resolver: resolver, cancellation: cancellation)
    }
}
