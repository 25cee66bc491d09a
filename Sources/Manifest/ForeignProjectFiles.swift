import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which other project a file belongs to: another manifest, one of its includes, its lock, its
/// index, something in its build state folder, or a file in one of its source buckets. Asked of a
/// file Derive is about to write over without having written it (a plan refusal, or `--overwrite`
/// taking it): a bucket folder that holds another project (`top: {path: sub}` with
/// `to: top/{name}.yaml`) wrote a JPEG over `sub/derive.yaml` with `--overwrite` (attack 41a's
/// B10). Such a file is never replaced, with or without `--overwrite`: two manifests never touch
/// each other's files.
///
/// The other projects looked at are the manifests in the file's folder and in each folder above it
/// (a project's sources, lock and state lie at or below its manifest's folder in every layout the
/// README shows; a bucket `path: ../x` outside is not looked for). Each folder is listed once per
/// instance, so a build asks of many files at the cost of one listing per folder.
public final class ForeignProjectFiles: @unchecked Sendable {
    public struct Owner: Sendable, Equatable {
        /// The other manifest, absolute.
        public var manifest: String
        /// What the file is to it (`the manifest`, `the lock`, `a source (bucket 'src')`).
        public var what: String

        /// The refusal a plan or a build gives (`display` shortens paths as the plan shows them).
        public func refusal(_ path: String, display: (String) -> String, fix: String = "change the rule's 'to:' or the bucket's 'path:'") -> String {
            "\(display(path)) \(reason(display: display, fix: fix))"
        }

        /// The refusal without the path it is about.
        public func reason(display: (String) -> String, fix: String) -> String {
            let whose = what == "the manifest" ? "another project's manifest" : "\(what) of \(display(manifest)), another project"
            return "is \(whose); Derive never writes over another project's files "
                + "(two manifests never touch each other's files), with or without --overwrite: \(fix)"
        }
    }

    private struct Project {
        var manifest: FileSystemPath
        var manifestPath: String
        var files: [FileSystemPath]
        var lock: FileSystemPath
        var state: FileSystemPath
        var index: FileSystemPath?
        var sourceBuckets: [(name: String, folder: FileSystemPath)]
        var unreadable = false
        var folder: FileSystemPath
    }

    private let manifestPath: String
    /// This manifest's file as the file system names it: resolved on the first question, so a
    /// plan that asks none (every file vouched for, a no-op) pays nothing.
    private var ownPath: FileSystemPath?
    private var own: FileSystemPath {
        lock.lock()
        defer { lock.unlock() }
        if let ownPath { return ownPath }
        let resolved = FileSystemPath(manifest: manifestPath)
        ownPath = resolved
        return resolved
    }
    private let lock = NSLock()
    private var projectsByFolder: [String: [Project]] = [:]
    /// Folders walked above a file at most (a deeper tree is looked at up to this height).
    static let maxHeight = 64

    /// `manifest`: this project's manifest, which is never a foreign owner.
    public init(besides manifest: String) {
        manifestPath = URL(literalFilePath: manifest).standardizedFileURL.path
    }

    /// The other project whose file `path` is, nil when none is.
    public func owner(of path: String) -> Owner? {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        // A manifest of any project (one this file's folder listing would find) is never written over.
        let name = (absolute as NSString).lastPathComponent
        if ControlFiles.hasManifestExtension(name), !file.sameFile(as: own),
           ControlFiles.couldBeManifest(absolute) || ControlFiles.looksLikeBrokenManifest(absolute) {
            return Owner(manifest: absolute, what: "the manifest")
        }
        var folder = (absolute as NSString).deletingLastPathComponent
        for _ in 0..<Self.maxHeight {
            for project in projects(in: folder) {
                if let what = Self.what(file, is: project, own: own) { return Owner(manifest: project.manifestPath, what: what) }
            }
            guard folder != "/", !folder.isEmpty else { break }
            folder = (folder as NSString).deletingLastPathComponent
            if folder.isEmpty { folder = "/" }
        }
        return nil
    }

    private static func what(_ file: FileSystemPath, is project: Project, own: FileSystemPath) -> String? {
        if file.sameFile(as: project.manifest) { return "the manifest" }
        // A manifest that does not parse (mid-edit): its buckets are unknown, so everything in
        // its folder and below is taken as its own (attack 41c's C2).
        // Not one whose folder holds this manifest too (a neighbour, or a project above): that
        // would take this project's own files; its lock lines say what is its (`neighbourLocks`).
        if project.unreadable, project.folder.contains(file), !project.folder.contains(own) { return "in the folder of a manifest that does not parse (its files are taken as its own until it does)" }
        if project.files.contains(where: { file.sameFile(as: $0) }) { return "an include of the manifest" }
        if file.sameFile(as: project.lock) { return "the lock" }
        if let index = project.index, file.sameFile(as: index) { return "the index" }
        if project.state.contains(file) { return "inside the build state folder" }
        if let bucket = project.sourceBuckets.first(where: { $0.folder.contains(file) }) {
            return "a source (bucket '\(bucket.name)')"
        }
        return nil
    }

    private func projects(in folder: String) -> [Project] {
        lock.lock()
        if let known = projectsByFolder[folder] { lock.unlock(); return known }
        lock.unlock()
        let found = ControlFiles.manifestNames(in: folder).sorted().map { folder == "/" ? "/" + $0 : folder + "/" + $0 }
            .filter { ControlFiles.couldBeManifest($0) || ControlFiles.looksLikeBrokenManifest($0) }
            .filter { !FileSystemPath(manifest: $0).sameFile(as: own) }
            .map(Self.project)
        lock.lock()
        projectsByFolder[folder] = found
        lock.unlock()
        return found
    }

    /// What another manifest uses, read as the loader reads it (its includes too) without listing
    /// its buckets; one that does not load keeps its file, its lock and its state folder.
    private static func project(_ path: String) -> Project {
        var loader = ManifestLoader()
        loader.crossChecks = false
        let control = ControlFiles.controlFiles(ofSibling: path)
        var project = Project(manifest: FileSystemPath(manifest: path), manifestPath: path, files: [],
                              lock: FileSystemPath(manifest: control.lock), state: FileSystemPath(manifest: control.state),
                              index: nil, sourceBuckets: [],
                              folder: FileSystemPath(manifest: (path as NSString).deletingLastPathComponent))
        guard let manifest = loader.load(path).manifest else { project.unreadable = true; return project }
        project.files = manifest.files.map { FileSystemPath(manifest: $0) }
        project.lock = FileSystemPath(manifest: manifest.lockFile)
        project.state = FileSystemPath(manifest: manifest.stateFolder)
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            project.index = FileSystemPath(manifest: URL(literalFilePath: bucket.path + "/" + index.path).standardizedFileURL.path)
        }
        let sources = Set(manifest.rules.map(\.sourceBucket))
        project.sourceBuckets = manifest.buckets.filter { sources.contains($0.name) }
            .map { ($0.name, FileSystemPath(manifest: $0.path)) }
        return project
    }
}
