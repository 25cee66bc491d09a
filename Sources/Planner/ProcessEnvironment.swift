import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One environment variable's value, read with `getenv`: `ProcessInfo.processInfo.environment`
/// builds a dictionary of the whole environment on every call (about 340 000 instructions each,
/// and a no-op asked it four times: issue 15). `ProcessEnvironmentTests` compares the two.
public enum ProcessEnvironment {
    public static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
