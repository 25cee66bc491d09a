import Foundation
import ProcessLanguage
import RenderWorkers
import Synchronization

/// The font file of a watermark `type` outside the seven OSS names (any installed fontconfig
/// family), asked of the render worker (`--describe --font TYPE`): derive links no fontconfig.
/// Each answer, found or not, is kept for the life of the process, at most `capacity` of them
/// (a server answering requests that name ever new families asks again past that).
public final class WorkerFonts: Sendable {
    static let capacity = 1_024
    private let worker: String
    private let environment: [String: String]
    private let known: Mutex<[String: String?]>

    init(worker: String, environment: [String: String], known: [String: String]) {
        self.worker = worker
        self.environment = environment
        var answers = known.mapValues { Optional($0) }
        for type in Watermark.fonts where answers[type] == nil { answers[type] = .some(nil) }   // the worker looked: missing
        self.known = Mutex(answers)
    }

    /// The font file of `type`, nil when it is not installed, not a family name, or the worker
    /// cannot be asked.
    public func file(_ type: String) -> String? {
        if let answer = known.withLock({ $0[type] }) { return answer }
        guard Watermark.isFamilyName(type) else { return nil }
        guard let report = try? RenderWorkerPool.describe(executable: worker, environment: environment, fontTypes: [type]) else { return nil }
        let answer = report.fonts[type]
        known.withLock { if $0.count < Self.capacity { $0[type] = .some(answer) } }
        return answer
    }
}
