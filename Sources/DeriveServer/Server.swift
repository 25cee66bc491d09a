import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

/// The HTTP front: Hummingbird on loopback by default; every request goes to `ObjectService`
/// on a worker thread (rendering stays off Swift's cooperative pool).
public struct DeriveHTTPServer: Sendable {
    public let service: ObjectService
    public let host: String
    public let port: Int

    public init(service: ObjectService, host: String = "127.0.0.1", port: Int = 8080) {
        self.service = service
        self.host = host
        self.port = port
    }

    static let workers = DispatchQueue(label: "derive.serve.render", qos: .userInitiated, attributes: .concurrent)
    static let slots = DispatchSemaphore(value: max(1, ProcessInfo.processInfo.activeProcessorCount))

    public func run(onReady: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let service = self.service
        let limit = service.maxBodyBytes
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            var request = request
            var body = Data()
            if request.method == .put || request.method == .post {
                do {
                    let buffer = try await request.collectBody(upTo: limit + 1)
                    body = Data(buffer.readableBytesView)
                } catch {
                    body = Data(count: limit + 1)   // reported as EntityTooLarge by the service
                }
            }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            if let authority = request.head.authority { headers["host"] = authority }
            let serviceRequest = ServiceRequest(method: request.method.rawValue, target: request.uri.string, headers: headers, body: body)
            let reply = await withCheckedContinuation { continuation in
                Self.workers.async {
                    Self.slots.wait()
                    defer { Self.slots.signal() }
                    continuation.resume(returning: service.handle(serviceRequest))
                }
            }
            var fields = HTTPFields()
            for (name, value) in reply.headers {
                if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
            }
            return Response(status: HTTPResponse.Status(code: reply.status), headers: fields,
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
        }
        let app = Application(responder: responder,
                              configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Derive"),
                              onServerRunning: { channel in onReady(channel.localAddress?.port ?? 0) })
        try await app.runService()
    }
}
