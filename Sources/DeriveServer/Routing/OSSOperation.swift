import Access

/// The OSS API operation a request names: its method, whether it names a bucket and a key, its
/// sub-resources (query parameters such as `acl`, `uploads`, `uploadId`) and a few headers
/// (`x-oss-copy-source`). Decided in one place, from the request head alone, before any body
/// byte is read: each operation has its own handler (`OperationHandlers`), and an operation
/// without one answers 501 `NotImplemented`, never a plain GET or PUT of the object.
public struct OSSOperation: Hashable, Sendable, CustomStringConvertible {
    /// OSS's name for the operation (`GetObject`, `PutObjectAcl`, `GetBucketLifecycle`, …).
    public let name: String

    public init(_ name: String) { self.name = name }
    public var description: String { name }

    // Objects
    public static let getObject = OSSOperation("GetObject")
    public static let headObject = OSSOperation("HeadObject")
    public static let getObjectMeta = OSSOperation("GetObjectMeta")
    public static let putObject = OSSOperation("PutObject")
    public static let copyObject = OSSOperation("CopyObject")
    public static let appendObject = OSSOperation("AppendObject")
    public static let deleteObject = OSSOperation("DeleteObject")
    public static let postProcessObject = OSSOperation("PostProcessObject")   // x-oss-process with sys/saveas
    public static let asyncProcessObject = OSSOperation("AsyncProcessObject")
    public static let postObject = OSSOperation("PostObject")                 // HTML form upload
    public static let optionObject = OSSOperation("OptionObject")             // CORS preflight
    public static let restoreObject = OSSOperation("RestoreObject")
    public static let selectObject = OSSOperation("SelectObject")
    public static let createSelectObjectMeta = OSSOperation("CreateSelectObjectMeta")
    public static let getObjectAcl = OSSOperation("GetObjectAcl")
    public static let putObjectAcl = OSSOperation("PutObjectAcl")
    public static let getObjectTagging = OSSOperation("GetObjectTagging")
    public static let putObjectTagging = OSSOperation("PutObjectTagging")
    public static let deleteObjectTagging = OSSOperation("DeleteObjectTagging")
    public static let getSymlink = OSSOperation("GetSymlink")
    public static let putSymlink = OSSOperation("PutSymlink")
    // Multipart
    public static let initiateMultipartUpload = OSSOperation("InitiateMultipartUpload")
    public static let uploadPart = OSSOperation("UploadPart")
    public static let uploadPartCopy = OSSOperation("UploadPartCopy")
    public static let completeMultipartUpload = OSSOperation("CompleteMultipartUpload")
    public static let abortMultipartUpload = OSSOperation("AbortMultipartUpload")
    public static let listParts = OSSOperation("ListParts")
    public static let listMultipartUploads = OSSOperation("ListMultipartUploads")
    // Buckets
    public static let listBuckets = OSSOperation("ListBuckets")
    public static let describeRegions = OSSOperation("DescribeRegions")
    public static let putBucket = OSSOperation("PutBucket")
    public static let deleteBucket = OSSOperation("DeleteBucket")
    public static let listObjects = OSSOperation("ListObjects")
    public static let listObjectsV2 = OSSOperation("ListObjectsV2")
    public static let listObjectVersions = OSSOperation("ListObjectVersions")
    public static let getBucketInfo = OSSOperation("GetBucketInfo")
    public static let getBucketLocation = OSSOperation("GetBucketLocation")
    public static let getBucketStat = OSSOperation("GetBucketStat")
    public static let getBucketAcl = OSSOperation("GetBucketAcl")
    public static let putBucketAcl = OSSOperation("PutBucketAcl")
    public static let deleteMultipleObjects = OSSOperation("DeleteMultipleObjects")

    /// Sub-resources that turn an object request into another operation than Get/Head/Put/
    /// DeleteObject, and bucket configurations (`GetBucket<Name>`, `PutBucket<Name>`,
    /// `DeleteBucket<Name>`). Names are case-sensitive, as OSS signs them.
    public static let bucketConfigurations: [String: String] = [
        "lifecycle": "Lifecycle", "cors": "Cors", "referer": "Referer", "website": "Website", "logging": "Logging",
        "versioning": "Versioning", "encryption": "Encryption", "policy": "Policy", "policyStatus": "PolicyStatus",
        "replication": "Replication", "replicationLocation": "ReplicationLocation", "replicationProgress": "ReplicationProgress",
        "inventory": "Inventory", "worm": "Worm", "wormId": "Worm", "wormExtend": "WormExtend", "tagging": "Tags",
        "requestPayment": "RequestPayment", "transferAcceleration": "TransferAcceleration", "qosInfo": "QoSInfo", "qos": "QoSInfo",
        "resourceGroup": "ResourceGroup", "accessMonitor": "AccessMonitor", "httpsConfig": "HttpsConfig", "cname": "Cname",
        "style": "Style", "metaQuery": "MetaQuery", "asyncFetch": "AsyncFetch", "img": "ImageInfo", "live": "LiveChannel",
        "objectInfo": "ObjectInfo", "dataRedundancyTransition": "DataRedundancyTransition", "responseHeader": "ResponseHeader",
        "userDefinedLogFieldsConfig": "UserDefinedLogFieldsConfig", "accessPoint": "AccessPoint", "publicAccessBlock": "PublicAccessBlock",
        "archiveDirectRead": "ArchiveDirectRead", "overwriteConfig": "OverwriteConfig", "transferAccelerationPolicy": "TransferAccelerationPolicy",
        "redundancyTransition": "RedundancyTransition", "resourcePool": "ResourcePool", "vod": "Vod", "comp": "Comp", "group": "Group",
        "link": "Link", "status": "Status",
    ]

    /// Every query parameter that names an operation or a configuration (OSS's sub-resources):
    /// a request carrying any of them is never a plain object read or write.
    public static let subresources: Set<String> = Set(bucketConfigurations.keys).union([
        "acl", "uploads", "uploadId", "partNumber", "append", "position", "symlink", "restore", "select", "meta",
        "objectMeta", "delete", "bucketInfo", "location", "stat", "versions", "versionId", "x-oss-async-process",
        "regions", "sequential", "inventoryId", "startTime", "endTime",
    ])

    /// Sub-resource names in lower case, as OSS spells them: `?ACL` or `?Tagging` is taken as
    /// `?acl` / `?tagging` (then answered by that operation), never as a plain GET or PUT.
    static let subresourceSpellings: [String: String] = Dictionary(
        subresources.map { ($0.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })

    /// The query with sub-resource names in OSS's spelling (`?UploadId=` is `?uploadId=`,
    /// `?PartNumber=`/`?Position=` likewise): classification and every handler read the same names,
    /// so a mixed-case name selects an operation and also supplies its value.
    public static func canonicalNames(_ query: [OSSSignature.Parameter]) -> [OSSSignature.Parameter] {
        query.map { OSSSignature.Parameter(subresourceSpellings[$0.name.lowercased()] ?? $0.name, $0.value) }
    }

    /// The operation a request names. `hasBucket`/`hasKey`: whether the path (or the virtual
    /// host) names a bucket and a non-empty key; `query`: its query parameters as sent;
    /// `headers`: lowercased names.
    public static func classify(method: String, hasBucket: Bool, hasKey: Bool, query: [OSSSignature.Parameter],
                                headers: [String: String]) -> OSSOperation {
        let query = canonicalNames(query)
        let names = Set(query.map(\.name))
        let found = query.map(\.name).filter { subresources.contains($0) }
        let copy = headers["x-oss-copy-source"] != nil
        func has(_ name: String) -> Bool { names.contains(name) }
        /// A sub-resource this method and level do not know: its own NotImplemented operation.
        func other(_ verb: String) -> OSSOperation? {
            found.first.map { OSSOperation("\(verb) ?\($0)") }
        }
        guard hasBucket else {
            switch method {
            case "GET" where has("regions"): return .describeRegions
            case "GET" where found.isEmpty, "HEAD" where found.isEmpty: return .listBuckets
            default: return OSSOperation("\(method) /" + (found.first.map { "?" + $0 } ?? ""))
            }
        }
        // A version of an object (or versioned listing): Derive keeps one version of each object.
        if hasKey, has("versionId") { return OSSOperation("\(method) ?versionId") }
        if hasKey {
            switch method {
            case "GET", "HEAD":
                if has("uploadId") { return .listParts }
                if has("acl") { return .getObjectAcl }
                if has("tagging") { return .getObjectTagging }
                if has("symlink") { return .getSymlink }
                if has("objectMeta") { return .getObjectMeta }
                if let other = other(method) { return other }
                return method == "HEAD" ? .headObject : .getObject
            case "PUT":
                if has("uploadId") || has("partNumber") { return copy ? .uploadPartCopy : .uploadPart }
                if has("acl") { return .putObjectAcl }
                if has("tagging") { return .putObjectTagging }
                if has("symlink") { return .putSymlink }
                if let other = other(method) { return other }
                return copy ? .copyObject : .putObject
            case "POST":
                if has("append") || has("position") { return .appendObject }
                if has("uploads") { return .initiateMultipartUpload }
                if has("uploadId") { return .completeMultipartUpload }
                if has("restore") { return .restoreObject }
                if has("select") { return .selectObject }
                if has("meta") { return .createSelectObjectMeta }
                if has("x-oss-async-process") { return .asyncProcessObject }
                if let other = other(method) { return other }
                if has("x-oss-process") { return .postProcessObject }
                return .postObject
            case "DELETE":
                if has("uploadId") { return .abortMultipartUpload }
                if has("tagging") { return .deleteObjectTagging }
                if let other = other(method) { return other }
                // A delete of a processed view names no object: refused, never a delete of the source.
                if has("x-oss-process") { return OSSOperation("DELETE ?x-oss-process") }
                return .deleteObject
            case "OPTIONS":
                return .optionObject
            default:
                return OSSOperation("\(method) object")
            }
        }
        // The bucket itself.
        func configuration(_ verb: String) -> OSSOperation? {
            found.first { bucketConfigurations[$0] != nil }.map { OSSOperation(verb + "Bucket" + bucketConfigurations[$0]!) }
        }
        switch method {
        case "GET", "HEAD":
            if has("acl") { return .getBucketAcl }
            if has("bucketInfo") { return .getBucketInfo }
            if has("location") { return .getBucketLocation }
            if has("stat") { return .getBucketStat }
            if has("uploads") { return .listMultipartUploads }
            if has("versions") { return .listObjectVersions }
            if let configuration = configuration("Get") { return configuration }
            if let other = other(method) { return other }
            if method == "HEAD" { return OSSOperation("HeadBucket") }
            return query.contains { $0.name == "list-type" && $0.value == "2" } ? .listObjectsV2 : .listObjects
        case "PUT":
            if has("acl") { return .putBucketAcl }
            if let configuration = configuration("Put") { return configuration }
            if let other = other(method) { return other }
            return .putBucket
        case "POST":
            if has("delete") { return .deleteMultipleObjects }
            if let configuration = configuration("Post") { return configuration }
            if let other = other(method) { return other }
            return .postObject
        case "DELETE":
            if let configuration = configuration("Delete") { return configuration }
            if let other = other(method) { return other }
            return .deleteBucket
        case "OPTIONS":
            return .optionObject
        default:
            return OSSOperation("\(method) bucket")
        }
    }
}
