import Confinement
import Foundation

/// Two manifests in one folder never share a lock or a state folder. The defaults are named
/// after the manifest's stem, so `derive.yaml` and `derive.yml` side by side would share
/// `derive.lock` and `.derive/derive/`; and `lock:` may not name a neighbour's default lock
/// (`site.yaml` with `lock: derive.lock` beside `derive.yaml`).
extension ControlFiles {

    /// A name for the suggested lock and state that is not the shared default: the file name
    /// with its extension (`derive.yaml.lock`), or, for a manifest without one (whose name is
    /// its stem, so `derive.lock` would be the very default shared), `derive-own.lock`.
    static func ownName(_ name: String) -> String {
        (name as NSString).pathExtension.isEmpty ? name + "-own" : name
    }

    /// The manifest whose records the shared lock or state folder are: the one the lock's first
    /// line names, else the one the state's owner record names; nil when neither says.
    func sharedRecordsOwner(lockShared: Bool, stateShared: Bool) -> (manifest: String, how: String)? {
        if lockShared, let owner = Self.lockOwnerLine(manifest.lockFile) {
            let folder = URL(literalFilePath: (manifest.lockFile as NSString).deletingLastPathComponent + "/")
            return (URL(literalFilePath: owner, relativeTo: folder).standardizedFileURL.path, "the lock's first line names it")
        }
        if stateShared, case .owned(let recorded) = Self.stateDatabase(in: manifest.stateFolder) {
            return (recorded, "the build state records it as its manifest")
        }
        return nil
    }

    func validateSiblings(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first else { return }
        let rootURL = URL(literalFilePath: root)
        let folder = rootURL.deletingLastPathComponent().path
        let name = rootURL.lastPathComponent
        let stem = rootURL.deletingPathExtension().lastPathComponent
        let rootPath = FileSystemPath(manifest: root)
        func otherManifest(_ stem: String, in folder: String, sharing: Bool = false) -> String? {
            for candidate in Self.manifestCandidates(stem: stem, in: folder) where Self.couldBeManifest(candidate) {
                if !FileSystemPath(manifest: candidate).sameFile(as: rootPath), !sharing || sharesControlFiles(withSibling: candidate) { return candidate }
            }
            return nil
        }
        // A sibling that names its own lock and state (both) shares nothing with this manifest.
        var reported: String?
        if locations.lock == nil || locations.state == nil, let sibling = otherManifest(stem, in: folder, sharing: true) {
            reported = sibling
            // Named as this manifest uses them, and only what is shared.
            let theirs = Self.controlFiles(ofSibling: sibling)
            var shared: [String] = []
            if FileSystemPath(manifest: theirs.lock).sameFile(as: FileSystemPath(manifest: manifest.lockFile)) {
                shared.append("the lock \(display(manifest.lockFile))")
            }
            if FileSystemPath(manifest: theirs.state).sameFile(as: FileSystemPath(manifest: manifest.stateFolder)) {
                shared.append("the state folder \(display(manifest.stateFolder))")
            }
            // The one to change is the manifest whose records they are not (attack 50c's M6: the
            // advice named the built derive.yaml, and followed, it lost its lock, state and index
            // to the copy beside it).
            let siblingName = (sibling as NSString).lastPathComponent
            let hint: String
            switch sharedRecordsOwner(lockShared: shared.first?.hasPrefix("the lock") == true, stateShared: shared.last?.hasPrefix("the state") == true) {
            case .some(let owner) where FileSystemPath(manifest: owner.manifest).sameFile(as: rootPath):
                hint = "they hold \(name)'s records (\(owner.how)), so \(siblingName) is the one to change: set both 'lock:' and 'state:' in \(siblingName) to names of its own "
                    + "(e.g. lock: \(Self.ownName(siblingName)).lock and state: .derive/\(Self.ownName(siblingName))), or rename \(siblingName)"
            case .some(let owner) where FileSystemPath(manifest: owner.manifest).sameFile(as: FileSystemPath(manifest: sibling)):
                hint = "they hold \(siblingName)'s records (\(owner.how)), so \(name) is the one to change: set both 'lock:' and 'state:' in \(name) to names of its own "
                    + "(e.g. lock: \(Self.ownName(name)).lock and state: .derive/\(Self.ownName(name))), or rename \(name)"
            default:
                hint = "set both 'lock:' and 'state:' in \(name) to names of its own (e.g. lock: \(Self.ownName(name)).lock and state: .derive/\(Self.ownName(name))), or rename one of the manifests"
            }
            diagnostics.error(rootLocation,
                              "\(display(root)) and \(display(sibling)) are in one folder and would share \(shared.joined(separator: " and "))",
                              hint: hint)
        }
        if let location = locations.lock {
            let lockURL = URL(literalFilePath: manifest.lockFile)
            let lockPath = FileSystemPath(manifest: manifest.lockFile)
            // A neighbour's lock where it keeps it: its `lock:` read as builds read it (attack
            // 47b's F6: `lock: meta/d.lock`, derive.yaml's moved lock, validated, while
            // `lock: derive.lock`, which derive.yaml no longer uses, was called its lock).
            if let owner = Self.manifests(in: folder).first(where: { sibling in
                !FileSystemPath(manifest: sibling).sameFile(as: rootPath) && FileSystemPath(manifest: Self.controlFiles(ofSibling: sibling).lock).sameFile(as: lockPath)
            }) {
                diagnostics.error(location, "the lock file \(display(manifest.lockFile)) is the lock of \(display(owner)); two manifests may not share a lock",
                                  hint: "name a file of this manifest's own, e.g. lock: \(stem).lock")
            } else if lockURL.pathExtension == "lock", let owner = otherManifest(lockURL.deletingPathExtension().lastPathComponent, in: lockURL.deletingLastPathComponent().path) {
                // Its default lock, which it does not use now (its `lock:` names another file):
                // still refused, as that manifest takes it back once its `lock:` line goes.
                let theirs = Self.controlFiles(ofSibling: owner).lock
                let whose = FileSystemPath(manifest: theirs).sameFile(as: lockPath) ? "the lock of \(display(owner))"
                    : "the default lock of \(display(owner)), whose 'lock:' names \(display(theirs)) now (it takes this name back once that line goes)"
                diagnostics.error(location, "the lock file \(display(manifest.lockFile)) is \(whose); two manifests may not share a lock",
                                  hint: "name a file of this manifest's own, e.g. lock: \(stem).lock")
            }
        }
        // The state folder, as the lock: the manifests whose state folder it could be are those in
        // this folder (any name, read as init reads them) and, for a `.derive/<stem>`, the manifests
        // of that stem beside `.derive` (its default owner, found as a lock's default owner is).
        var siblings = Self.manifests(in: folder)
        let stateReal = FileSystemPath(manifest: manifest.stateFolder).real as NSString
        if (stateReal.deletingLastPathComponent as NSString).lastPathComponent == ".derive" {
            let owners = ((stateReal.deletingLastPathComponent as NSString).deletingLastPathComponent, stateReal.lastPathComponent)
            siblings += Self.manifestCandidates(stem: owners.1, in: owners.0).filter(Self.couldBeManifest)
        }
        var seen: [FileSystemPath] = manifest.files.map { FileSystemPath(manifest: $0) }
        for sibling in siblings {
            let path = FileSystemPath(manifest: sibling)
            guard !seen.contains(where: { $0.sameFile(as: path) }) else { continue }
            seen.append(path)
            validateAgainst(sibling: sibling, alreadyReported: reported.map { FileSystemPath(manifest: $0).sameFile(as: path) } ?? false, into: &diagnostics)
        }
    }

    /// One neighbour's state folder is its own: this manifest's `state:` may not be it (each build
    /// would take the other's state for a foreign one and move it aside, and retention would delete
    /// the other's), and this manifest's lock, index, buckets and state may not lie inside it (the
    /// neighbour's builds would open, overwrite, move aside or sweep them; attack 27w's findings
    /// 3b and 11). A state folder that holds its manifest (`state: .`) is the user's folder, where
    /// only Derive's names and cache folders are the state's, as for this manifest's own.
    private func validateAgainst(sibling: String, alreadyReported: Bool, into diagnostics: inout Diagnostics) {
        let theirs = Self.controlFiles(ofSibling: sibling)
        let theirState = FileSystemPath(manifest: theirs.state)
        let name = (manifest.files.first.map { ($0 as NSString).lastPathComponent }) ?? "derive.yaml"
        if theirState.sameFile(as: FileSystemPath(manifest: manifest.stateFolder)) {
            // Both at their defaults: the same-stem check above said so.
            if let location = locations.state, !alreadyReported {
                diagnostics.error(location,
                                  "the state folder \(display(manifest.stateFolder)) is the state folder of \(display(sibling)) too; two manifests may not share a state folder (each build would take the other's state for a foreign one and move it aside, and delete the other's older states)",
                                  hint: "name a folder of this manifest's own, e.g. state: .derive/\(Self.ownName(name)), or give \(display(sibling)) one")
            }
            return
        }
        let holdsTheirManifest = theirState.contains(FileSystemPath(manifest: sibling))
        let cacheFolders = [StateFiles.buildRenders, StateFiles.serveCache, StateFiles.serveUploads].map { FileSystemPath(manifest: theirs.state + "/" + $0) }
        func inside(_ raw: String) -> Bool {
            let path = FileSystemPath(manifest: raw)
            guard holdsTheirManifest else { return theirState.contains(path) }
            let parent = FileSystemPath(manifest: (raw as NSString).deletingLastPathComponent)
            return (parent.sameFile(as: theirState) && StateFiles.isReserved((raw as NSString).lastPathComponent))
                || cacheFolders.contains { $0.contains(path) }
        }
        func refuse(_ what: String, at location: SourceLocation) {
            diagnostics.error(location,
                              "\(what) is inside the state folder \(display(theirs.state)) of \(display(sibling))\(holdsTheirManifest ? ", at a name Derive keeps there" : ""); that manifest's builds would open, overwrite, move aside or delete it, and this one's would break its state",
                              hint: "choose a path outside \(display(theirs.state))\(holdsTheirManifest ? " or another name" : "")")
        }
        if inside(manifest.lockFile) { refuse("the lock file \(display(manifest.lockFile))", at: locations.lock ?? rootLocation) }
        if let location = locations.state, inside(manifest.stateFolder) { refuse("the state folder \(display(manifest.stateFolder))", at: location) }
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket), inside(bucket.path + "/" + index.path) {
            refuse("the index \(display(bucket.path + "/" + index.path))", at: locations.index ?? rootLocation)
        }
        for bucket in manifest.buckets {
            let folder = FileSystemPath(manifest: bucket.path)
            if inside(bucket.path) {
                refuse("bucket '\(bucket.name)' (\(bucket.declaredPath))", at: bucket.pathLocation)
            } else if !holdsTheirManifest, folder.contains(theirState) {
                diagnostics.error(bucket.pathLocation,
                                  "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds the state folder \(display(theirs.state)) of \(display(sibling)); this manifest's outputs could land on that manifest's state",
                                  hint: "give the bucket a folder of its own that does not hold \(display(theirs.state))")
            }
        }
    }
}

extension ControlFiles {
    /// The index is never another project's lock, index, state folder, manifest or include, by its
    /// path alone, whether or not that project has built yet (attack 41c's C8: `index:
    /// top/derive.lock` beside an unbuilt sub/derive.yaml in bucket `top` validated, the build wrote
    /// site.yaml's index there, and sub could never build; the same onto sub's declared `index:`).
    /// The plan refuses such a file once it exists (`ControlFileTargets.indexRefusal`); said here,
    /// a validation error is a plan error too, before anything is written. Another project's
    /// source folder is left to the plan (a project above may read this whole folder as sources).
    /// Only the projects in the index's folder and above are asked here (no nearby scan: every
    /// validation pays this check); a file that exists at the path is the plan's to refuse.
    func validateIndexBesideOtherProjects(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first, let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) else { return }
        let location = locations.index ?? rootLocation
        // Said already (inside another manifest's state folder): once is enough.
        guard !diagnostics.errors.contains(where: { $0.file == location.file && $0.line == location.line && $0.column == location.column }) else { return }
        let path = URL(literalFilePath: bucket.path + "/" + index.path).standardizedFileURL.path
        // Not a file merely in the folder or a bucket of a project that does not load now (its
        // files are taken at its word when they exist: the plan refuses those; a path alone is not).
        guard let owner = ForeignProjectFiles(besides: root, nearby: false).owner(of: path), owner.isControlFile else { return }
        // A project in a folder above, whose path lands inside this project's folder, is the one
        // refused (sub/derive.yaml keeps its `index: out/index.json`; site.yaml above may not take it).
        let ours = FileSystemPath(manifest: (root as NSString).deletingLastPathComponent)
        let theirs = FileSystemPath(manifest: (owner.manifest as NSString).deletingLastPathComponent)
        if ours.contains(FileSystemPath(manifest: path)), theirs.contains(ours), !ours.contains(theirs) { return }
        // Another project's declared index outside its own folder (two copies of a project side by
        // side, both with `index: ../shared/index.json`): by path alone neither is the owner, and
        // refusing both would break the original because of a copy. The plan decides by records
        // (the index's recorded owner keeps it; the other is refused there).
        // So is a neighbour's in this very folder (a copy, `other.yaml`, made to try another
        // setting: attack 45a's M2 refused the built derive.yaml, whose lock records the index,
        // because of the unbuilt copy): the plan's records decide there too.
        if owner.what == "the index", !theirs.contains(FileSystemPath(manifest: path)) || theirs.sameFile(as: ours) { return }
        diagnostics.error(location, "the index " + owner.refusal(path, display: { display($0) }, fix: "give 'index:' a path of this project's own"))
    }

    /// This manifest's lock, state folder and index, where one lies outside this manifest's
    /// folder (`lock: ../B/out/t/a1.jpg`, `state: ../B/out/st`, `index: nbb/out/t/a1.jpg` with
    /// `nbb: {path: ../B}`) lie in no bucket of another project nearby (the index is no file of
    /// it either), by path alone, built or not (attack 42d's N7: the build wrote there, and the
    /// sibling never built again, or its serve handed out this one's state database). Only such
    /// paths pay the nearby scan (`ForeignProjectFiles`); those inside this folder are the checks
    /// beside this one's.
    func validateControlFilesOutsideNearbyProjects(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first else { return }
        let folder = FileSystemPath(manifest: (root as NSString).deletingLastPathComponent)
        var controls: [(what: String, path: String, key: String, location: SourceLocation)] = [
            ("the lock file \(display(manifest.lockFile))", manifest.lockFile, "lock", locations.lock ?? rootLocation),
            ("the state folder \(display(manifest.stateFolder))", manifest.stateFolder, "state", locations.state ?? rootLocation),
        ]
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            let path = URL(literalFilePath: bucket.path + "/" + index.path).standardizedFileURL.path
            controls.append(("the index \(display(path))", path, "index", locations.index ?? rootLocation))
        }
        let outside = controls.filter { !folder.contains(FileSystemPath(manifest: $0.path)) }
        guard !outside.isEmpty else { return }
        let foreign = ForeignProjectFiles(besides: root)
        for control in outside {
            // Said already (inside another manifest's state folder, or beside it): once is enough.
            guard !diagnostics.errors.contains(where: { $0.file == control.location.file && $0.line == control.location.line && $0.column == control.location.column }) else { continue }
            // Another project's own lock or state folder shared (`state: ../st` in two folders) is
            // the build's to refuse, naming both, once one has claimed it; only its buckets here.
            let isIndex = control.key == "index"
            if isIndex, let owner = foreign.owner(of: control.path), Self.indexRefused(control.path, owner: owner) {
                diagnostics.error(control.location, "\(control.what) " + owner.reason(display: { display($0) }, fix: "give '\(control.key):' a path of this project's own"))
            } else if let recorder = foreign.recorders(of: control.path).first(where: { recorder in
                // An index in an output folder both write (two copies side by side with
                // `out: ../shared`) is the plan's to judge by records, as `validateIndexBesideOtherProjects` says.
                !isIndex || !manifest.buckets.contains { FileSystemPath(manifest: $0.path).sameFile(as: FileSystemPath(manifest: recorder.folder)) }
            }) {
                let bucket = recorder.output.split(separator: "/", maxSplits: 1).first.map(String.init) ?? recorder.output
                diagnostics.error(control.location,
                                  "\(control.what) is inside bucket '\(bucket)' of \(display(recorder.manifest)), another project; its builds would write over or delete it and its derive serve would hand it out, whether or not it has built yet",
                                  hint: "give '\(control.key):' a path outside \(display(recorder.folder))")
            }
        }
    }

    /// Whether an index at `path` that `owner` claims is refused by path alone: another project's
    /// control file, but not its declared index outside its own folder (two copies side by side).
    static func indexRefused(_ path: String, owner: ForeignProjectFiles.Owner) -> Bool {
        guard owner.isControlFile else { return false }
        let theirs = FileSystemPath(manifest: (owner.manifest as NSString).deletingLastPathComponent)
        return !(owner.what == "the index" && !theirs.contains(FileSystemPath(manifest: path)))
    }

    /// This manifest's lock and state folder lie outside every bucket folder of the manifests in
    /// its folder, as they lie outside its own (attack 42a's M1: `lock: sout/index.json` beside a
    /// site.yaml whose bucket `out` is `sout` and whose index is `out/index.json` validated, the
    /// build wrote its lock there, and site.yaml could never build; `lock: sout/t/a1.jpg` and
    /// `state: sout/st` likewise). By paths alone, built or not. A neighbour's bucket that holds
    /// its own manifest is that manifest's error, not this one's.
    func validateControlFilesOutsideNeighbourBuckets(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first else { return }
        let folder = (root as NSString).deletingLastPathComponent
        let own = FileSystemPath(manifest: root)
        let controls: [(what: String, path: FileSystemPath, key: String, location: SourceLocation)] = [
            ("the lock file \(display(manifest.lockFile))", FileSystemPath(manifest: manifest.lockFile), "lock", locations.lock ?? rootLocation),
            ("the state folder \(display(manifest.stateFolder))", FileSystemPath(manifest: manifest.stateFolder), "state", locations.state ?? rootLocation),
        ]
        for name in Self.manifestNames(in: folder).sorted() {
            let path = folder == "/" ? "/" + name : folder + "/" + name
            let neighbourFile = FileSystemPath(manifest: path)
            guard Self.couldBeManifest(path), !neighbourFile.sameFile(as: own) else { continue }
            guard let neighbour = ManifestLoader.neighbourLoad(path).manifest else { continue }
            for bucket in neighbour.buckets {
                let bucketFolder = FileSystemPath(manifest: bucket.path)
                guard !bucketFolder.contains(neighbourFile) else { continue }
                for control in controls where bucketFolder.contains(control.path) {
                    diagnostics.error(control.location,
                                      "\(control.what) is inside bucket '\(bucket.name)' (\(bucket.declaredPath)) of \(display(path)), the manifest beside this one; that manifest's builds would write over or delete it and its derive serve would hand it out",
                                      hint: "give '\(control.key):' a path outside \(display(bucket.path))")
                }
            }
        }
    }
}
