import Confinement
import Foundation
import ImagingCore
import Manifest
import ProcessLanguage

/// The production renderer: Derive's engine with the manifest's limits, run in render worker
/// processes (one per job) so that a deadline is enforced by killing the worker and a crash
/// fails one derivative, never the build.
public struct EngineRenderer: DerivativeRenderer {
    public let limits: Limits
    public let renderer: any ImageRenderer

    public init(limits: ManifestLimits, renderer: any ImageRenderer) {
        self.limits = Limits(maxBytes: limits.bytes, maxSide: limits.side, maxPixels: limits.pixels,
                             maxOutputSide: limits.outputSide, renderSeconds: limits.renderSeconds.map(Double.init),
                             maxWork: limits.work, maxMemory: limits.memory, setBy: .manifest)
        self.renderer = renderer
    }

    public func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered {
        let output = try renderer.render(source, pipeline, limits: limits, resolver: ConfinedResolver(root: bucketPath, limits: limits),
                                         cancellation: nil)
        return Rendered(bytes: output.bytes, width: output.width, height: output.height, format: output.fileExtension)
    }

    public var maxSourceBytes: Int { limits.maxBytes }

    public func sourceTooLarge(_ size: Int) -> any Error {
        do { try limits.checkBytes(size) } catch { return error }
        return ProcessError(.imageTooLarge, "the source is over \(limits.maxBytes) bytes")
    }

    public func maxSourceBytes(_ pipeline: Pipeline, bucketPath: String) throws -> Int {
        try inputs(pipeline, bucketPath: bucketPath).maxSourceBytes
    }

    public func sourceTooLarge(_ size: Int, name: String, pipeline: Pipeline, bucketPath: String) -> any Error {
        do { return try inputs(pipeline, bucketPath: bucketPath).sourceRefusal(name, bytes: size) } catch { return error }
    }

    /// The render's watermark images, sized from their files (nothing read).
    private func inputs(_ pipeline: Pipeline, bucketPath: String) throws -> RenderInputs {
        try RenderInputs(pipeline, resolver: ConfinedResolver(root: bucketPath, limits: limits), limits: limits)
    }

    /// From the header, read here without libvips (derive does not load it).
    public func memoryEstimate(_ source: Data) -> Int { SourceHeader.memoryEstimate(source) }
}

/// Watermark objects read from the source bucket's folder without following any link below it.
struct ConfinedResolver: ObjectResolver {
    let root: String
    /// An object over the byte limit is refused from its size (ImageTooLarge), never read.
    let limits: Limits

    func object(_ key: String) throws -> Data {
        let objectKey: ObjectKey
        do { objectKey = try ObjectKey(key) } catch {
            throw ProcessError(.watermarkError, "watermark: the object key '\(key)' is not a key inside the bucket: \(error)",
                               action: "watermark", parameter: "image")
        }
        do {
            return try ConfinedFolder(path: root).read(objectKey, maxBytes: limits.maxBytes)
        } catch ConfinementError.tooLarge(_, let size, _) {
            try limits.checkWatermark(key, bytes: size, width: 0, height: 0)
            throw ProcessError(.imageTooLarge, ec: "0040-00000012", "watermark: the image '\(key)' is over \(limits.maxBytes) bytes",
                               action: "watermark", parameter: "image")
        } catch {
            throw ProcessError(.watermarkError, ec: "0040-00000024", "watermark: the object \(error)", action: "watermark", parameter: "image")
        }
    }

    func objectSize(_ key: String) -> Int? {
        guard let objectKey = try? ObjectKey(key), let folder = try? ConfinedFolder(path: root) else { return nil }
        return folder.status(objectKey).map { Int($0.size) }
    }
}
