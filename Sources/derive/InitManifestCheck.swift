import Foundation
import Manifest
import Planner

/// The errors `derive validate` would give the manifest `derive init` is about to write, judged
/// on its text before anything is written (attack 52b's 6: init wrote a manifest that validate
/// refused, since its `_site` led into another project's bucket, exited 0 and said "Next: derive
/// build"). Loaded as validate and the build load it: its neighbours and the registry of built
/// projects too.
enum InitManifestCheck {
    static func errors(manifestText: String, manifest: String) -> [Diagnostic] {
        var loader = ManifestLoader()
        loader.fileReader = { _, _ in Data(manifestText.utf8) }
        var result = loader.load(manifest)
        if let loaded = result.manifest { RegisteredProjects.validate(loaded, into: &result.diagnostics) }
        return result.diagnostics.sorted.filter { $0.severity == .error }
    }

    /// The refusal naming `errors` (the first three, then how many more).
    static func refusal(_ errors: [Diagnostic], manifest: String) -> String {
        let shown = errors.prefix(3).map { $0.message + ($0.hint.map { " (\($0))" } ?? "") }.joined(separator: "; ")
        let more = errors.count > 3 ? "; and \(errors.count - 3) more" : ""
        return "derive init would write a \(manifest) that derive validate refuses, so nothing was written: \(shown)\(more). "
            + "Fix what is named, then run derive init again (or run it in another folder)"
    }
}
