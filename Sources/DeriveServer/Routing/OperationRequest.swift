import Access
import Confinement
import Manifest

/// A request whose bucket, key and operation are known and whose caller was authenticated:
/// what each operation's handler gets. Nothing of the body has been read.
struct OperationRequest: Sendable {
    let service: ObjectService
    let request: ServiceRequest
    let operation: OSSOperation
    let bucket: Bucket
    /// The object key; nil for bucket operations.
    let key: ObjectKey?
    let query: [OSSSignature.Parameter]
    /// The access key id of a signed request; nil when anonymous.
    let caller: String?
    let exchange: Exchange
    /// The key is the website's index document put in for a folder's address (`/site/`), not one
    /// the request named: it is never sent on to `key/` as a folder (`websiteFolderRedirect`).
    var isWebsiteIndex = false

    /// The object an object operation works on (InvalidObjectName when the path named none).
    func target() throws -> ObjectService.Target {
        guard let key else { throw OSSErrorBody.invalidObjectName("the operation \(operation) needs an object key after the bucket") }
        return ObjectService.Target(bucket: bucket, key: key, query: query)
    }

    /// The value of a query parameter: nil when absent, "" when given without a value.
    func parameter(_ name: String) -> String? {
        query.first { $0.name == name }.map { $0.value ?? "" }
    }

    /// A header by its lowercased name.
    func header(_ name: String) -> String? { request.headers[name] }
}

/// One OSS operation: decides from the request head what happens next (an answer, a render, an
/// upload to stream, a small body to collect).
protocol OperationHandler: Sendable {
    func begin(_ request: OperationRequest) throws -> Step
}
