import Foundation
import Testing
import TestSupport
@testable import Planner

/// `ProcessEnvironment.value` (one `getenv`, issue 15) answers as `ProcessInfo`'s environment
/// dictionary does, for every variable this process has and for ones it has not.
@Suite(.ownThreads) struct ProcessEnvironmentTests {
    @Test func valuesAreProcessInfosValues() {
        let environment = ProcessInfo.processInfo.environment
        #expect(!environment.isEmpty)
        for (name, value) in environment { #expect(ProcessEnvironment.value(name) == value, "\(name)") }
        for name in ["XDG_STATE_HOME", "HOME", "DERIVE_INCREMENTAL", "DERIVE_NO_SUCH_VARIABLE_42", "PATH"] {
            #expect(ProcessEnvironment.value(name) == environment[name], "\(name)")
        }
    }
}
