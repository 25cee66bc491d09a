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
        var refused = Set<String>()
        for (bucket, gone, held) in Self.goneProjectsHeld(in: exposed, projects: projects) {
            refused.formUnion(held.map(\.path))
            let exposure = NeighbourProjects.mostPublic(bucket)
            let namedPath = NeighbourProjects.goneManifestName(gone.manifest)
            let named = display(namedPath)
            // A file there at the name its lock gives (`"manifest":"/etc/passwd"`) is no
            // manifest to put back (attack 51b's L1: "put /etc/passwd back").
            var info = stat()
            let occupied = lstat(namedPath, &info) == 0
            // A lock whose first line names the manifest as this manifest's own lock's does (an
            // older copy of it, lines since changed: `cp p.lock pub/old/`) is named as what it
            // most likely is, not blamed on a manifest that never existed (attack 52b's L1).
            if !occupied, held.map(\.what) == ["the lock"], Self.namesOwnManifest(lock: gone.lock, ownLock: manifest.lockFile) {
                diagnostics.error(bucket.pathLocation,
                                  "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(display(gone.lock)), a Derive lock whose first line names the manifest as this manifest's own lock (\(display(manifest.lockFile))) does, but with lines that lock no longer has: an older copy of this manifest's lock (or the lock of a project whose manifest \(named) is gone), and is \(exposure.rawValue): anonymous requests could read\(exposure == .publicReadWrite ? " or change" : "") it, and it lists every output it recorded, private ones too; as any lock no current project vouches for, it is taken for a gone project's, whose outputs it records",
                                  hint: "if it is an old copy of this manifest's lock, remove it or move it out of the bucket (Derive keeps its lock at \(display(manifest.lockFile)) and needs no copy); or make bucket '\(bucket.name)' private (its acl: and every objects: rule)")
                continue
            }
            // Only something in a `.derive` folder, no Derive build state in it and no lock: no
            // project's state as far as anyone can tell, so no manifest is named (attack 53b's 5:
            // `pub/.derive/notes.txt` was "the state folder of pub/notes.txt.yaml", put back).
            if !occupied, held.map(\.what) == ["the state folder"], !NeighbourProjects.holdsDeriveState(gone.state) {
                diagnostics.error(bucket.pathLocation,
                                  "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(display(gone.state)) in a folder named \(ProjectMarkers.stateFolderName), as Derive names its build state folders, and is \(exposure.rawValue): Derive takes whatever lies in a \(ProjectMarkers.stateFolderName) folder for another project's build state (no Derive build state is there now, nor a manifest it could belong to), and never lets this manifest's serve answer or touch it",
                                  hint: "if it is not Derive's, rename that \(ProjectMarkers.stateFolderName) folder or move the file out of it; if it is a gone project's build state, move it out of the bucket; or make bucket '\(bucket.name)' private (its acl: and every objects: rule)")
                continue
            }
            let whose = occupied ? "a project whose lock names \(named) as its manifest, which is no manifest" : "\(named), another project, which is no longer there"
            diagnostics.error(bucket.pathLocation,
                              "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(held.map { "\($0.what) \(display($0.path))" }.joined(separator: ", ")) of \(whose), and is \(exposure.rawValue): anonymous requests could read\(exposure == .publicReadWrite ? " or change" : "") them and the outputs they record (two manifests never touch each other's files)",
                              hint: occupied ? "if that file is yours, not a Derive lock, change its first line; if that project is gone for good, move its lock and build state out of the bucket; or give bucket '\(bucket.name)' a folder that holds no other project, or make it private (its acl: and every objects: rule)"
                                  : "if that project is gone for good, move its lock and build state out of the bucket (or put \(named) back), give bucket '\(bucket.name)' a folder that holds no other project, or make it private (its acl: and every objects: rule)")
        }
        // A file there whose first line is a Derive lock's naming this manifest, yet neither its
        // lock nor a copy of it (a line the lock does not hold): serve never answers a Derive
        // lock, so it answers this file as missing; said here, as validate and plan said nothing
        // of it (attack 51b's L1).
        let ownManifest = FileSystemPath(manifest: manifest.files.first ?? manifest.file), ownLock = FileSystemPath(manifest: manifest.lockFile)
        for bucket in exposed {
            for left in LeftLockFiles.listing(of: bucket.path).locks where FileSystemPath(manifest: left.manifest).sameFile(as: ownManifest)
                && !FileSystemPath(manifest: left.lock).sameFile(as: ownLock) && !OwnLockCopy.isCopy(left.lock, of: manifest.lockFile) {
                diagnostics.warning(bucket.pathLocation,
                                    "\(display(left.lock)) in bucket '\(bucket.name)' (\(bucket.declaredPath)) starts with a Derive lock's first line naming this manifest, but is not its lock (\(display(manifest.lockFile))) nor a copy of it: derive serve never answers a Derive lock, so it answers this file as missing",
                                    hint: "if the file is yours, change its first line; if it is an old copy of the lock, remove it")
            }
        }
        // A copy of another project's lock there whose manifest is there (attack 52b's L3: said
        // nothing, while a gone project's is refused): not that project's lock, so it claims
        // nothing and serve never answers it, but it lists that project's outputs, private ones
        // too, to whoever the folder is published to by other means. Its very lock there is
        // `validateNeighbourProjects`' error.
        for bucket in exposed {
            for left in LeftLockFiles.listing(of: bucket.path).locks where !refused.contains(left.lock) {
                let named = FileSystemPath(manifest: left.manifest)
                var info = stat()
                guard !named.sameFile(as: ownManifest), lstat(left.manifest, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                      !FileSystemPath(manifest: left.lock).sameFile(as: FileSystemPath(manifest: NeighbourProjects.project(left.manifest).lockFile)) else { continue }
                diagnostics.warning(bucket.pathLocation,
                                    "\(display(left.lock)) in bucket '\(bucket.name)' (\(bucket.declaredPath)) is a copy of a lock of \(display(left.manifest)), another project (its first line names that manifest), and the bucket is \(NeighbourProjects.mostPublic(bucket).rawValue): it lists that project's outputs, private ones too; derive serve never answers it, but the folder published by other means shows it",
                                    hint: "remove the copy, or move it out of the bucket (that project keeps its own lock at \(display(NeighbourProjects.project(left.manifest).lockFile)))")
            }
        }
        // A copy of this manifest's own lock there (`cp derive.lock _site/`: attack 50c's M1) is
        // no other project's: said as what it is, blocking nothing (no rule writes it; serve
        // answers no lock in a bucket), since it lists every output, private ones too.
        for copy in projects.ownLockCopies {
            let file = FileSystemPath(manifest: copy)
            guard let bucket = exposed.first(where: { FileSystemPath(manifest: $0.path).contains(file) }) else { continue }
            diagnostics.warning(bucket.pathLocation,
                                "\(display(copy)) is a copy of this manifest's own lock (\(display(manifest.lockFile))) in bucket '\(bucket.name)' (\(bucket.declaredPath)), which is \(NeighbourProjects.mostPublic(bucket).rawValue): it lists every output, private ones too; derive serve never answers it, but the folder published by other means shows it",
                                hint: "remove the copy (Derive keeps and updates its lock at \(display(manifest.lockFile)); it needs no copy), or move it out of the bucket")
        }
    }

    /// Whether the lock at `lock` names, in its first line, the manifest this manifest's own lock
    /// at `ownLock` names (both read no further than their first line).
    static func namesOwnManifest(lock: String, ownLock: String) -> Bool {
        guard let theirs = LockFirstLine.lockHeader(lock).flatMap(LockOwnerName.owner), !theirs.isEmpty,
              let mine = LockFirstLine.lockHeader(ownLock).flatMap(LockOwnerName.owner) else { return false }
        return theirs == mine
    }

    /// The locks and state folders of gone projects that `buckets` (the exposed ones) hold, what
    /// `validateGoneNeighbourProjects` refuses: each bucket with the project and what it holds.
    static func goneProjectsHeld(in buckets: [Bucket], projects: ForeignProjectFiles)
        -> [(bucket: Bucket, gone: ForeignProjectFiles.Unloaded, held: [(what: String, path: String)])] {
        var said = Set<String>()
        var found: [(bucket: Bucket, gone: ForeignProjectFiles.Unloaded, held: [(what: String, path: String)])] = []
        for bucket in buckets {
            let folder = FileSystemPath(manifest: bucket.path)
            // A file in the bucket's folder: that folder, those above it, nearby and below.
            for gone in projects.goneProjects(around: bucket.path + "/-") where said.insert(bucket.name + "\0" + gone.manifest).inserted {
                let held = [(what: "the lock", path: gone.lock), (what: "the state folder", path: gone.state)]
                    .filter { access($0.path, F_OK) == 0 && folder.contains(FileSystemPath(manifest: $0.path)) }
                if !held.isEmpty { found.append((bucket, gone, held)) }
            }
        }
        return found
    }
}

/// What a running serve looks at again with its neighbours (attack 51c's 3: another project's
/// lock, or lock and state, copied into a public bucket was refused by validate and a fresh
/// serve, while a running one kept answering): the gone projects' files its public buckets hold.
public enum GoneProjectsInBuckets {
    /// Each lock or state folder of a gone project that a bucket of `manifest` anonymous requests
    /// may reach holds (absolute, sorted): the same search validate makes, from the kept listings
    /// (`cachesProjects`: serve asks it every second, and each folder's files were opened anew
    /// each time, under the lock every request waits on; attack 53b's 4).
    public static func held(by manifest: Manifest) -> [String] {
        let exposed = manifest.buckets.filter { NeighbourProjects.mostPublic($0).isPublic }
        guard !exposed.isEmpty else { return [] }
        let found = ControlFiles.goneProjectsHeld(in: exposed, projects: ForeignProjectFiles(besides: manifest.file, cachesProjects: true))
        return Set(found.flatMap { $0.held.map(\.path) }).sorted()
    }
}
