import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The other projects this manifest's buckets can reach, one definition for validate, plan,
/// build and serve (attack 42a's H1 and H2: a serve-only `site.yaml` whose bucket was another
/// project's folder, or the output, lock or index folder of a manifest beside it, served and
/// took anonymous writes over that project's manifest, lock, state and private outputs).
///
/// Looked for: the manifests in this manifest's folder, and those in each bucket's folder and in
/// every folder above it (a sibling `../P` is its own bucket's folder; a nested `P` too), at most
/// `maxProjects`; and those below this manifest's own folder as builds find them
/// (`ForeignProjectFiles.manifestsBelow`: 4 levels down, 1 024 folders listed, 64 manifests).
/// A manifest deeper inside a bucket is not looked for (the bucket would have to be walked):
/// serve's writes still ask `ForeignProjectFiles` of each file they replace, and its reads hide
/// such a project's recorded outputs from anonymous readers (`ForeignServedFiles`).
public struct NeighbourProject: Sendable {
    /// The other manifest, absolute.
    public var manifestPath: String
    /// Its model, nil when it does not load (its defaults then stand for its lock and state).
    public var manifest: Manifest?
    /// It parsed into a model but loads with errors (emptied, a rule half-typed): its model is
    /// partial, so what it says of its outputs is not its word.
    public var loadErrors = false
    /// Its manifest and includes, its lock and its index, with what each is to it.
    public var controlFiles: [(what: String, path: String)]
    public var lockFile: String
    public var stateFolder: String

    /// The buckets its rules write into (and its index's), absolute folders.
    public var outputBuckets: [Bucket] {
        guard let manifest else { return [] }
        var names = Set(manifest.rules.map(\.targetBucket))
        if let index = manifest.index { names.insert(index.bucket) }
        return manifest.buckets.filter { names.contains($0.name) }
    }

    /// The most private ACL its outputs in `bucket` may get (a rule's `acl:`, else the most
    /// private its source bucket gives), nil when no rule of it writes there.
    public func mostPrivateOutputACL(in bucket: Bucket) -> BucketACL? {
        guard let manifest else { return nil }
        var acl: BucketACL?
        for rule in manifest.rules where rule.targetBucket == bucket.name {
            let given = rule.acl ?? manifest.bucket(named: rule.sourceBucket).map(NeighbourProjects.mostPrivate) ?? .private
            acl = acl.map { .morePrivate($0, given) } ?? given
        }
        if let index = manifest.index, index.bucket == bucket.name {
            let given = manifest.indexACL ?? .private
            acl = acl.map { .morePrivate($0, given) } ?? given
        }
        return acl
    }
}

public enum NeighbourProjects {
    /// Manifests read at most per question.
    public static let maxProjects = 32
    /// The words of the warning that the walk below the manifest's folder stopped at a bound
    /// (check, build and serve repeat it: attack 51c's 2).
    public static let boundReached = "hold more than Derive looks through for other projects"

    /// Folders above a bucket's folder looked in at most.
    static let maxHeight = 64

    /// The other projects beside `manifest` and around its buckets (see the type's comment).
    public static func of(_ manifest: Manifest) -> [NeighbourProject] {
        of(manifestFile: manifest.file, files: manifest.files, buckets: manifest.buckets.map(\.path))
    }

    static func of(manifestFile: String, files: [String], buckets: [String]) -> [NeighbourProject] {
        manifestPaths(manifestFile: manifestFile, files: files, buckets: buckets).found.map(project)
    }

    /// `of`, and whether the walk below the manifest's folder stopped at a bound, or the look
    /// around the buckets did (validate warns: projects beyond it are not looked at; attack 45b's
    /// F3, 52b's 5b; serve answers anonymous readers of a public bucket only what this manifest
    /// verifies its own while either is reached: `boundReached`).
    public static func ofReportingCap(_ manifest: Manifest) -> (projects: [NeighbourProject], belowCapped: Bool, aroundCapped: Bool) {
        // One snapshot for the whole look: each neighbour is loaded once, not again for every other
        // neighbour's sibling checks (33 manifests beside a served one made each of serve's looks
        // load a thousand, and a GET waited seconds of CPU for it: DecoyBoundRound53Tests).
        ReadSnapshot.during {
            let paths = manifestPaths(manifestFile: manifest.file, files: manifest.files, buckets: manifest.buckets.map(\.path))
            return (paths.found.map(project), paths.belowCapped, paths.aroundCapped)
        }
    }

    /// The other manifests `of` reads, found as it finds them but not read (a running serve lists
    /// them again every second: a project appearing beside it is a change of what it checks).
    public static func manifestPaths(of manifest: Manifest) -> [String] {
        manifestPaths(manifestFile: manifest.file, files: manifest.files, buckets: manifest.buckets.map(\.path)).found
    }

    /// The files of `neighbours` whose change can change what `validateNeighbourProjects` says:
    /// each one's manifest, includes and lock (not its index: its bytes are no check's).
    public static func watchedFiles(_ neighbours: [NeighbourProject]) -> [String] {
        neighbours.flatMap { $0.controlFiles.filter { $0.what != "the index" }.map(\.path) }
    }

    static func manifestPaths(manifestFile: String, files: [String], buckets: [String]) -> (found: [String], belowCapped: Bool, aroundCapped: Bool) {
        let own = (files.isEmpty ? [manifestFile] : files).map { FileSystemPath(manifest: $0) }
        var folders: [String] = [(URL(literalFilePath: manifestFile).standardizedFileURL.path as NSString).deletingLastPathComponent]
        for bucket in buckets {
            var folder = FileSystemPath(manifest: URL(literalFilePath: bucket).standardizedFileURL.path).real
            for _ in 0..<maxHeight {
                folders.append(folder)
                guard folder != "/", !folder.isEmpty else { break }
                folder = (folder as NSString).deletingLastPathComponent
                if folder.isEmpty { folder = "/" }
            }
        }
        var listed: Set<String> = []
        var found: [String] = []
        var seen: [FileSystemPath] = own
        func add(_ path: String) {
            let identity = FileSystemPath(manifest: path)
            guard !seen.contains(where: { $0.sameFile(as: identity) }) else { return }
            seen.append(identity)
            found.append(path)
        }
        // The projects whose Derive lock (at any name) or build state a bucket's folder itself
        // holds, weighed whatever the bounds below (attack 52b's 5/5b: decoy manifests used the
        // bound up, and a private writer beyond it went unweighed): the lock names its manifest,
        // a `.derive` its project beside it. One listing per bucket folder, kept while unchanged.
        for bucket in buckets {
            let folder = FileSystemPath(manifest: URL(literalFilePath: bucket).standardizedFileURL.path).real
            // By names first: only a folder marked so is read for locks (its files opened).
            guard LeftLockFiles.isMarked(folder) else { continue }
            let listing = LeftLockFiles.keptListing(of: folder)
            guard listing.marked else { continue }
            for left in listing.locks where ControlFiles.isProjectManifest(left.manifest) { add(left.manifest) }
            for path in manifests(in: folder) { add(path) }
        }
        var aroundCapped = false
        around: for folder in folders where listed.insert(folder).inserted {
            // Discovery's one definition (`ProjectMarkers`): a manifest mid-edit counts, an emptied
            // one beside its state or lock too (attack 44b's F2: a public-read-write bucket whose
            // folder was a built project with its manifest emptied validated, and anyone could
            // overwrite its recorded outputs).
            let names = ControlFiles.manifestNames(in: folder).sorted()
            for path in names.map({ folder == "/" ? "/" + $0 : folder + "/" + $0 }) where ControlFiles.isProjectManifest(path) {
                guard found.count < maxProjects else {
                    // Said, as the bound below is (attack 52b's 5b: 33 decoys beside the manifest
                    // hid a private writer there, and nothing warned).
                    aroundCapped = !seen.contains { $0.sameFile(as: FileSystemPath(manifest: path)) }
                    if aroundCapped { break around }
                    continue
                }
                add(path)
            }
        }
        // The projects below this manifest's own folder, within the bounds builds use
        // (`ForeignProjectFiles.manifestsBelow`: 4 levels, 1 024 folders, 64 manifests): round 45's
        // N4, `gallery/derive.yaml` writing private outputs into `../www/gallery`, a public bucket
        // of this manifest, was not looked at, and serve answered them to anyone.
        let below = belowScan(folder: folders[0], buckets: buckets)
        for path in below.manifests { add(path) }
        return (found, below.capped, aroundCapped)
    }

    /// The walk below this manifest's folder (`ForeignProjectFiles.manifestsBelow`), its own
    /// buckets' folders walked last: a bucket of many folders no longer hides a project beside it
    /// from the bounds (attack 45b's F3).
    static func belowScan(folder: String, buckets: [String]) -> (manifests: [String], capped: Bool) {
        var later: [String] = []
        for bucket in buckets {
            let path = URL(literalFilePath: bucket).standardizedFileURL.path
            for form in [path, FileSystemPath(manifest: path).real] where !later.contains(form) { later.append(form) }
        }
        return ForeignProjectFiles.manifestsBelow(folder, later: later)
    }

    /// What another manifest uses, read as the loader reads it (no bucket listed, no neighbour of
    /// its own looked for); one that does not load keeps its file and its default lock and state.
    /// Loaded once per `ReadSnapshot`.
    public static func project(_ path: String) -> NeighbourProject {
        ReadSnapshot.answer("neighbour project", path) { projectLoadedNow(path) }
    }

    static func projectLoadedNow(_ path: String) -> NeighbourProject {
        let defaults = ControlFiles.controlFiles(ofSibling: path)
        let loaded = ManifestLoader.neighbourLoad(path)
        guard let manifest = loaded.manifest else {
            return NeighbourProject(manifestPath: path, manifest: nil, controlFiles: [("the manifest", path), ("the lock", defaults.lock)],
                                    lockFile: defaults.lock, stateFolder: defaults.state)
        }
        var controls: [(what: String, path: String)] = [("the manifest", path)]
        controls += manifest.files.dropFirst().map { ("an include", $0) }
        controls.append(("the lock", manifest.lockFile))
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            controls.append(("the index", URL(literalFilePath: bucket.path + "/" + index.path).standardizedFileURL.path))
        }
        var project = NeighbourProject(manifestPath: path, manifest: manifest, controlFiles: controls,
                                       lockFile: manifest.lockFile, stateFolder: manifest.stateFolder)
        project.loadErrors = loaded.diagnostics.hasErrors
        return project
    }

    /// The names in `folder` that may be manifests (by their names only: nothing is read), as the
    /// sibling checks list them.
    public static func manifestNames(in folder: String) -> [String] { ControlFiles.manifestNames(in: folder) }

    /// The manifests of the projects in `folder` itself (discovery's one definition), sorted.
    public static func manifests(in folder: String) -> [String] {
        ControlFiles.manifestNames(in: folder).sorted().map { folder == "/" ? "/" + $0 : folder + "/" + $0 }.filter(ControlFiles.isProjectManifest)
    }

    /// The manifests, gone, of the projects whose state (`.derive/STEM`) or Derive lock
    /// (`STEM.lock`) `folder` holds with no manifest of that stem beside them: `STEM.yaml`, which
    /// does not load, so its defaults stand for its lock and state.
    public static func manifestsGone(in folder: String) -> [String] {
        var stems = Set<String>()
        if let names = try? FileManager.default.contentsOfDirectory(atPath: folder + "/" + ProjectMarkers.stateFolderName) {
            stems.formUnion(names.filter { !$0.hasPrefix(".") })
        }
        if let names = try? FileManager.default.contentsOfDirectory(atPath: folder) {
            for name in names where name.hasSuffix(".lock") && isDeriveLock(folder + "/" + name) { stems.insert(String(name.dropLast(5))) }
        }
        // A manifest of that stem is there only if it is a project's manifest as discovery reads
        // it: a dangling link, a folder or a YAML file that is no manifest (`hello: world`) left
        // at its name does not make the project present (attack 48b's F6/F8: its lock and state
        // stopped protecting its outputs, and serve answered its private ones to anyone).
        let present = Set(ControlFiles.manifestNames(in: folder).filter { ControlFiles.isProjectManifest((folder == "/" ? "" : folder) + "/" + $0) }
            .map { ($0 as NSString).deletingPathExtension })
        // Not a lock whose first line names a manifest that is there: that manifest's lock, moved
        // by its `lock:` (`meta/d.lock` of derive.yaml; attack 47b's F1 fix took it for a gone
        // `meta/d.yaml` and named that as the owner of derive.yaml's outputs), or a copy of it.
        return stems.subtracting(present).sorted().map { (folder == "/" ? "" : folder) + "/" + $0 + ".yaml" }.filter { candidate in
            let named = goneManifestName(candidate)
            return named == candidate || !ControlFiles.isProjectManifest(named)
        }
    }

    /// The manifest a gone project (`manifestsGone`, named after its lock's or state's stem) was:
    /// the one its Derive lock's first line names, relative to the lock's folder (a lock moved to
    /// `locks/g.lock` names `../g.yaml`, attack 47b's F6: the project was named as `…/locks`);
    /// `manifest` itself when the lock names none. For messages: its records stay where found.
    public static func goneManifestName(_ manifest: String) -> String {
        manifestNamed(byLock: ControlFiles.controlFiles(ofSibling: manifest).lock) ?? manifest
    }

    /// The manifest the first line of the Derive lock at `lock` names (absolute, from the lock's
    /// folder); nil when it is no Derive lock or names none.
    public static func manifestNamed(byLock lock: String) -> String? {
        guard let named = LockFirstLine.lockHeader(lock).flatMap(LockFirstLine.manifest) else { return nil }
        let folder = (lock as NSString).deletingLastPathComponent
        return URL(literalFilePath: named, relativeTo: URL(literalFilePath: folder + "/")).standardizedFileURL.path
    }

    /// Whether `folder` holds a Derive build state: a regular `state.sqlite` stamped Derive's
    /// ("DrSt" in its header), whoever's (its header alone read: no database opened).
    public static func holdsDeriveState(_ folder: String) -> Bool {
        ControlFiles.stateDatabaseHeader(in: folder).map { ControlFiles.isStampedDerives($0.header) } ?? false
    }

    /// Whether the regular file at `path` starts as a Derive lock does (`ControlFiles.isDeriveLock`).
    public static func isDeriveLock(_ path: String) -> Bool { ControlFiles.isDeriveLock(path) }

    /// Whether the file at `path` is a project's manifest as discovery reads it (`ControlFiles.isProjectManifest`).
    public static func isProjectManifest(_ path: String) -> Bool { ControlFiles.isProjectManifest(path) }

    /// Whether `folder` is a project's: it holds a manifest, one that does not parse (mid-edit),
    /// or Derive's state folder `.derive` (a manifest emptied or half-written, its project built):
    /// serve's writers never enter it (attack 43b's finding 1: a nested project whose manifest had
    /// a syntax error, or was empty, lost every protection).
    public static func holdsProject(_ folder: String) -> Bool {
        var info = stat()
        if lstat(folder + "/" + ProjectMarkers.stateFolderName, &info) == 0 { return true }
        return ControlFiles.manifestNames(in: folder).contains { ControlFiles.isProjectManifest(folder + "/" + $0) }
    }

    /// The most private ACL a bucket gives any key (its ACL, each `objects:` rule).
    static func mostPrivate(_ bucket: Bucket) -> BucketACL {
        bucket.objects.reduce(bucket.acl) { .morePrivate($0, $1.acl.resolved(bucket: bucket.acl)) }
    }

    /// The most public ACL a bucket gives any key (its ACL, each `objects:` rule).
    public static func mostPublic(_ bucket: Bucket) -> BucketACL {
        bucket.objects.reduce(bucket.acl) { $0.openness >= $1.acl.resolved(bucket: bucket.acl).openness ? $0 : $1.acl.resolved(bucket: bucket.acl) }
    }
}

extension ControlFiles {
    /// No bucket that anonymous requests may reach (public by its ACL or an `objects:` rule) holds
    /// another project's manifest, include, lock, index or state folder, and no bucket shares
    /// files with another manifest's output bucket while it would answer those outputs more
    /// publicly than that manifest gives them (`NeighbourProjects`).
    func validateNeighbourProjects(into diagnostics: inout Diagnostics) {
        let (neighbours, belowCapped, aroundCapped) = NeighbourProjects.ofReportingCap(manifest)
        // What serve does about it (attack 52b's 5: the unweighed rest was served as the bucket says).
        let served = manifest.buckets.contains { NeighbourProjects.mostPublic($0).isPublic }
            ? "; while it is, derive serve answers anonymous readers of this manifest's public buckets only the files its own build records with their bytes (anything else there privately)" : ""
        // Attack 45b's F3: a cap reached said nothing, and a project beyond it was never looked at.
        if belowCapped {
            diagnostics.warning(rootLocation,
                                "the folders below the folder of \(display(manifest.file)), outside its buckets, \(NeighbourProjects.boundReached) (\(ForeignProjectFiles.maxNearbyFolders) folders or \(ForeignProjectFiles.maxNearbyManifests) manifests, \(ForeignProjectFiles.belowDepth) levels down; deeper levels are never looked at, with no warning): a project beyond them is not checked against this manifest's buckets\(served)",
                                hint: "keep other projects out of this manifest's folder, or move this manifest into a folder of its own")
        }
        // Attack 52b's 5b: the bound on the manifests around the buckets said nothing.
        if aroundCapped {
            diagnostics.warning(rootLocation,
                                "the folder of \(display(manifest.file)) and its buckets' folders and the folders above them \(NeighbourProjects.boundReached) (\(NeighbourProjects.maxProjects) manifests read, in that order): a project beyond them is not checked against this manifest's buckets\(served)",
                                hint: "keep other projects' manifests out of this manifest's folder and its buckets' folders, or move this manifest into a folder of its own")
        }
        guard !neighbours.isEmpty else { return }
        let ownFolder = FileSystemPath(manifest: (manifest.file as NSString).deletingLastPathComponent)
        for bucket in manifest.buckets {
            let folder = FileSystemPath(manifest: bucket.path)
            let location = bucket.pathLocation
            for other in neighbours {
                let whose = "\(display(other.manifestPath)), another project"
                let exposure = NeighbourProjects.mostPublic(bucket)
                // An index is meant to be read where it lies (its ACL against this bucket's is
                // the output check below); only writing it is refused here.
                var held = other.controlFiles.filter { ($0.what != "the index" || exposure == .publicReadWrite) && folder.contains(FileSystemPath(manifest: $0.path)) }
                // A state folder beside this manifest's is said by `validateSiblings` already.
                let otherFolder = FileSystemPath(manifest: (other.manifestPath as NSString).deletingLastPathComponent)
                if !otherFolder.sameFile(as: ownFolder), folder.contains(FileSystemPath(manifest: other.stateFolder)) {
                    held.append((what: "the state folder", path: other.stateFolder))
                }
                // A private bucket answers none of them anonymously, and serve refuses them to
                // signed requests too (`ForeignServedFiles`); builds refuse them per file.
                if !held.isEmpty, exposure.isPublic {
                    // The other project's lock and state are where its first build will write
                    // them: refused as much as the files there, but not said to be there yet
                    // (attack 45c's ms: `cp derive.yaml _site/` was said to have put a lock there).
                    // The manifest, when held, names the project once (its path was said twice:
                    // "holds the manifest www/g/g.yaml of www/g/g.yaml, another project").
                    let holdsManifest = held.contains { $0.what == "the manifest" && access($0.path, F_OK) == 0 }
                    let owner = holdsManifest ? "another project" : whose
                    let present = held.filter { access($0.path, F_OK) == 0 }.map { "\($0.what) \(display($0.path))" }
                    let future = held.filter { access($0.path, F_OK) != 0 }.map { "\($0.what) \(display($0.path))" }
                    let holds = [present.isEmpty ? nil : "holds \(present.joined(separator: ", ")) of \(owner)",
                                 future.isEmpty ? nil : "would hold \(future.joined(separator: ", ")) of \(present.isEmpty ? whose : "it") once that project builds"]
                        .compactMap { $0 }.joined(separator: ", and ")
                    diagnostics.error(location,
                                      "bucket '\(bucket.name)' (\(bucket.declaredPath)) \(holds), and is \(exposure.rawValue): anonymous requests could read\(exposure == .publicReadWrite ? " or change" : "") them (two manifests never touch each other's files)",
                                      hint: "give bucket '\(bucket.name)' a folder that holds no other project (e.g. a subfolder of its own), or make it private (its acl: and every objects: rule)")
                }
                for output in other.outputBuckets {
                    let theirs = FileSystemPath(manifest: output.path)
                    guard folder.contains(theirs) || theirs.contains(folder),
                          let floor = other.mostPrivateOutputACL(in: output), exposure.openness > floor.openness else { continue }
                    diagnostics.error(location,
                                      "bucket '\(bucket.name)' (\(bucket.declaredPath)) shares files with bucket '\(output.name)' (\(display(output.path))) that \(whose), writes its outputs into, and is \(exposure.rawValue) where those outputs are \(floor.rawValue): derive serve of this manifest would answer them more publicly than their builder gives them",
                                      hint: "serve those outputs with derive serve \(display(other.manifestPath)), or make bucket '\(bucket.name)' \(floor.rawValue) (its acl: and every objects: rule), or give it a folder of its own")
                }
            }
        }
    }
}
