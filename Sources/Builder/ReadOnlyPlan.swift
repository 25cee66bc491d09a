import Planner

extension BuildSession {
    /// The plan for `derive plan`: like `check`, it writes nothing (no state created, a corrupt
    /// or foreign state not moved aside, no build lock taken); `stateNote` says what a build
    /// would do about the state. `summaries`: as for `check`, what renders the sources' colours
    /// and placeholders the state lacks (a fresh clone), so the plan lists the index only when
    /// the build changes it; nil: it is listed as written if they differ.
    public func readOnlyPlan(summaries: (() throws -> any DerivativeRenderer)? = nil) throws -> Plan {
        readOnly = true   // only matters before the state is first opened
        return try renderingSummaries(plan(), summaries: summaries)
    }
}
