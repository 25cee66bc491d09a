import Planner

extension BuildSession {
    /// The plan for `derive plan`: like `check`, it writes nothing (no state created, a corrupt
    /// or foreign state not moved aside, no build lock taken); `stateNote` says what a build
    /// would do about the state.
    public func readOnlyPlan() throws -> Plan {
        readOnly = true   // only matters before the state is first opened
        return try plan()
    }
}
