import Foundation
import Imaging
import ProcessLanguage
import RenderWorkers
import XCTest

/// Issue #10, fifth attack: in a worker, a chain whose cost estimate is past Int's range is
/// refused (the worker survives), and the limits' origin crosses the wire so the message names
/// the manifest key in build and serve.
final class EngineRound5WorkerTests: XCTestCase {
    func testManyRotationsAreRefusedAndTheWorkerSurvives() throws {
        let pool = try RenderWorkerPool(size: 1)
        let source = try Sources.gradient(4000, 4000)
        let chain = "image/" + Array(repeating: "rotate,45", count: 30).joined(separator: "/")
        XCTAssertThrowsError(try pool.render(source, try Pipeline.parse(chain), limits: .oss)) { error in
            let error = error as? ProcessError
            XCTAssertEqual(error?.ec, "0040-00000006", "\(String(describing: error))")
            XCTAssertNotEqual(error?.code, .internalError, "\(String(describing: error))")
        }
    }

    func testManifestLimitsAreNamedInWorkerMessages() throws {
        let pool = try RenderWorkerPool(size: 1)
        var limits = Limits.oss
        limits.maxWork = 1000
        limits.setBy = .manifest
        XCTAssertThrowsError(try pool.render(try Sources.gradient(64, 48), try Pipeline.parse("image/resize,w_32"), limits: limits)) { error in
            let message = (error as? ProcessError)?.message ?? ""
            XCTAssertTrue(message.contains("limits: work in the manifest") && !message.contains("--max-work"), message)
        }
    }
}
