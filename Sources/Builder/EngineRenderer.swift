import Foundation
import Imaging
import Manifest
import ProcessLanguage

/// The production renderer: Derive's engine with the manifest's limits.
public struct EngineRenderer: DerivativeRenderer {
    public let engine: Engine

    public init(limits: ManifestLimits) {
        engine = Engine(limits: Limits(maxBytes: limits.bytes, maxSide: limits.side, maxPixels: limits.pixels,
                                       maxOutputSide: limits.outputSide, renderSeconds: limits.renderSeconds.map(Double.init),
                                       maxWork: limits.work, maxMemory: limits.memory))
    }

    public func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered {
        let output = try engine.render(source, pipeline, resolver: FolderResolver(root: bucketPath))
        return Rendered(bytes: output.bytes, width: output.width, height: output.height, format: output.fileExtension)
    }

    public func memoryEstimate(_ source: Data) -> Int { engine.memoryEstimate(source) }
}
