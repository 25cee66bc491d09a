import ArgumentParser
import Builder
import Manifest
import RenderWorkers

/// The render worker pool of a command; a missing worker executable is a clear error, never a
/// silent fallback to rendering inside derive.
enum Workers {
    static func pool(size: Int, expectedEngineVersion: String? = nil) throws -> RenderWorkerPool {
        do {
            return try RenderWorkerPool(size: size, expectedEngineVersion: expectedEngineVersion)
        } catch {
            Output.printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// Render workers started only when first asked for: `plan` and `check` in a fresh clone render
/// the sources' colours and placeholders the state lacks (the index's own are never taken), and
/// nothing else. `shutdown()` stops them if they were started.
final class SummaryWorkers {
    private var pool: RenderWorkerPool?
    private let jobs: Int?
    private let engineVersion: String
    private let limits: ManifestLimits

    init(jobs: Int?, engineVersion: String, limits: ManifestLimits) {
        self.jobs = jobs; self.engineVersion = engineVersion; self.limits = limits
    }

    func renderer() throws -> any DerivativeRenderer {
        let workers = try pool ?? Workers.pool(size: BuildOptions(jobs: jobs).jobs, expectedEngineVersion: engineVersion)
        pool = workers
        return EngineRenderer(limits: limits, renderer: workers)
    }

    func shutdown() { pool?.shutdown() }
}
