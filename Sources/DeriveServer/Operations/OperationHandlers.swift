/// The handler of each operation derive serve implements; every other operation answers 501
/// NotImplemented (see `OSSOperation.classify`). One file per operation in this folder.
enum OperationHandlers {
    static let all: [OSSOperation: any OperationHandler] = [
        .getObject: GetObject(),
        .headObject: GetObject(),
        .getObjectMeta: GetObjectMeta(),
        .putObject: PutObject(),
        .postProcessObject: PostProcessObject(),
        // The bucket and object API (ObjectAPIHandlers.swift).
        .listObjects: ListObjects(),
        .listObjectsV2: ListObjectsV2(),
        OSSOperation("HeadBucket"): ListObjects(),
        .getBucketInfo: GetBucketInfo(),
        .getBucketAcl: GetBucketAcl(),
        .putBucketAcl: PutAcl(),
        .getObjectAcl: GetObjectAcl(),
        .putObjectAcl: PutAcl(),
        .deleteObject: DeleteObject(),
        .deleteMultipleObjects: DeleteMultipleObjects(),
        .copyObject: CopyObject(),
        .appendObject: AppendObject(),
        .initiateMultipartUpload: InitiateMultipartUpload(),
        .uploadPart: UploadPart(),
        .uploadPartCopy: UploadPart(),
        .completeMultipartUpload: CompleteMultipartUpload(),
        .abortMultipartUpload: AbortMultipartUpload(),
        .listParts: ListParts(),
        .listMultipartUploads: ListMultipartUploads(),
    ]
}
