import Confinement
import Builder
import Foundation
import Manifest

/// The rules' `budget:` checked over what the state records, for `build` and `check`.
enum BudgetAudit {
    /// After a build: max_bytes of outputs built before, max_total_bytes, and min_ssim of the
    /// outputs this build did not render (`built`: those it judged as it made them) — a raised
    /// min_ssim fails `build` as a lowered max_bytes does. Runs only when the build planned: a
    /// no-op answered by the witness has nothing to judge, since a build with a breach leaves none.
    static func afterBuild(_ workspace: Workspace, renderer: any DerivativeRenderer, built: [String]) -> [String] {
        guard workspace.manifest.rules.contains(where: { $0.budget != nil }) else { return [] }
        do {
            let plan = try workspace.session.readOnlyPlan()
            let ssim = workspace.manifest.rules.contains { $0.budget?.minSSIM != nil }
            return OutputBudget.audit(plan, manifest: workspace.manifest, renderer: ssim ? renderer : nil, judged: PathSet(built))
        } catch {
            return ["budgets not checked: \(error)"]
        }
    }

    /// For `check`: every budget, min_ssim included (reference renders in workers; nothing is written).
    static func forCheck(_ workspace: Workspace, jobs: Int?) throws -> [String] {
        guard workspace.manifest.rules.contains(where: { $0.budget != nil }) else { return [] }
        let plan = try workspace.run("checking budgets") { try $0.readOnlyPlan() }
        guard workspace.manifest.rules.contains(where: { $0.budget?.minSSIM != nil }) else {
            return OutputBudget.audit(plan, manifest: workspace.manifest, renderer: nil)
        }
        let workers = try Workers.pool(size: BuildOptions(jobs: jobs).jobs, expectedEngineVersion: workspace.engine.report.version)
        defer { workers.shutdown() }
        return OutputBudget.audit(plan, manifest: workspace.manifest,
                                  renderer: EngineRenderer(limits: workspace.manifest.limits, renderer: workers))
    }
}
