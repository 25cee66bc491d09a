import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension ControlFiles {
    /// No bucket that anonymous requests may reach holds the lock or build state of a project
    /// whose manifest is gone, as none may hold a live neighbour's (`validateNeighbourProjects`,
    /// an error too). The projects are those builds and serve ask of a file in the bucket
    /// (`ForeignProjectFiles.goneProjects`, one definition): issue #9, a public bucket holding a
    /// gone project's lock and state (and so the outputs they record) validated, while builds and
    /// serve took them for that project's. Named by the manifest its lock's first line names.
    func validateGoneNeighbourProjects(into diagnostics: inout Diagnostics) {
        let exposed = manifest.buckets.filter { NeighbourProjects.mostPublic($0).isPublic }
        guard !exposed.isEmpty else { return }
        let projects = ForeignProjectFiles(besides: manifest.file)
        var said = Set<String>()
        for bucket in exposed {
            let folder = FileSystemPath(manifest: bucket.path)
            let exposure = NeighbourProjects.mostPublic(bucket)
            // A file in the bucket's folder: that folder, those above it, nearby and below.
            for gone in projects.goneProjects(around: bucket.path + "/-") where said.insert(bucket.name + "\0" + gone.manifest).inserted {
                let held = [(what: "the lock", path: gone.lock), (what: "the state folder", path: gone.state)]
                    .filter { access($0.path, F_OK) == 0 && folder.contains(FileSystemPath(manifest: $0.path)) }
                guard !held.isEmpty else { continue }
                let named = display(NeighbourProjects.goneManifestName(gone.manifest))
                diagnostics.error(bucket.pathLocation,
                                  "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(held.map { "\($0.what) \(display($0.path))" }.joined(separator: ", ")) of \(named), another project, which is no longer there, and is \(exposure.rawValue): anonymous requests could read\(exposure == .publicReadWrite ? " or change" : "") them and the outputs they record (two manifests never touch each other's files)",
                                  hint: "if that project is gone for good, move its lock and build state out of the bucket (or put \(named) back), give bucket '\(bucket.name)' a folder that holds no other project, or make it private (its acl: and every objects: rule)")
            }
        }
    }
}
