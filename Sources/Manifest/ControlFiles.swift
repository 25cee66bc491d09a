import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Bounds on what the buckets' paths may pass through.
public enum BucketPathBudget {
    /// Symbolic links and folders met resolving every bucket's path (each counted once): serve
    /// looks at the folders before each request and walks the paths again when one changed.
    public static let maxSteps = 4096
}

/// Where `state:`, `lock:` and `index:` were written, when they were.
struct ControlLocations {
    var state: SourceLocation?
    var lock: SourceLocation?
    var index: SourceLocation?
}

/// Derive's own files never mix with objects: the manifest, its includes, the lock and the
/// state folder (which holds the serve cache) may not lie inside any bucket folder, outputs may
/// not land on them, on the index or on any rule's sources, and the index may not be writable
/// by anyone. Containment is decided by the file system (real paths of what exists, and the
/// identity of every existing ancestor), not by how the paths are spelt.
struct ControlFiles {
    let manifest: Manifest
    let outlines: [RuleOutline]
    let locations: ControlLocations
    let rootLocation: SourceLocation
    /// `ManifestLoader.neighbourChecks`.
    var checksNeighbours = true

    /// One control file or folder.
    struct Control {
        var what: String
        var path: String
        var isFolder: Bool
        /// Where to report it when it is inside a bucket (nil: at the bucket's path).
        var location: SourceLocation?
    }

    func validate(into diagnostics: inout Diagnostics) {
        let buckets = manifest.buckets.map { (bucket: $0, folder: FileSystemPath(manifest: $0.path)) }
        var controls: [Control] = []
        for (index, file) in manifest.files.enumerated() {
            controls.append(Control(what: index == 0 ? "the manifest \(display(file))" : "the included manifest \(display(file))",
                                    path: file, isFolder: false, location: nil))
        }
        controls.append(Control(what: "the lock file \(display(manifest.lockFile))", path: manifest.lockFile, isFolder: false,
                                location: locations.lock))
        controls.append(Control(what: "the state folder \(display(manifest.stateFolder)) (build state and serve cache)",
                                path: manifest.stateFolder, isFolder: true, location: locations.state))
        let controlPaths = controls.map { FileSystemPath(manifest: $0.path) }
        validateSiblings(into: &diagnostics)
        validateForeignStates(into: &diagnostics)
        validateDeclaredLockOwner(into: &diagnostics)
        validateGuessedSuccession(into: &diagnostics)
        validateGoneOwnersStateFolder(into: &diagnostics)
        if checksNeighbours {
            validateNeighbourProjects(into: &diagnostics)
            validateGoneNeighbourProjects(into: &diagnostics)
        }

        // The lock and the index are written under a temporary name longer than theirs (attack 58d's L1:
        // a 250-byte lock name validated, then every build failed writing it, `File name too long`).
        var written = [(what: "the lock file \(display(manifest.lockFile))", path: manifest.lockFile, location: locations.lock)]
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            written.append(("the index \(display(bucket.path + "/" + index.path))", bucket.path + "/" + index.path, locations.index))
        }
        for file in written {
            let bytes = (file.path as NSString).lastPathComponent.utf8.count
            guard bytes > ConfinedFolder.longestInstalledName else { continue }
            diagnostics.error(file.location ?? rootLocation,
                              "\(file.what) has a file name of \(bytes) bytes; Derive writes it first under a temporary name "
                                + "\(255 - ConfinedFolder.longestInstalledName) bytes longer, and a file name may be at most 255 bytes",
                              hint: "name a file of at most \(ConfinedFolder.longestInstalledName) bytes")
        }

        // The lock must not be one of the manifests.
        if let lock = controlPaths.dropLast().last, controlPaths.dropLast(2).contains(where: { $0.sameFile(as: lock) }) {
            diagnostics.error(locations.lock ?? rootLocation, "the lock file \(display(manifest.lockFile)) is one of the manifest files",
                              hint: "name another file with 'lock:'")
        }

        // No manifest, include or index may be a file Derive keeps in the state folder (the
        // database, its journals, a database moved aside, the build lock, the witness, the serve
        // cache): SQLite would take it as its journal, a recovery would move it aside.
        var named = controls.filter { !$0.isFolder && !$0.what.hasPrefix("the lock file") }
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            named.append(Control(what: "the index \(display(bucket.path + "/" + index.path))", path: bucket.path + "/" + index.path,
                                 isFolder: false, location: locations.index))
        }
        let stateFolderPath = FileSystemPath(manifest: manifest.stateFolder)
        // The folders Derive sweeps by name there: a file inside one would be taken for its own.
        let keptFolders = [StateFiles.serveCache, StateFiles.buildRenders, StateFiles.serveUploads].map {
            FileSystemPath(manifest: manifest.stateFolder + "/" + $0)
        }
        for control in named {
            let parent = FileSystemPath(manifest: (control.path as NSString).deletingLastPathComponent)
            let path = FileSystemPath(manifest: control.path)
            if (parent.sameFile(as: stateFolderPath) && StateFiles.isReserved((control.path as NSString).lastPathComponent))
                || keptFolders.contains(where: { $0.contains(path) }) {
                diagnostics.error(control.location ?? locations.state ?? rootLocation,
                                  "\(control.what) has the name of a file Derive keeps in the state folder \(display(manifest.stateFolder)); the build would open, overwrite or move it",
                                  hint: "rename the file, or set 'state:' to a folder of its own (the default is .derive/<manifest name>)")
            }
        }

        // A symbolic link to nothing where the state folder (or a folder on its way) would be:
        // nothing can be made there (mkdir fails with EEXIST), so say it here, by name.
        var probe = manifest.stateFolder
        var entry = stat(), target = stat()
        while !probe.isEmpty, probe != "/" {
            if lstat(probe, &entry) == 0 {
                if (entry.st_mode & S_IFMT) == S_IFLNK, stat(probe, &target) != 0 {
                    let loop = errno == ELOOP
                    let destination = (try? FileManager.default.destinationOfSymbolicLink(atPath: probe)) ?? "?"
                    if loop {
                        diagnostics.error(locations.state ?? rootLocation,
                                          "the state folder \(display(manifest.stateFolder)) cannot be made: \(display(probe)) is a symbolic link to \(destination), which leads back to itself (a loop of links)",
                                          hint: "remove the link, or set 'state:' to a folder of its own")
                    } else {
                        diagnostics.error(locations.state ?? rootLocation,
                                          "the state folder \(display(manifest.stateFolder)) cannot be made: \(display(probe)) is a symbolic link to \(destination), which does not exist",
                                          hint: "remove the link, make the folder it points to, or set 'state:' to a folder of its own")
                    }
                } else if probe == manifest.stateFolder, stat(probe, &target) == 0, (target.st_mode & S_IFMT) != S_IFDIR {
                    // The state folder itself is a file, or a link to one: SQLite cannot live there.
                    let what = (entry.st_mode & S_IFMT) == S_IFLNK
                        ? "a symbolic link to \((try? FileManager.default.destinationOfSymbolicLink(atPath: probe)) ?? "?"), which is a file"
                        : "a file"
                    diagnostics.error(locations.state ?? rootLocation,
                                      "the state folder \(display(manifest.stateFolder)) is not a folder: it is \(what)",
                                      hint: "set 'state:' to a folder of its own (the default is .derive/<manifest name>), or move the file")
                }
                break
            }
            probe = (probe as NSString).deletingLastPathComponent
        }

        // The state folder must be makeable: its nearest existing ancestor is a folder
        // (a manifest named `.derive` is where the default `.derive/<stem>` would go).
        var existing = (manifest.stateFolder as NSString).deletingLastPathComponent
        var info = stat()
        while stat(existing, &info) != 0, existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            diagnostics.error(locations.state ?? rootLocation,
                              "the state folder \(display(manifest.stateFolder)) cannot be made: \(display(existing)) is a file, not a folder",
                              hint: "set 'state:' to a folder of its own, or rename \(display(existing))")
        }

        // The lock must not be inside the state folder: the build would write one over the other.
        // A state folder holding the manifest (`state: .`) is the user's folder, where only the
        // names of Derive's state files are taken.
        // Exactly: any name Derive gives a file there (StateFiles), a database moved aside, or
        // anything inside the serve cache.
        if let lock = controlPaths.dropLast().last, let state = controlPaths.last, let manifestPath = controlPaths.first,
           state.sameFile(as: lock) || (state.contains(lock) && (!state.contains(manifestPath)
               || (FileSystemPath(manifest: (manifest.lockFile as NSString).deletingLastPathComponent).sameFile(as: state)
                   && StateFiles.isDerives((manifest.lockFile as NSString).lastPathComponent))
               || FileSystemPath(manifest: manifest.stateFolder + "/" + StateFiles.serveCache).contains(lock))) {
            diagnostics.error(locations.lock ?? rootLocation,
                              "the lock file \(display(manifest.lockFile)) is inside the state folder \(display(manifest.stateFolder)); the build would overwrite its state with the lock",
                              hint: "name a file outside the state folder with 'lock:', e.g. beside the manifest")
        }

        // No control file inside a bucket folder.
        for (bucket, folder) in buckets {
            for (control, path) in zip(controls, controlPaths) where folder.contains(path) {
                let fix = control.location == nil
                    ? "give bucket '\(bucket.name)' its own subfolder, e.g. path: \(bucket.name)"
                    : "move it out of bucket '\(bucket.name)', or give the bucket its own subfolder"
                diagnostics.error(control.location ?? bucket.pathLocation,
                                  "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(control.what); anyone who may write the bucket could change it, and outputs could overwrite it",
                                  hint: fix)
            }
        }

        validateStateHome(buckets, into: &diagnostics)

        // No bucket inside a folder Derive owns (attack round 23's H3): builds, serve and clean
        // sweep the caches there by name, and would take a bucket's files for Derive's. A state
        // folder that holds the manifest (`state: .`) is the user's: only the cache folders are taken.
        if let manifestPath = controlPaths.first {
            let state = FileSystemPath(manifest: manifest.stateFolder)
            let cacheNames = [StateFiles.buildRenders, StateFiles.serveCache, StateFiles.serveUploads]
            for (bucket, folder) in buckets {
                if !state.contains(manifestPath) {
                    guard state.contains(folder) else { continue }
                    diagnostics.error(bucket.pathLocation,
                                      "bucket '\(bucket.name)' (\(bucket.declaredPath)) is inside the state folder \(display(manifest.stateFolder)), which Derive owns: builds, serve and clean keep their database and locks there and sweep their caches there by name (\(StateFiles.buildRenders), \(StateFiles.serveCache), \(StateFiles.serveUploads)), so files of the bucket could be taken for Derive's and deleted (a state folder that holds the manifest, 'state: .', is the user's: there only those cache folders are refused)",
                                      hint: "give the bucket a folder outside the state folder, or set 'state:' to another folder")
                } else if cacheNames.contains(where: { FileSystemPath(manifest: manifest.stateFolder + "/" + $0).contains(folder) }) {
                    diagnostics.error(bucket.pathLocation,
                                      "bucket '\(bucket.name)' (\(bucket.declaredPath)) is at or inside \(StateFiles.buildRenders), \(StateFiles.serveCache) or \(StateFiles.serveUploads), the folders Derive keeps its caches in within the state folder \(display(manifest.stateFolder)): a build, serve or clean would delete its files",
                                      hint: "give the bucket another folder, or set 'state:' to a folder of its own (the default is .derive/<manifest name>)")
                }
            }
        }

        // Bucket folders never overlap: a file reachable through two buckets would have two ACLs
        // (a private bucket inside a public-read-write one could be read and written through it).
        // By place on the file system as well as by real path: a bucket folder that is a bind
        // mount of a folder inside another bucket has a real path of its own (attack 36c's H1).
        let mountTable = MountTable.current()
        let places = buckets.map { mountTable.place(of: $0.folder.real) }
        func samePlace(_ a: Int, _ b: Int) -> Bool {
            guard let first = places[a], let second = places[b] else { return false }
            return first.holds(second) || second.holds(first)
        }
        for (position, (first, firstFolder)) in buckets.enumerated() {
            for offset in buckets.indices.dropFirst(position + 1) {
                let (second, secondFolder) = buckets[offset]
                let byPath = firstFolder.contains(secondFolder) || secondFolder.contains(firstFolder)
                guard byPath || samePlace(position, offset) else { continue }
                let how = byPath ? "one folder is the other or lies inside it" : "a mount shows one folder, or a folder inside it, at the other's place"
                diagnostics.error(second.pathLocation,
                                  "buckets '\(first.name)' (\(first.declaredPath)) and '\(second.name)' (\(second.declaredPath)) share files: \(how), so one object would have two ACLs",
                                  hint: "give each bucket a folder of its own, side by side")
            }
        }

        bucketsMountedInBuckets(buckets, mounts: mountTable, into: &diagnostics)

        bucketPathBudget(into: &diagnostics)

        // The index lives in a bucket (site generators read it there), but nobody else may write it.
        var indexPath: FileSystemPath?
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            let path = FileSystemPath(manifest: bucket.path + "/" + index.path)
            indexPath = path
            for (other, folder) in buckets {
                guard let key = folder.key(of: path) else { continue }
                if other.effectiveACL(of: key) == .publicReadWrite {
                    diagnostics.error(locations.index ?? rootLocation,
                                      "the index \(index.bucket)/\(index.path) is in public-read-write bucket '\(other.name)'\(other.name == index.bucket ? "" : " (as \(key))"): anyone could overwrite it",
                                      hint: "put the index in a public-read or private bucket, or make it private with an 'objects:' rule")
                }
            }
            if let twin = controlPaths.firstIndex(where: { $0.sameFile(as: path) }) {
                // Say which file both names reach, and how: through links it is a user's file,
                // never "one of Derive's own" (attack 38a's L3).
                let indexFile = bucket.path + "/" + index.path
                let links = [indexFile, controls[twin].path].compactMap(linkDescription)
                diagnostics.error(locations.index ?? rootLocation,
                                  "the index \(index.bucket)/\(index.path) and \(controls[twin].what) are one file, \(display(path.real))"
                                  + (links.isEmpty ? "" : ": " + links.joined(separator: "; ")),
                                  hint: "give the index a path of its own in its bucket")
            }
        }

        // Files no rule may read or write, by key in each bucket that holds them.
        var files: [(what: String, path: FileSystemPath)] = zip(controls, controlPaths).filter { !$0.0.isFolder }.map { ($0.0.what, $0.1) }
        if let indexPath, let index = manifest.index { files.append(("the index \(index.bucket)/\(index.path)", indexPath)) }
        let state = FileSystemPath(manifest: manifest.stateFolder)

        var reported: Set<String> = []
        for outline in outlines {
            // Sources: a control file is never a source.
            if let source = outline.sourceBucket.flatMap({ name in buckets.first { $0.bucket.name == name } }) {
                for file in files {
                    guard let key = source.folder.key(of: file.path), outline.includes(key) else { continue }
                    diagnostics.error(outline.location, "rule \(outline.label) reads \(file.what) as a source",
                                      hint: "exclude '\(key)' in 'exclude:'")
                }
            }
            // Targets: outputs never land on a control file, in the state folder, or on a source.
            guard let target = outline.targetBucket.flatMap({ name in buckets.first { $0.bucket.name == name } }),
                  !outline.outputPatterns.isEmpty else { continue }
            let at = outline.toLocation.advanced(by: outline.toOffset)
            for file in files {
                guard let key = target.folder.key(of: file.path), outline.outputPatterns.contains(where: { $0.matches(key) }) else { continue }
                diagnostics.error(at, "outputs of rule \(outline.label) may overwrite \(file.what) (\(target.bucket.name)/\(key))",
                                  hint: "write outputs to another folder")
            }
            if let folderKey = target.folder.key(of: state) {
                let inside = LoosePattern(LoosePattern.literal(folderKey + "/") + [.run(.any)])
                if outline.outputPatterns.contains(where: { $0.intersects(inside) }) {
                    diagnostics.error(at, "outputs of rule \(outline.label) may land inside the state folder \(display(manifest.stateFolder))",
                                      hint: "write outputs to another folder")
                }
            }
            // Watermark images: an output never lands on an object a rule stamps (attack 20's
            // build L1: only the plan refused it, "is a source or a control file").
            for other in outlines {
                guard let sourceName = other.sourceBucket, let source = buckets.first(where: { $0.bucket.name == sourceName }) else { continue }
                for mark in Set(other.watermarkKeys).sorted() {
                    guard let key = target.folder.key(of: FileSystemPath(manifest: source.bucket.path + "/" + mark)),
                          outline.outputPatterns.contains(where: { $0.matches(key) }) else { continue }
                    let message = "outputs of rule \(outline.label) may overwrite the watermark image \(sourceName)/\(mark) that rule \(other.label) reads"
                    guard reported.insert("\(at)\u{0}\(message)").inserted else { continue }
                    diagnostics.error(at, message, hint: "write outputs to another folder, or keep watermark images out of the rules' outputs")
                }
            }
            for other in outlines {
                guard let from = other.from, let sourceName = other.sourceBucket,
                      let source = buckets.first(where: { $0.bucket.name == sourceName }),
                      let (outputs, sources, excludes) = Self.common(target: target.folder, outputs: outline.outputPatterns,
                                                                      source: source.folder, from: from, exclude: other.exclude) else { continue }
                let overlapping = outputs.filter { output in
                    sources.contains { output.intersects($0) } && !excludes.contains { output.isCovered(by: $0) }
                }
                guard !overlapping.isEmpty else { continue }
                let whose = other.location == outline.location ? "its own sources" : "sources of rule \(other.label) ('\(sourceName)/\(from)')"
                let message = "outputs of rule \(outline.label) may land on \(whose); an output must never be a source"
                guard reported.insert("\(at)\u{0}\(message)").inserted else { continue }
                diagnostics.error(at, message, hint: "write outputs to another folder or bucket, or exclude them in 'exclude:'")
            }
        }
        validateDotDeriveBucketPaths(into: &diagnostics)
    }

    /// Output and source patterns in the coordinates of whichever of the two bucket folders
    /// holds the other; nil when neither does (they cannot meet).
    static func common(target: FileSystemPath, outputs: [LoosePattern], source: FileSystemPath, from: Glob, exclude: [Glob])
        -> ([LoosePattern], [LoosePattern], [LoosePattern])? {
        if let prefix = target.key(ofFolder: source) {
            return (outputs, from.loose.map { $0.prefixed(by: prefix) }, exclude.flatMap(\.loose).map { $0.prefixed(by: prefix) })
        }
        if let prefix = source.key(ofFolder: target) {
            return (outputs.map { $0.prefixed(by: prefix) }, from.loose, exclude.flatMap(\.loose))
        }
        return nil
    }

    /// A path as the user would recognise it: relative to the manifest's folder when below it.
    /// Serve looks at what the buckets' paths pass through before each request (attack 18's P1:
    /// 400 buckets behind chains of 30 links cost ~92 ms of CPU per request): the symbolic links
    /// and folders met resolving them, one name at a time, are bounded (`BucketPathBudget`).
    func bucketPathBudget(into diagnostics: inout Diagnostics) {
        var links: Set<String> = [], folders: Set<String> = []
        var past: Bucket?
        var looks = PathWalk.Looks()
        for bucket in manifest.buckets {
            let walk = PathWalk.of(URL(literalFilePath: bucket.path).standardizedFileURL.path, looks: &looks)
            links.formUnion(walk.links.map(\.path))
            folders.formUnion(walk.folders.map(\.path))
            if past == nil, links.count + folders.count > BucketPathBudget.maxSteps { past = bucket }
        }
        guard let past else { return }
        diagnostics.error(past.pathLocation,
                          "the buckets' paths pass through \(links.count) symbolic links and \(folders.count) folders (resolved one name at a time, links followed), \(links.count + folders.count) in all, more than \(BucketPathBudget.maxSteps) (past it from bucket '\(past.name)' on): derive serve looks at them before each request",
                          hint: "shorten the chains of links: point each bucket's path at its folder, or at one link to it; or use fewer buckets")
    }

    /// "P is a symbolic link to T" when `path` itself is a link (nil otherwise).
    func linkDescription(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK,
              let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else { return nil }
        return "\(display(path)) is a symbolic link to \(target)"
    }

    func display(_ path: String) -> String {
        let folder = (manifest.files.first.map { ($0 as NSString).deletingLastPathComponent } ?? "") + "/"
        let bytes = Array(path.utf8), prefix = Array(folder.utf8)
        return bytes.starts(with: prefix) ? String(decoding: bytes[prefix.count...], as: UTF8.self) : path
    }
}

/// A path resolved by the file system as far as it exists: the real path of its deepest
/// existing ancestor (links resolved) plus the components that do not exist yet, and the
/// identities (device, inode) of every existing ancestor.
extension ControlFiles {
    /// A bucket's folder (or one holding it) mounted below another bucket's folder (`mount
    /// --bind out src/gen`): the real paths do not overlap, yet the files are shared, so outputs
    /// would become sources (attack 36's a68). Builds never walk through a mount point inside a
    /// bucket; this names the case at validate, from the mount table (one read).
    func bucketsMountedInBuckets(_ buckets: [(bucket: Bucket, folder: FileSystemPath)], mounts: MountTable,
                                 into diagnostics: inout Diagnostics) {
        let inside = mounts.mounts.map(\.point).compactMap { point -> (point: String, bucket: Int)? in
            guard let index = buckets.firstIndex(where: { $0.folder.key(of: FileSystemPath(real: point)) != nil }) else { return nil }
            return (point, index)
        }
        for (point, index) in inside {
            guard let mounted = FileSystemPath.identity(point) else { continue }
            let (bucket, folder) = buckets[index]
            for (other, otherFolder) in buckets
            where other.name != bucket.name && (otherFolder.identity == mounted || otherFolder.ancestry.contains(mounted)) {
                let key = folder.key(of: FileSystemPath(real: point)) ?? point
                diagnostics.error(bucket.pathLocation,
                                  "\(bucket.name)/\(key) is a mount point (another folder is mounted there) showing the files of bucket '\(other.name)' (\(other.declaredPath)) inside bucket '\(bucket.name)' (\(bucket.declaredPath)): the buckets share files; Derive does not walk or write through mount points inside a bucket",
                                  hint: "unmount \(point), or give each bucket a folder of its own, side by side")
            }
        }
    }
}

struct FileSystemPath {
    let real: String
    /// (device, inode) of the deepest existing ancestor and each of its ancestors.
    let ancestry: [FileIdentity]
    /// The identity of the path itself when it exists.
    let identity: FileIdentity?

    struct FileIdentity: Hashable { let device: UInt64; let inode: UInt64 }

    /// A real path (no link on it) that exists, as the mount table gives it: no look at the disk.
    init(real path: String) {
        real = path
        ancestry = []
        identity = nil
    }

    /// `path` is absolute and standardized, as the model holds paths. Resolved once per
    /// `ReadSnapshot` (one realpath walk per path and load, not one per question).
    init(manifest path: String) {
        self = ReadSnapshot.answer("real path", path) { FileSystemPath(resolvingNow: path) }
    }

    /// `init(manifest:)` resolved now.
    init(resolvingNow path: String) {
        var existing = path.isEmpty ? "/" : path
        var missing: [String] = []
        var resolved: String?
        while resolved == nil {
            if let real = Self.realPath(existing) {
                resolved = real
            } else {
                guard existing != "/" else { resolved = "/"; break }
                missing.insert((existing as NSString).lastPathComponent, at: 0)
                existing = (existing as NSString).deletingLastPathComponent
                if existing.isEmpty { existing = "/" }
            }
        }
        let base = resolved ?? "/"
        real = missing.isEmpty ? base : (base == "/" ? "/" : base + "/") + missing.joined(separator: "/")
        var chain: [FileIdentity] = []
        var folder = base
        while true {
            // Each ancestor once per snapshot: the paths of one folder share all of them.
            if let identity = ReadSnapshot.answer("folder identity", folder, { Self.identity(folder) }) { chain.append(identity) }
            if folder == "/" { break }
            folder = (folder as NSString).deletingLastPathComponent
            if folder.isEmpty { folder = "/" }
        }
        ancestry = chain
        identity = missing.isEmpty ? chain.first : nil
    }

    /// The real path of `path`, nil when it does not resolve (realpath's answer). A path whose last
    /// name is no link is its folder's real path and that name, and the folder's is answered once
    /// per `ReadSnapshot` (attack 53c's F3: beside 64 sibling projects each of their locks, states,
    /// buckets and includes walked `/tmp` and every folder above it again, link by link: 1 400
    /// walks and two thirds of a no-op's system calls). Any other shape (`.`, `..`, `//`, a link
    /// last) is realpath's own walk, and so is every path outside a snapshot (nothing to share).
    static func realPath(_ path: String) -> String? {
        guard ReadSnapshot.isOpen else { return realPathNow(path) }
        let bytes = Array(path.utf8)
        let slash = UInt8(ascii: "/")
        guard path != "/", bytes.first == slash, bytes.last != slash, !path.contains("//"), !path.contains("/./"), !path.contains("/../"),
              let cut = bytes.lastIndex(of: slash) else { return realPathNow(path) }
        let name = String(decoding: bytes[(cut + 1)...], as: UTF8.self)
        var info = stat()
        guard name != ".", name != "..", lstat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFLNK else { return realPathNow(path) }
        let parent = cut == 0 ? "/" : String(decoding: bytes[..<cut], as: UTF8.self)
        guard let folder = ReadSnapshot.answer("real folder", parent, { realPath(parent) }) else { return realPathNow(path) }
        return folder == "/" ? "/" + name : folder + "/" + name
    }

    /// realpath(3) now.
    static func realPathNow(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }

    static func identity(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    func sameFile(as other: FileSystemPath) -> Bool {
        if let a = identity, let b = other.identity { return a == b }
        return PathKey.same(real, other.real)
    }

    /// Whether `other` is this folder or lies below it: by real path, or (bind mounts, case-
    /// insensitive file systems) because this folder is one of its existing ancestors.
    func contains(_ other: FileSystemPath) -> Bool {
        if other.real.utf8.elementsEqual(real.utf8) || key(of: other) != nil { return true }
        if let identity, other.ancestry.contains(identity) { return true }
        return false
    }

    /// The key of `other` below this folder (nil when it is not strictly below it, or when only
    /// identities tell it is, which gives no key).
    func key(of other: FileSystemPath) -> String? {
        // On bytes: as Characters, "/" followed by a combining mark would not be a "/".
        let prefix = Array((real == "/" ? "/" : real + "/").utf8), path = Array(other.real.utf8)
        guard path.count > prefix.count, path.starts(with: prefix) else { return nil }
        return String(decoding: path[prefix.count...], as: UTF8.self)
    }

    /// Like `key(of:)`, but the same folder gives "" (prefix of nothing).
    func key(ofFolder other: FileSystemPath) -> String? {
        other.real.utf8.elementsEqual(real.utf8) ? "" : key(of: other)
    }
}
