/// The handler of each operation derive serve implements; every other operation answers 501
/// NotImplemented (see `OSSOperation.classify`). One file per operation in this folder.
enum OperationHandlers {
    static let all: [OSSOperation: any OperationHandler] = [
        .getObject: GetObject(),
        .headObject: GetObject(),
        .getObjectMeta: GetObjectMeta(),
        .putObject: PutObject(),
        .postProcessObject: PostProcessObject(),
    ]
}
