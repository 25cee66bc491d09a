import Confinement
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// The registry of built projects (`ProjectRegistry`) as the commands that do not build read it:
/// `validate` (and `serve`, which loads its manifest as validate does, and asks it per file),
/// and `init`. Why: a project found only through the registry had its private outputs in this
/// manifest's public bucket validated and served to anyone: far away, outside the bounded
/// neighbour search (attack 51a's 3b), or beside it with its manifest half-saved, emptied or cut
/// before its `lock:`/`state:` lines (attack 51b's H1); and init wrote a project into such a
/// project's bucket (attack 51b's M1). Read only: the registry is written by builds alone.
public enum RegisteredProjects {
    /// The registry's lines of projects other than the one whose manifest is `manifest` and whose
    /// state folder is `state` (absolute paths), with something of them still there (manifest,
    /// lock or state folder). None when the registry is missing or cannot be read: builds take
    /// that as doubt; here nothing more is known than without it.
    public static func others(than manifest: String?, state: String?) -> [ProjectRegistry.Entry] {
        (try? othersOrWhy(than: manifest, state: state).get()) ?? []
    }

    /// Why the registry cannot be read (doubt), as a value.
    public struct Unreadable: Error { public var why: String }

    /// `others`, or why the registry cannot be read (validate says so: attack 52b's L4, its
    /// warning about a registered project mid-edit went without a word). `keepGone`: the lines of
    /// projects with nothing left too (a running serve watches their paths: put back, they count).
    static func othersOrWhy(than manifest: String?, state: String?, keepGone: Bool = false) -> Result<[ProjectRegistry.Entry], Unreadable> {
        let entries: [ProjectRegistry.Entry]
        switch ProjectRegistry.read() {
        case .entries(let read): entries = read
        case .unreadable(let why): return .failure(Unreadable(why: why))
        }
        let ownManifest = manifest.map(ProjectRegistry.realName), ownState = state.map(ProjectRegistry.realName)
        // A project moved since is named where it lies now (attack 52b's 3: forgotten until it built again).
        return .success(ProjectRegistry.followingMoves(entries).filter { entry in
            !(ownManifest.map { PathKey.same($0, entry.manifest) } ?? false) && !(ownState.map { PathKey.same($0, entry.state) } ?? false)
                && (keepGone || !ProjectRegistry.isGone(entry))
        })
    }

    /// This manifest's buckets that anonymous requests may reach, with their real folders.
    static func publicFolders(_ manifest: Manifest) -> [(Bucket, String)] {
        manifest.buckets.map { ($0, ProjectRegistry.realName(URL(literalFilePath: $0.path).standardizedFileURL.path)) }
            .filter { NeighbourProjects.mostPublic($0.0).isPublic }
    }

    /// Of `records` (real path → the ACL its build gave), the regular files in `folder` of `bucket`
    /// that the bucket exposes more publicly than they were built: how public the bucket is, how
    /// many, the most private ACL among them and up to three named; nil when there are none.
    static func heldMorePrivately(_ records: [String: BucketACL], in bucket: Bucket, folder: String, display: (String) -> String)
        -> (exposure: BucketACL, count: Int, floor: BucketACL, named: String)? {
        let exposure = NeighbourProjects.mostPublic(bucket)
        var info = stat()
        let held = records.filter { file, acl in
            exposure.openness > acl.openness && inside(file, folder) && lstat(file, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
        guard let floor = held.values.min(by: { $0.openness < $1.openness }) else { return nil }
        let named = held.keys.sorted().prefix(3).map(display).joined(separator: ", ") + (held.count > 3 ? " …" : "")
        return (exposure, held.count, floor, named)
    }

    static func inside(_ inner: String, _ outer: String) -> Bool {
        PathKey.same(inner, outer) || inner.utf8.starts(with: ((outer == "/" ? "" : outer) + "/").utf8)
    }

    /// Of `folders` (`publicFolders`), those sharing files with a bucket folder `entry` records.
    static func overlapping(_ entry: ProjectRegistry.Entry, _ folders: [(Bucket, String)]) -> [(Bucket, String)] {
        folders.filter { _, folder in entry.buckets.values.contains { inside($0, folder) || inside(folder, $0) } }
    }

    /// The files whose change can change what `validate` says of `manifest` (a running serve looks
    /// at them before each request and loads its manifest again, validate's checks included, when
    /// one changed: attack 52b's 1 and 2, a registered neighbour's manifest loading again without
    /// its lock and state, or saved whole again mid-serve, made validate refuse the manifest while
    /// the running serve went on answering, and handed that neighbour's private outputs to anyone):
    /// the registry itself, and of each project it names whose buckets share files with a public
    /// bucket of `manifest` (gone or not), its manifest, includes, lock and state folder.
    public static func watchedFiles(_ manifest: Manifest) -> [String] {
        let folders = publicFolders(manifest)
        guard !folders.isEmpty, let registry = ProjectRegistry.path else { return [] }
        let file = URL(literalFilePath: manifest.files.first ?? manifest.file).standardizedFileURL.path
        var files = [registry]
        for entry in (try? othersOrWhy(than: file, state: manifest.stateFolder, keepGone: true).get()) ?? [] where !overlapping(entry, folders).isEmpty {
            files += [entry.manifest, entry.lock, entry.state]
            files += NeighbourProjects.project(entry.manifest).controlFiles.filter { $0.what != "the index" }.map(\.path)
        }
        var seen = Set<String>()
        return files.filter { seen.insert($0).inserted }
    }

    /// Whether the project stands as the registry names it: its manifest loads without errors,
    /// with the lock and build state the registry names (a manifest half-saved before its
    /// `lock:`/`state:` lines loads with its defaults instead: its records are not its word then).
    public static func standsAsRegistered(_ entry: ProjectRegistry.Entry, _ project: NeighbourProject) -> Bool {
        project.manifest != nil && !project.loadErrors
            && PathKey.same(ProjectRegistry.realName(project.lockFile), entry.lock)
            && PathKey.same(ProjectRegistry.realName(project.stateFolder), entry.state)
    }

    /// The outputs the project's lock and build state record (real path → the ACL its build gave
    /// it): its state's rows where they were written, else its lock's lines in the bucket
    /// folders the registry names (a lock line says no ACL: private).
    public static func recordedOutputs(of entry: ProjectRegistry.Entry) -> [String: BucketACL] {
        var found: [String: BucketACL] = [:]
        var stateKept = Set<String>()
        for (output, row) in ForeignRecordedOutputs.stateOutputRows(state: entry.state, manifest: entry.manifest) {
            guard let (bucket, key) = PathKey.split(output) else { continue }
            guard let folder = row.folder.isEmpty ? entry.buckets[bucket] : ProjectRegistry.realName(row.folder) else { continue }
            let file = (folder == "/" ? "" : folder) + "/" + key
            let acl = BucketACL(rawValue: row.acl) ?? .private
            found[file] = found[file].map { .morePrivate($0, acl) } ?? acl
            stateKept.insert(output)
        }
        var info = stat()
        if stat(entry.lock, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
           let data = FileManager.default.contents(atPath: entry.lock) {
            for line in LockFile.salvagedEntries(data) where !stateKept.contains(line.path) {
                guard let (bucket, key) = PathKey.split(line.path), let folder = entry.buckets[bucket] else { continue }
                found[(folder == "/" ? "" : folder) + "/" + key] = .private
            }
        }
        return found
    }

    /// The project the registry names whose bucket or build state folder `folder` is or lies in
    /// (for `init`: a sibling `../shared` or an absolute bucket folder, which the look upward
    /// never meets, and a bucket of a project whose manifest is mid-edit, emptied or renamed).
    /// A bucket holding its own manifest's folder (refused by validate) claims nothing.
    public static func enclosing(folder: String) -> EnclosingProject.Found? {
        let real = ProjectRegistry.realName(URL(literalFilePath: folder).standardizedFileURL.path)
        func holds(_ outer: String) -> Bool { PathKey.same(outer, real) || real.utf8.starts(with: ((outer == "/" ? "" : outer) + "/").utf8) }
        for entry in others(than: nil, state: nil).reversed() {
            let projectFolder = (entry.manifest as NSString).deletingLastPathComponent
            for (name, bucket) in entry.buckets.sorted(by: { $0.key < $1.key }) where holds(bucket) && !(PathKey.same(bucket, projectFolder)
                || projectFolder.utf8.starts(with: ((bucket == "/" ? "" : bucket) + "/").utf8)) {
                return EnclosingProject.Found(manifest: entry.manifest, what: "bucket '\(name)' (\(bucket)), as the registry of built projects records it,")
            }
            if holds(entry.state) {
                return EnclosingProject.Found(manifest: entry.manifest, what: "the build state folder \(entry.state), as the registry of built projects records it,")
            }
        }
        return nil
    }

    /// Validate's check of the projects the registry names against this manifest's public
    /// buckets (`ControlFiles.validateNeighbourProjects` checks the nearby ones, which a
    /// registered project also is when it stands as registered and is found there):
    /// - one that stands as registered, with an output bucket sharing files with a public bucket
    ///   of this manifest that it gives its outputs more privately (attack 51a's 3b);
    /// - one that does not (its manifest does not load, or gone, or half-saved without its
    ///   `lock:`/`state:`), whose lock or state records an output that lies in a public bucket of
    ///   this manifest more privately than that bucket answers it (attack 51b's H1): a warning
    ///   (serve answers those files as they were built), as a nearby neighbour mid-edit is no error.
    public static func validate(_ manifest: Manifest, into diagnostics: inout Diagnostics) {
        let file = URL(literalFilePath: manifest.files.first ?? manifest.file).standardizedFileURL.path
        let folders = publicFolders(manifest)
        guard !folders.isEmpty else { return }
        let entries: [ProjectRegistry.Entry]
        switch othersOrWhy(than: file, state: manifest.stateFolder) {
        case .success(let found): entries = found
        case .failure(let unreadable):
            // Said, not dropped (attack 52b's L4): what it would record is not weighed now.
            diagnostics.warning(folders[0].0.pathLocation,
                                "\(unreadable.why): the projects it records are not checked against this manifest's public buckets (builds take that as doubt)",
                                hint: "move that file aside (the next derive build writes the registry again, with every project the state home still holds), or check XDG_STATE_HOME")
            return
        }
        guard !entries.isEmpty else { return }
        let ownFolder = (file as NSString).deletingLastPathComponent + "/"
        func display(_ path: String) -> String {
            let bytes = Array(path.utf8), prefix = Array(ownFolder.utf8)
            return bytes.starts(with: prefix) ? String(decoding: bytes[prefix.count...], as: UTF8.self) : path
        }
        var nearby: Set<String>?
        for entry in entries {
            let bucketsOverlapping = overlapping(entry, folders)
            guard !bucketsOverlapping.isEmpty else { continue }
            let project = NeighbourProjects.project(entry.manifest)
            let whose = "\(display(entry.manifest)), another project"
            if standsAsRegistered(entry, project) {
                // Said by the nearby check already when discovery finds it there.
                if nearby == nil { nearby = Set(NeighbourProjects.manifestPaths(of: manifest).map(ProjectRegistry.realName)) }
                if nearby?.contains(entry.manifest) == true { continue }
                for (bucket, folder) in bucketsOverlapping {
                    let exposure = NeighbourProjects.mostPublic(bucket)
                    for output in project.outputBuckets {
                        let theirs = ProjectRegistry.realName(URL(literalFilePath: output.path).standardizedFileURL.path)
                        guard inside(theirs, folder) || inside(folder, theirs), let floor = project.mostPrivateOutputACL(in: output),
                              exposure.openness > floor.openness else { continue }
                        diagnostics.error(bucket.pathLocation,
                                          "bucket '\(bucket.name)' (\(bucket.declaredPath)) shares files with bucket '\(output.name)' (\(theirs)) that \(whose) found by the registry of built projects, writes its outputs into, and is \(exposure.rawValue) where those outputs are \(floor.rawValue): derive serve of this manifest would answer them more publicly than their builder gives them",
                                          hint: "serve those outputs with derive serve \(display(entry.manifest)), or make bucket '\(bucket.name)' \(floor.rawValue) (its acl: and every objects: rule), or give it a folder of its own")
                    }
                }
                // What its build recorded counts too, wherever its state lies now (attack 53b's 1).
                warnRecordedMorePrivately(entry, overlapping: bucketsOverlapping, display: display, into: &diagnostics)
                continue
            }
            let records = recordedOutputs(of: entry)
            guard !records.isEmpty else { continue }
            var info = stat()
            let gone = lstat(entry.manifest, &info) != 0
            let why = gone ? "whose manifest is no longer there" : project.manifest == nil || project.loadErrors ? "whose manifest does not load now"
                : "whose manifest no longer names the lock and build state it built with"
            for (bucket, folder) in bucketsOverlapping {
                guard let (exposure, count, floor, named) = heldMorePrivately(records, in: bucket, folder: folder, display: display) else { continue }
                // A warning, as for a nearby neighbour mid-edit: an edit in progress does not stop
                // this manifest's serve, which answers those files privately meanwhile.
                diagnostics.warning(bucket.pathLocation,
                                  "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(count) output\(count == 1 ? "" : "s") (\(named)) that \(whose) \(why), built as \(floor.rawValue) (its lock \(display(entry.lock)) and build state \(display(entry.state)), as the registry of built projects records them), and is \(exposure.rawValue): derive serve of this manifest answers them no more publicly than they were built (\(floor.rawValue)) until that project builds again",
                                  hint: gone ? "put \(display(entry.manifest)) back and build it, or remove its lock and build state if that project is gone for good; or make bucket '\(bucket.name)' \(floor.rawValue) (its acl: and every objects: rule), or give it a folder of its own"
                                      : "finish editing \(display(entry.manifest)) and build it, or make bucket '\(bucket.name)' \(floor.rawValue) (its acl: and every objects: rule), or give it a folder of its own")
            }
        }
    }
}
