import Foundation

extension Planner {
    /// Deletions whose file is already gone or no longer holds the recorded bytes: the build only
    /// drops their records (a changed file is left in place), so the plan must not count them as
    /// files to delete.
    func recordsOnly(_ items: [PlanItem]) -> Set<String> {
        var result: Set<String> = []
        for item in items where item.kind == .delete {
            guard let record = item.recorded, !record.folder.isEmpty else { continue }
            if !disk.exists(record.file) || (try? digests.content(of: record.file))?.digest != record.outputDigest {
                result.insert(item.output)
            }
        }
        return result
    }
}
