import Foundation
import ProcessLanguage

/// The engine on the calling thread (Imaging's tests, the fuzzer, and tests that need no isolation).
public struct InProcessRenderer: ImageRenderer {
    public init() {}

    public func render(_ source: Data, _ pipeline: Pipeline, limits: Limits, resolver: any ObjectResolver,
                       cancellation: RenderCancellation?) throws -> RenderOutput {
        try Engine(limits: limits).render(source, pipeline, resolver: resolver, cancellation: cancellation)
    }
}
