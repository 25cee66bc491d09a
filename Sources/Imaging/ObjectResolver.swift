import Foundation
import ProcessLanguage

/// Where a pipeline reads other objects of the bucket (watermark images).
public protocol ObjectResolver: Sendable {
    func object(_ key: String) throws -> Data
}

/// Objects are files below a folder (`derive process --bucket-root DIR`, a manifest's bucket).
public struct FolderResolver: ObjectResolver {
    public let root: String

    public init(root: String) { self.root = root }

    public func object(_ key: String) throws -> Data {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !key.hasPrefix("/"), !key.contains("\0"), !parts.contains(where: { $0 == ".." || $0 == "." }) else {
            throw ProcessError(.watermarkError, "watermark: the object key '\(key)' is not a key inside the bucket", action: Watermark.name, parameter: "image")
        }
        guard let data = FileManager.default.contents(atPath: root + "/" + key) else {
            throw ProcessError(.watermarkError, ec: "0040-00000024", "watermark: the object '\(key)' does not exist in the bucket", action: Watermark.name, parameter: "image")
        }
        return data
    }
}

/// For renders without a bucket: any object read is an error that says how to give one.
public struct NoObjects: ObjectResolver {
    public init() {}
    public func object(_ key: String) throws -> Data {
        throw ProcessError(.watermarkError, "watermark: the image '\(key)' is another object of the bucket; give the bucket's folder (derive process --bucket-root DIR)",
                           action: Watermark.name, parameter: "image")
    }
}
