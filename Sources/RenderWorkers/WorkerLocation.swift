import Confinement
import Foundation

/// Where the `derive-render-worker` executable is: `DERIVE_RENDER_WORKER` when set, else beside
/// the running executable (`/proc/self/exe`'s folder), which is also where `swift build` and
/// `swift test` put it next to the test bundle. Never a silent fallback to rendering in-process.
public enum WorkerLocation {
    public static let executableName = "derive-render-worker"
    public static let environmentVariable = "DERIVE_RENDER_WORKER"

    public static func find(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let path = environment[environmentVariable], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw WorkerError.launch("the render worker \(path) (from \(environmentVariable)) is not an executable file; point \(environmentVariable) at derive-render-worker or unset it to use the one beside derive")
            }
            return path
        }
        let folder = executableFolder()
        let path = folder + "/" + executableName
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw WorkerError.launch("the render worker \(executableName) is missing: derive looks for it beside itself, in \(folder). Build both with `swift build` (or `swift build -c release`) and install them side by side, or set \(environmentVariable) to its path")
        }
        return path
    }

    /// The folder of the running executable, links resolved.
    static func executableFolder() -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(literalFilePath: exe).deletingLastPathComponent().standardizedFileURL.path
    }
}
