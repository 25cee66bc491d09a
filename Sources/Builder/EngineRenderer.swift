import Confinement
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
        let output = try engine.render(source, pipeline, resolver: ConfinedResolver(root: bucketPath))
        return Rendered(bytes: output.bytes, width: output.width, height: output.height, format: output.fileExtension)
    }

    public func memoryEstimate(_ source: Data) -> Int { engine.memoryEstimate(source) }
}

/// Watermark objects read from the source bucket's folder without following any link below it.
struct ConfinedResolver: ObjectResolver {
    let root: String

    func object(_ key: String) throws -> Data {
        let objectKey: ObjectKey
        do { objectKey = try ObjectKey(key) } catch {
            throw ProcessError(.watermarkError, "watermark: the object key '\(key)' is not a key inside the bucket: \(error)",
                               action: "watermark", parameter: "image")
        }
        do {
            return try ConfinedFolder(path: root).read(objectKey)
        } catch {
            throw ProcessError(.watermarkError, ec: "0040-00000024", "watermark: the object \(error)", action: "watermark", parameter: "image")
        }
    }
}
