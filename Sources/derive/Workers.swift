import ArgumentParser
import RenderWorkers

/// The render worker pool of a command; a missing worker executable is a clear error, never a
/// silent fallback to rendering inside derive.
enum Workers {
    static func pool(size: Int) throws -> RenderWorkerPool {
        do {
            return try RenderWorkerPool(size: size)
        } catch {
            Output.printError("\(error)")
            throw ExitCode.failure
        }
    }
}
