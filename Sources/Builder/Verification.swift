import Confinement
import Foundation
import Planner

/// What `--verify` found: outputs are deterministic, so an output whose file holds what its rule
/// renders from its source now is proven, whatever vouched for it (a fresh clone's lock line).
public struct Verification: Sendable {
    public struct Mismatch: Sendable {
        /// `bucket/key` of the output.
        public var output: String
        /// Why the file is not what the build writes: `differs from what rule 'r' renders from src/x.jpg`.
        public var message: String
        /// `out/x.webp  differs from …`, as `check` prints it.
        public var line: String { "\(output)  \(message)" }
    }

    /// Outputs rendered again whose file held exactly the rendered bytes.
    public var verified: [String] = []
    public var mismatches: [Mismatch] = []
    /// Outputs that could not be rendered again (full messages): not verified.
    public var failures: [(output: String, message: String)] = []
    public var seconds: Double = 0

    public init() {}

    /// The outputs `--verify` renders again in `plan`: those only a lock line vouches for (adopted
    /// now, or by an earlier plain build and still marked so), or every up-to-date output with
    /// `all`. Outputs the plan renders anyway are not verified (they are written from a render).
    public static func candidates(_ plan: Plan, all: Bool) -> [PlanItem] {
        plan.items.filter { $0.isUnverifiedAdoption || (all && $0.kind == .upToDate && $0.derivative != nil) }
    }

    /// What a mismatch says about `derivative`'s file.
    public static func message(_ derivative: Derivative) -> String {
        "differs from what rule '\(derivative.rule)' renders from \(derivative.source)"
    }
}

extension Builder {
    /// Renders each of `items` again (as a build does: its source read and checked against the
    /// plan, on the build's workers within the memory budget and each rule's output budget, in
    /// parallel over `options.jobs`) and compares the bytes with the output's file, writing nothing.
    public func verify(_ items: [PlanItem]) -> Verification {
        let started = Date()
        var verification = Verification()
        let progress = Progress(total: items.count, quiet: options.quiet, verb: "verified")
        let digests = planner.digests
        let results = parallel(items, progress: progress, finished: { (result: Result<Bool, Error>) -> Bool? in
            if case .success(true) = result { return true } else { return false }
        }) { item, budget in
            let (planned, _, rendered) = try self.render(item, budget: budget)
            // The file as it is now (its digest through the plan's cache: one read at most).
            return try digests.content(of: planned.outputPath)?.digest == rendered
        }
        for (item, result) in zip(items, results) {
            switch result {
            case .success(true): verification.verified.append(item.output)
            case .success(false):
                guard let derivative = item.derivative else { continue }
                verification.mismatches.append(.init(output: item.output, message: Verification.message(derivative)))
            case .failure(let error as SourceChanged):
                // Read now, the source is not what the plan took it for: edited meanwhile, or other
                // bytes under the stat the cache knows (attack 20's B2: a plain build trusts that
                // stat again; `build --verify` reads every source again).
                verification.failures.append((item.output, "could not be rendered again to verify it: \(error.source) does not hold the bytes the plan used "
                                              + "(changed since, or other bytes under the same size and times); run derive build --verify, which reads every source again"))
            case .failure(let error):
                verification.failures.append((item.output, "could not be rendered again to verify it: \(error)"))
            }
        }
        verification.seconds = Date().timeIntervalSince(started)
        return verification
    }
}
