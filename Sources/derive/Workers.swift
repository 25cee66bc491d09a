import ArgumentParser
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
