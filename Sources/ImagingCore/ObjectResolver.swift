import Confinement
import Foundation
import ProcessLanguage

/// Where a pipeline reads other objects of the bucket (watermark images).
public protocol ObjectResolver: Sendable {
    func object(_ key: String) throws -> Data
    /// The object's size from its file, nothing read (`RenderInputs` checks a render's inputs
    /// together with it); nil when unknown, or when there is no such object.
    func objectSize(_ key: String) -> Int?
}

extension ObjectResolver {
    public func objectSize(_ key: String) -> Int? { nil }
}

/// Objects are files below a folder (`derive process --bucket-root DIR`, a manifest's bucket),
/// reached by `Confinement`: the key is validated as bytes and every segment is opened with
/// openat/O_NOFOLLOW from the folder's descriptor, so a symbolic link inside the folder is never
/// followed out of it (or anywhere).
public struct FolderResolver: ObjectResolver {
    public let root: String
    /// The render's limits: an object is refused over `maxBytes` before it is read.
    public var limits: Limits
    /// Largest object read, in bytes (the source limit).
    public var maxBytes: Int { limits.maxBytes }

    public init(root: String, limits: Limits = .oss) {
        self.root = root
        self.limits = limits
    }

    public func object(_ key: String) throws -> Data {
        func failure(_ ec: String?, _ message: String) -> ProcessError {
            ProcessError(.watermarkError, ec: ec, "watermark: " + message, action: Watermark.name, parameter: "image")
        }
        let objectKey: ObjectKey
        do { objectKey = try ObjectKey(key) } catch {
            throw failure(nil, "the object key '\(key)' is not a key inside the bucket (\(error))")
        }
        do {
            return try ConfinedFolder(path: root).read(objectKey, maxBytes: maxBytes)
        } catch ConfinementError.tooLarge(_, let size, _) {
            try limits.checkWatermark(key, bytes: size, width: 0, height: 0)
            throw failure(nil, "the object '\(key)' is over \(maxBytes) bytes")
        } catch ConfinementError.notFound {
            throw failure("0040-00000024", "the object '\(key)' does not exist in the bucket")
        } catch let error as ConfinementError {
            throw failure(nil, "the object cannot be read: \(error)")
        } catch {
            throw failure(nil, "the object '\(key)' cannot be read: \(error)")
        }
    }

    public func objectSize(_ key: String) -> Int? {
        guard let objectKey = try? ObjectKey(key), let folder = try? ConfinedFolder(path: root) else { return nil }
        return folder.status(objectKey).map { Int($0.size) }
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
