import Foundation
import ProcessLanguage

/// Something that renders a pipeline with the engine's contract: the same output, or the same
/// `ProcessError`, as `Engine.render`. Render workers (module RenderWorkers) run it in child
/// processes; `InProcessRenderer` (Imaging) runs it on the calling thread.
public protocol ImageRenderer: Sendable {
    func render(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver,
                cancellation: RenderCancellation?) throws -> RenderOutput
}
