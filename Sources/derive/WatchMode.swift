import ArgumentParser
import Builder
import Confinement
import Foundation
import Manifest
import RenderWorkers
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `derive build --watch`: builds, then rebuilds whenever the manifest, an include or a file in a
/// folder the rules read changes. The build lock is held only while building, so a `derive build`
/// run by hand while watch is idle works (and one during a rebuild is refused as always).
struct WatchMode {
    let command: BuildCommand

    /// A burst of events (an editor's save, a copy of many files) ends after this much quiet.
    static let quiet: Double = 0.2
    /// A stream of changes that never goes quiet still rebuilds this often.
    static let longestWait: Double = 2
    /// How soon a rebuild the lock refused is tried again.
    static let retryAfter: Double = 1
    /// While idle, a no-op check (the stat pass `derive build` makes when nothing is to do) runs
    /// this often, and once right after each build that succeeded: it catches what inotify does
    /// not report (an edit through a hard link whose other name is outside the watched folders,
    /// a network file system) and what the watch took for its own write (an output changed while
    /// the build that wrote it ran: round 21's N6). A check that takes long (a very large
    /// project), or that finds no witness until a build saves one, is spaced out to cost at most
    /// `recheckShare` of one core, the builds it asks for included.
    static let recheckEvery: Double = 5
    /// Test hook, inert unless set: `DERIVE_TEST_RECHECK_SHARE=<0.02…1>` lets a test on a loaded
    /// machine keep the period near `recheckEvery` (a check of 3 s there spaced it to 150 s).
    static let recheckShare: Double = ProcessInfo.processInfo.environment["DERIVE_TEST_RECHECK_SHARE"]
        .flatMap(Double.init).map { min(max($0, 0.02), 1) } ?? 0.02
    /// What `waitForChanges` returns when the no-op check, not inotify, found the outputs stale.
    static let recheckMarker = "(a change inotify did not report)"
    /// What `waitForChanges` returns when the project folder no longer is where the manifest was named.
    static let projectMovedMarker = "(the project folder moved)"
    /// How long after one of its own builds a check that found the outputs stale waits before it
    /// checks again (and builds): past the racy margin (1 s) of that build's writes, so the build
    /// it asks for saves a witness. (A build's writes into a folder the rules read from, such as
    /// `photos/` holding `photos/src` and `photos/out`, move that folder's stat after the build's
    /// own snapshot: its witness never holds, and a build right after it saves none.)
    static let settle: Double = 1.1
    /// After a build that failed, what failed may be put right where the watch cannot see it (a
    /// folder it does not follow made writable, a disk freed): with no change seen, the build is
    /// tried again after each of these waits, then not until the next change (attack 41b's M3).
    static let failureRetries: [Double] = [5, 15, 45, 135, 405]
    /// What `waitForChanges` returns when a failed build is due to be tried again.
    static let failureRetryMarker = "(a failed build tried again)"

    /// How long after a failed build, tried again `retried` times already, it is tried again; nil
    /// once the retries are spent (the watch then waits for a change).
    static func failureRetry(after retried: Int) -> Double? {
        retried < failureRetries.count ? failureRetries[retried] : nil
    }

    /// What the watch follows, from the last manifest that loaded.
    struct Watched: Equatable {
        var manifestFiles: PathSet
        var sourceRoots: [String]
        var skipped: [String]
        /// The folders between the project folder (the manifest's) and each source root, the
        /// roots included: one of them replaced, removed or made again (`rm -rf media`, a `git
        /// checkout` or an rsync that swaps `media/` above `media/src`) replaces the root.
        var sourceChain: PathSet = []
        /// Every path met while resolving each bucket's and the state folder's path as written,
        /// link by link (`media` → `../photos` → `photos/src`): a link above a bucket (or in a
        /// chain of links to it) pointed elsewhere moves the bucket, though no folder changed.
        var linkChain: PathSet = []
        /// The folders builds write into: each output bucket's, the lock's (the manifest's) and
        /// the state folder. After a failed build, one of them made writable again (`chmod 755
        /// _site`) is a change (attack 41b's M3).
        var writeTargets: PathSet = []
        /// The folders between the project folder and each included manifest file's (`inc/` for
        /// `include: [inc/more.yaml]`; just the file's folder when it lies outside the project):
        /// one replaced (`rm -rf inc; mv inc3 inc`), or replaced by a link, is watched again at
        /// once; the watch on the old folder's inode would see no later edit (attack 42c's L1).
        var manifestChain: PathSet = []
        /// The manifest as named, and its folder (real): a manifest made, edited or removed there,
        /// or a neighbour's lock rewritten, may give or take a name narrowing gives
        /// (`SiblingManifests.neighbourChange`; attack 46c's t15).
        var manifestPath = ""
        var project = ""
        /// Watched alone: the manifest files' folders, each source root's parent and every folder
        /// of the chains above it (a root replaced by another folder, or created, is seen there).
        var folders: [String] {
            let parents = (Array(manifestFiles) + sourceRoots + Array(sourceChain) + Array(linkChain) + Array(manifestChain))
                .map { ($0 as NSString).deletingLastPathComponent }
            return PathSet(parents).sorted()
        }

        /// Whether a change at `path` replaces or removes a source root (or makes one), points
        /// a link on the way to a bucket elsewhere, or replaces a folder holding a manifest file.
        func replacesASourceRoot(_ path: String) -> Bool {
            sourceRoots.contains { PathKey.same($0, path) } || sourceChain.contains(path) || linkChain.contains(path) || manifestChain.contains(path)
        }

        /// The paths met resolving `path` (absolute) one component and one link at a time: each
        /// link below `project`, and every folder or link reached through a link (which may lead
        /// anywhere). At most 40 links are followed (a loop stops there). Plain folders before the
        /// first link are the chains' own (watched as folders that hold sources or outputs).
        static func resolution(of path: String, below project: String) -> [String] {
            var pending = path.split(separator: "/").map(String.init)
            var current = ""
            var steps: [String] = []
            var hops = 0
            while !pending.isEmpty {
                let name = pending.removeFirst()
                if name.isEmpty || name == "." { continue }
                if name == ".." { current = (current as NSString).deletingLastPathComponent; if current == "/" { current = "" }; continue }
                let next = current + "/" + name
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(next, &buffer, buffer.count - 1)
                if hops > 0 || (length > 0 && next.hasPrefix(project + "/")) { steps.append(next) }
                guard length > 0 else { current = next; continue }
                hops += 1
                if hops > 40 { break }
                let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                pending = target.split(separator: "/").map(String.init) + pending
                if target.hasPrefix("/") { current = "" }
            }
            return steps
        }

        /// Each link met resolving the file `path` and the file it leads to (nothing when no link
        /// is on the way): an edit of a linked manifest's target, or a link pointed elsewhere.
        static func links(of path: String) -> [String] {
            var info = stat()
            let links = resolution(of: path, below: "").filter { lstat($0, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK }
            guard !links.isEmpty, let resolved = realpath(path, nil) else { return links }
            defer { free(resolved) }
            return links + [String(cString: resolved)]
        }

        /// The root itself and each folder above it, up to (not including) `project` when the root
        /// lies below it; just the root otherwise.
        static func chain(of root: String, below project: String) -> [String] {
            guard root.hasPrefix(project + "/") else { return [root] }
            var chain: [String] = []
            var folder = root
            while folder.hasPrefix(project + "/") {
                chain.append(folder)
                folder = (folder as NSString).deletingLastPathComponent
            }
            return chain
        }
    }

    func run() throws {
        // A manifest that is not there at start is a mistyped path, not a project to wait for
        // (attack 41b's L4: it watched forever, saying "the previous outputs stay").
        if let missing = Self.missingManifest(command.manifest.manifest) {
            Output.printError(missing)
            throw ExitCode.failure
        }
        // Ctrl-C and SIGTERM: renders in progress are cancelled (their outputs are written
        // atomically, so none is half written), and the loop ends with status 0.
        // Caught before the engine is learnt and the workers start (a second or more): a stop
        // then still ends with status 0, as documented, not killed by the signal.
        let stop = StopSignal()
        let startedWorkers = Mutex<RenderWorkerPool?>(nil)
        var signalSources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                stop.set()
                BuildStop.request()   // before the renders are cancelled: they are not failures
                startedWorkers.withLock { $0 }?.shutdown()
            }
            source.resume()
            signalSources.append(source)
        }
        defer { signalSources.forEach { $0.cancel() } }
        let workers = try Workers.pool(size: BuildOptions(jobs: command.jobs?.value).jobs,
                                       expectedEngineVersion: Workspace.engine().report.version)
        defer { workers.shutdown() }
        startedWorkers.withLock { $0 = workers }
        if stop.isSet { return }

        // Every file a build wrote (outputs, lock, index) with what it was when that build ended:
        // an event on one is the build's own write unless the file is no longer that (changed by hand).
        var written: PathDictionary<FileState> = [:]
        var writtenFolders: PathDictionary<FolderState> = [:]
        let project = (Self.real(command.manifest.manifest) as NSString).deletingLastPathComponent
        let root = Self.real(command.manifest.manifest)
        let startFolders = [Self.currentFolder(), project]
        // The project folder as opened now: the watch follows the manifest by the path it was
        // given, so once that path no longer reaches this folder (moved, renamed or removed) it
        // stops and says how to restart (issue #13: with an absolute path it went on failing
        // "cannot read manifest" at each change, watching the moved folder by its old name).
        let opened = ProjectFolder(manifest: command.manifest.manifest)
        defer { opened?.close() }
        var watched = Watched(manifestFiles: PathSet([root] + Watched.links(of: root)), sourceRoots: [], skipped: [])
        // Watched before the first build's plan looks at anything (attack 20's W3): a change made
        // while it runs (a manifest edit, a photo added or removed, a folder replaced) waits in
        // the watcher and schedules one more build after it, as during any later build.
        if let named = watchedAfterFailure() { watched = named }
        var watcher: FolderWatcher?
        do { watcher = try Self.makeWatcher(watched) } catch {
            Output.printError("\(error)")
            throw ExitCode.failure
        }
        var first = true
        /// `--overwrite` until a build ran (one refused for another command's lock did not).
        var overwriting = command.overwrite
        var changed: [String] = []
        /// Changes seen before the next wait (read from a watcher replaced after a build).
        var carried: [String] = []
        /// When the periodic no-op check runs next; nil after a build that failed (its line says
        /// so, and checking would only fail the same way again) until the next change.
        var recheckAt: Date?
        /// The notes under the last build's line (outputs adopted from the lock unverified), said once.
        var saidNotes: [String] = []
        /// How many times the last failed build was tried again with no change seen.
        var failedRetries = 0
        while true {
            if let moved = opened?.moved() {
                Output.printError(moved)
                throw ExitCode.failure
            }
            let started = Date()
            // What may be read as this build starts: a chmod or chown made from now on is a change
            // when it makes a path readable or unreadable from this (the build may not have seen it).
            var readability = Readability.of(watched, writing: Self.writeFolders(watched, written: written, writtenFolders: writtenFolders))
            let outcome = attempt(workers: workers, overwriting: overwriting)
            if !outcome.isRefused { overwriting = false }
            if stop.isSet { return }
            let wrote = PathSet((outcome.result?.writtenFiles ?? []).map(Self.real))
            for file in written.keys.union(wrote) {
                let now = FileState.of(file)
                // A file this build wrote that is gone already was removed by hand during the build:
                // its deletion event (read after this) must still count.
                written[file] = now == .absent && wrote.contains(file) ? .removedWhileBuilding : now
            }
            // A failed build still follows what the manifest names (a bucket missing at start).
            let fresh = outcome.result?.workspace.map(Self.watched) ?? (outcome.isFailed ? watchedAfterFailure() : nil)
            if let fresh { watched = fresh }
            // A build that failed (not a manifest that does not load: its fix is a save the watch
            // sees) is tried again after a back-off, and its write targets' permissions are followed.
            let failedBuild = outcome.result.map { !$0.succeeded } ?? (outcome.isFailed && fresh != nil)
            let retried = changed == [Self.failureRetryMarker]
            let tries = failedRetries + 1   // this build's number among the tries, when it is one
            if failedBuild { failedRetries = retried ? failedRetries + 1 : 0 } else if !outcome.isRefused { failedRetries = 0 }
            readability.followsWrites = failedBuild
            // The folders from the manifest's down to each file the builds wrote, as they are now: one
            // moved away, removed or replaced (by a link, a loop) takes those files with it.
            writtenFolders = [:]
            // Each folder once (thousands of outputs share a few), each looked at once.
            for parent in PathSet(written.keys.map { ($0 as NSString).deletingLastPathComponent }) {
                for folder in Watched.chain(of: parent, below: project) where !PathKey.same(folder, project) && writtenFolders[folder] == nil {
                    writtenFolders[folder] = FolderState.of(folder)
                }
            }
            do {
                if watcher == nil || watcher?.skippedFolders != watched.skipped || fresh != nil && watcher?.watched != watched {
                    // Changes made during the build wait in the old watcher: read them before it goes.
                    let old = watcher
                    watcher = try Self.makeWatcher(watched)
                    for event in (try old?.read()) ?? [] where Self.isRelevant(event, watched: watched, written: written, writtenFolders: writtenFolders, readability: readability) {
                        if !carried.contains(event.path) { carried.append(event.path) }
                    }
                }
                // The folders holding the outputs, the lock and the index: a file there deleted or
                // changed by hand is a change too (best effort within the watch limit).
                for folder in PathSet(written.keys.map { ($0 as NSString).deletingLastPathComponent }).sorted() {
                    watcher?.watchIfRoom(folder)
                }
                for folder in PathSet(writtenFolders.keys.map { ($0 as NSString).deletingLastPathComponent }).sorted() {
                    watcher?.watchIfRoom(folder)
                }
                // The folders builds write into: their own attribute changes (a chmod) are seen.
                for folder in watched.writeTargets.sorted() { watcher?.watchIfRoom(folder) }
            } catch {
                Output.printError("\(error)")
                throw ExitCode.failure
            }
            let what = first ? "" : retried ? "no change seen; the failed build tried again (\(tries) of \(Self.failureRetries.count)): "
                : Self.describe(changed, relativeTo: startFolders) + ": "
            let seconds = String(format: "%.2f s", Date().timeIntervalSince(started))
            let byRecheck = changed == [Self.recheckMarker]
            switch outcome {
            case .built(let result) where byRecheck && result.succeeded && result.summary.hasPrefix("Nothing to do"):
                // The check found no witness, the build nothing to do: not a change worth a line.
                break
            case .built(let result):
                let lines = Self.statusLines(result.summary, ending: "\(result.succeeded ? "" : " (errors above)")\(first ? " Watching \(watcher?.count ?? 0) folders (Ctrl-C stops)." : "")",
                                             said: &saidNotes)
                Self.say(what + lines.status)
                for note in lines.notes { print(note) }
                fflush(nil)
            case .refused where byRecheck:
                break   // the check tries again (and says nothing until it builds)
            case .refused:
                Self.say("\(what)another derive command holds the lock; trying again in \(Int(Self.retryAfter)) s")
            case .failed:
                Self.say("\(what)not built (errors above, \(seconds)); the previous outputs stay. Watching.")
            }
            first = false
            let pending = carried
            carried = []
            // Right after a build that succeeded, what it left is checked as `derive build` would
            // check it: an edit inotify could not report, or one made while the build ran (taken
            // for the build's own write), is found now. Stale then, it is checked again once the
            // racy margin of the build's writes has passed (`settle`), and built if still stale.
            // After a build the check itself asked for, a check still stale means no witness can
            // hold yet: checked again at the next period, that build's time counted in the
            // spacing. (The first try at this turned the check off there for good, so an edit
            // through a hard link was never built: `WatchRound21Tests`.)
            if case .built(let result) = outcome, result.succeeded {
                let buildCost = byRecheck ? Date().timeIntervalSince(started) : 0
                if pending.isEmpty {
                    let checked = Self.upToDate(command.manifest, workers: workers)
                    let spacing = max(Self.recheckEvery, (checked.seconds + (checked.upToDate ? 0 : buildCost)) / Self.recheckShare)
                    recheckAt = Date().addingTimeInterval(checked.upToDate || byRecheck ? spacing : Self.settle)
                } else {
                    recheckAt = Date().addingTimeInterval(Self.recheckEvery)
                }
            } else if outcome.isRefused && byRecheck {
                recheckAt = Date().addingTimeInterval(Self.retryAfter)
            } else if !outcome.isRefused {
                recheckAt = nil
            }
            guard let next = try waitForChanges(watcher!, workers: workers, watched: watched, written: written, writtenFolders: writtenFolders, readability: readability,
                                                pending: pending, stop: stop, project: opened,
                                                retry: outcome.isRefused && !byRecheck ? Self.retryAfter : failedBuild ? Self.failureRetry(after: failedRetries) : nil,
                                                retryMarker: outcome.isRefused ? "(retry after the lock)" : Self.failureRetryMarker, recheckAt: recheckAt) else { return }
            changed = next
            // A source root replaced (moved away, removed, made again, or a folder above it): the old
            // watches follow the old folder's inode, so watch the folder now at that path before building.
            if next.contains(where: { watched.replacesASourceRoot($0) || writtenFolders[$0] != nil }) {
                do { watcher = try Self.makeWatcher(watched) } catch {
                    Output.printError("\(error)")
                    throw ExitCode.failure
                }
            }
        }
    }

    static func makeWatcher(_ watched: Watched) throws -> FolderWatcher {
        let fresh = try FolderWatcher(skipping: watched.skipped)
        for root in watched.sourceRoots { try fresh.watch(root, recursive: true) }
        for folder in watched.folders { try fresh.watch(folder, recursive: false) }
        fresh.watched = watched
        return fresh
    }

    /// What a file is (links not followed): changed content, a new file or none at all differ.
    enum FileState: Equatable {
        case absent
        /// Never equal to what is found: any event on the file is a change.
        case removedWhileBuilding
        case present(device: UInt64, inode: UInt64, size: Int64, mtime: Int64, ctime: Int64)

        static func of(_ path: String) -> FileState {
            var info = stat()
            guard lstat(path, &info) == 0 else { return .absent }
            return .present(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                            mtime: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                            ctime: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
        }
    }

    /// Which folder (or link, or nothing) is at a path, links not followed.
    enum FolderState: Equatable {
        case absent
        case present(device: UInt64, inode: UInt64, mode: UInt32)

        static func of(_ path: String) -> FolderState {
            var info = stat()
            guard lstat(path, &info) == 0 else { return .absent }
            return .present(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), mode: UInt32(info.st_mode & S_IFMT))
        }
    }

    enum Outcome {
        case built(BuildCommand.Result)
        case refused
        case failed
        var result: BuildCommand.Result? { if case .built(let result) = self { return result } else { return nil } }
        var isRefused: Bool { if case .refused = self { return true } else { return false } }
        var isFailed: Bool { if case .failed = self { return true } else { return false } }
    }

    /// `overwriting`: `--overwrite` is consent for the files in the way when the watch starts, so
    /// it holds for the first build only; a file edited by hand later is refused as any build
    /// refuses it (attack 59b's F3: a hand edit made minutes later was rendered over silently).
    private func attempt(workers: RenderWorkerPool, overwriting: Bool) -> Outcome {
        Self.lookEngineUpAgain(workers)
        Self.pauseBeforeBuild()
        var build = command
        build.overwrite = overwriting
        do {
            return .built(try build.buildOnce(workers: workers, fastPath: false, watching: true))
        } catch let code as ExitCode where code.rawValue == BuildLock.busyExitCode {
            return .refused
        } catch {
            return .failed
        }
    }

    /// Test hook, inert unless set: `DERIVE_TEST_BEFORE_WATCH_BUILD=<path>`: before each build
    /// (the project's move checked), `<path>` is created and the build waits (at most 60 s) until
    /// it is removed: the project moved at a known instant, after the check and before the load.
    private static func pauseBeforeBuild() { BuildRunning.testPause("DERIVE_TEST_BEFORE_WATCH_BUILD") }

    /// The engine as a fresh command would learn it: this process lives long, and a fontconfig
    /// configuration written meanwhile (`~/.config/fontconfig/fonts.conf`) changes how text is
    /// drawn, so the fingerprints (round 22's V2). Changed, the workers started before are not
    /// used again: each drew with the configuration it loaded at start.
    static func lookEngineUpAgain(_ workers: RenderWorkerPool) {
        if let changed = Workspace.lookEngineUpAgain() {
            workers.retire(expectedEngineVersion: changed.report.version)
        }
    }

    /// Whether a no-op check finds the outputs up to date now, and how long it took.
    static func upToDate(_ manifest: ManifestArgument, workers: RenderWorkerPool) -> (upToDate: Bool, seconds: Double) {
        let started = Date()
        lookEngineUpAgain(workers)
        // Read-only (no witness refresh): watch takes the build lock only while it builds.
        let count = Workspace.unchanged(manifest, refresh: false).count
        return (count != nil, Date().timeIntervalSince(started))
    }

    /// Waits for the next burst of relevant changes and returns their paths; nil when stopped.
    /// `recheckAt`: when idle until then, a no-op check runs (again every `recheckEvery` or
    /// more); outputs found stale return `recheckMarker`.
    private func waitForChanges(_ watcher: FolderWatcher, workers: RenderWorkerPool, watched: Watched, written: PathDictionary<FileState>,
                                writtenFolders: PathDictionary<FolderState>, readability: Readability, pending: [String] = [], stop: StopSignal,
                                project: ProjectFolder? = nil, retry: Double?, retryMarker: String = "(retry after the lock)", recheckAt: Date? = nil) throws -> [String]? {
        var changed: [String] = pending
        var firstChange: Date? = pending.isEmpty ? nil : Date()
        let retryAt = retry.map { Date().addingTimeInterval($0) }
        var recheckAt = recheckAt
        while true {
            var timeout: Int32 = -1
            if let firstChange {
                let left = min(Self.quiet, Self.longestWait - Date().timeIntervalSince(firstChange))
                timeout = Int32(max(0, left) * 1000)
            } else if let retryAt {
                timeout = Int32(max(0, retryAt.timeIntervalSinceNow) * 1000)
            } else if let recheckAt {
                timeout = Int32(max(0, recheckAt.timeIntervalSinceNow) * 1000)
            }
            var descriptors = [pollfd(fd: watcher.descriptor, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&descriptors, 2, timeout)
            if stop.isSet { return nil }
            if ready < 0, errno == EINTR { continue }
            if ready == 0 {
                if !changed.isEmpty { return changed }
                if retryAt != nil { return [retryMarker] }
                if let due = recheckAt, due.timeIntervalSinceNow <= 0 {
                    // A moved project (or a current folder moved out of reach) stops the watch before the check reads anything.
                    if project?.moved() != nil { return [Self.projectMovedMarker] }
                    let checked = Self.upToDate(command.manifest, workers: workers)
                    if stop.isSet { return nil }
                    if !checked.upToDate {
                        // A change inotify reported meanwhile is named on the line, not the check.
                        do {
                            for event in try watcher.read() where Self.isRelevant(event, watched: watched, written: written, writtenFolders: writtenFolders, readability: readability) {
                                if !changed.contains(event.path) { changed.append(event.path) }
                            }
                        } catch {
                            Output.printError("\(error)")
                            throw ExitCode.failure
                        }
                        return changed.isEmpty ? [Self.recheckMarker] : changed
                    }
                    recheckAt = Date().addingTimeInterval(max(Self.recheckEvery, checked.seconds / Self.recheckShare))
                }
                continue
            }
            do {
                for event in try watcher.read() where Self.isRelevant(event, watched: watched, written: written, writtenFolders: writtenFolders, readability: readability) {
                    if !changed.contains(event.path) { changed.append(event.path) }
                    if firstChange == nil { firstChange = Date() }
                }
            } catch {
                Output.printError("\(error)")
                throw ExitCode.failure
            }
            // The project moved (its folder's own event woke us): said before any build is tried.
            if project?.moved() != nil { return changed.isEmpty ? [Self.projectMovedMarker] : changed }
            if let firstChange, Date().timeIntervalSince(firstChange) >= Self.longestWait { return changed }
        }
    }

    /// A change the build did not make to a file the manifest or the rules read, to a source
    /// root itself, or to a file a build wrote (an output, the lock, the index) that is no longer
    /// what that build left.
    static func isRelevant(_ event: FolderWatcher.Event, watched: Watched, written: PathDictionary<FileState>,
                           writtenFolders: PathDictionary<FolderState> = [:], readability: Readability) -> Bool {
        // An attribute alone (chmod, chown, a timestamp): a change only to what a build reads
        // (a manifest file, a source, a folder holding them) that made it readable or unreadable.
        if event.attributes {
            let read = watched.manifestFiles.contains(event.path) || watched.replacesASourceRoot(event.path)
                || watched.sourceRoots.contains { event.path.hasPrefix($0 + "/") }
            if read && readability.changed(event.path) { return true }
            // After a failed build: a folder it writes into made writable (or not) again.
            return readability.writabilityChanged(event.path)
        }
        if watched.replacesASourceRoot(event.path) { return true }   // the bucket folder (or one above it) made, moved or removed
        // A folder holding what a build wrote, moved away, removed or replaced: not the build's own
        // change (it made and left that very folder).
        if let left = writtenFolders[event.path] { return FolderState.of(event.path) != left }
        if event.isFolder && !event.moved { return false }   // its files are reported one by one
        if event.moved && event.path == "(many files)" { return true }
        let name = (event.path as NSString).lastPathComponent
        if name.hasPrefix("."), name.hasSuffix(ConfinedFolder.temporaryMarker) { return false }   // an atomic write in progress
        if let left = written[event.path] { return FileState.of(event.path) != left }
        // An O_TMPFILE output closed before its link: the kernel names it `#<inode>`.
        if name.hasPrefix("#"), name.dropFirst().allSatisfy(\.isNumber), !FileManager.default.fileExists(atPath: event.path) { return false }
        if watched.manifestFiles.contains(event.path) { return true }
        if watched.sourceRoots.contains(where: { event.path.hasPrefix($0 + "/") }) { return true }
        return !watched.project.isEmpty && PathKey.same((event.path as NSString).deletingLastPathComponent, watched.project)
            && SiblingManifests.neighbourChange(event.path, besides: watched.manifestPath)
    }

    /// What this user may read of what the builds read (the manifest files, the folders above
    /// each source root, and every file and folder below it), as it was when a build started.
    /// Attack 40b's M2: `chmod 644` of the source a build had failed on ("permission denied"),
    /// or `chmod 755` of the folder it could not read, rebuilt nothing (inotify's IN_ATTRIB was
    /// not followed); following it, every chmod, chown or `touch -a` alone must not rebuild.
    struct Readability {
        /// At most this many paths are looked at; a larger tree leaves every attribute change a change.
        static let most = 200_000
        var roots: [String] = []
        var paths: PathSet = []
        var unreadable: PathSet = []
        var complete = true
        /// The folders builds write into (`writeFolders`) this user could not write into, and
        /// whether their attribute changes count (after a build that failed: attack 41b's M3).
        var writeFolders: PathSet = []
        var unwritable: PathSet = []
        var followsWrites = false

        /// What may be read, and written into `writing`, as a build starts.
        static func of(_ watched: Watched, writing: PathSet) -> Readability {
            var result = of(watched)
            result.writeFolders = writing
            result.unwritable = PathSet(writing.filter { !writable($0) })
            return result
        }

        /// Whether this user may make files in the folder at `path`.
        static func writable(_ path: String) -> Bool {
            var info = stat()
            return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR && access(path, W_OK | X_OK) == 0
        }

        /// Whether an attribute change at `path` (after a failed build) made a folder builds write
        /// into writable or unwritable since the build started.
        func writabilityChanged(_ path: String) -> Bool {
            followsWrites && writeFolders.contains(path) && Self.writable(path) == unwritable.contains(path)
        }

        static func of(_ watched: Watched) -> Readability {
            var result = Readability(roots: watched.sourceRoots)
            var count = 0
            func note(_ path: String) -> Bool {
                count += 1
                if count > most { result.complete = false; return false }
                if !readable(path) { result.unreadable.insert(path) }
                return true
            }
            for path in Array(watched.manifestFiles) + Array(watched.sourceChain) + Array(watched.linkChain) + Array(watched.manifestChain) {
                result.paths.insert(path)
                guard note(path) else { return result }
            }
            var pending = watched.sourceRoots
            while let folder = pending.popLast() {
                guard note(folder) else { return result }
                guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
                for name in names {
                    let path = folder + "/" + name
                    if watched.skipped.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { continue }
                    var info = stat()
                    if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                        pending.append(path)
                    } else {
                        guard note(path) else { return result }
                    }
                }
            }
            return result
        }

        /// Whether this user may read the file (or list and enter the folder) at `path`.
        static func readable(_ path: String) -> Bool {
            var info = stat()
            guard lstat(path, &info) == 0 else { return false }
            return access(path, (info.st_mode & S_IFMT) == S_IFDIR ? R_OK | X_OK : R_OK) == 0
        }

        /// Whether an attribute change at `path` may change what a build reads: it became readable
        /// or unreadable since the snapshot, or the snapshot did not cover it (when in doubt, rebuild).
        func changed(_ path: String) -> Bool {
            let covered = complete && (paths.contains(path) || roots.contains { path == $0 || path.hasPrefix($0 + "/") })
            guard covered else { return true }
            return Self.readable(path) == unreadable.contains(path)
        }
    }

    static func watched(_ workspace: Workspace) -> Watched {
        watched(workspace.manifest, manifestPath: workspace.manifestPath)
    }

    static func watched(_ manifest: Manifest, manifestPath: String) -> Watched {
        var roots: [String] = []
        for rule in manifest.rules {
            if let bucket = manifest.bucket(named: rule.sourceBucket) { roots.append(real(bucket.path)) }
        }
        let state = real(manifest.stateFolder)
        var skipped = [state]
        // The `.derive` folder holds every manifest's state: none of it is a source.
        let parent = (state as NSString).deletingLastPathComponent
        if (parent as NSString).lastPathComponent == ".derive" { skipped.append(parent) }
        // A manifest file that is a link (a dotfiles or stow checkout) is edited at its target:
        // every link on the way to each file and where it leads are watched too (attack 15/16's M7).
        // An include that could not be read is followed as well: its coming back is a change.
        let spelledFiles = (manifest.files + manifest.unreadIncludes + [manifestPath]).map(real)
        let files = PathSet(spelledFiles + spelledFiles.flatMap(Watched.links))
        let project = (real(manifestPath) as NSString).deletingLastPathComponent
        let chain = PathSet(roots.flatMap { Watched.chain(of: $0, below: project) })
        let spelled = (manifest.buckets.map(\.path) + [manifest.stateFolder]).map { URL(literalFilePath: $0).standardizedFileURL.path }
        let links = PathSet(spelled.flatMap { Watched.resolution(of: $0, below: project) }).subtracting(skipped)
        // Where builds write: the output buckets, the lock's folder (the manifest's) and the state folder.
        let outputs = manifest.rules.compactMap { manifest.bucket(named: $0.targetBucket).map { real($0.path) } }
        let targets = PathSet(outputs + [project, state])
        // The folders on the way to each manifest file as spelled below the project (an include's
        // folder may be a link: `inc` is followed, not only where it leads), and as resolved.
        let spelledProject = (URL(literalFilePath: manifestPath).standardizedFileURL.path as NSString).deletingLastPathComponent
        let spelledFolders = (manifest.files + manifest.unreadIncludes).map { file -> String in
            let folder = (URL(literalFilePath: file).standardizedFileURL.path as NSString).deletingLastPathComponent
            return folder.hasPrefix(spelledProject + "/") ? project + folder.dropFirst(spelledProject.count) : real(folder)
        }
        let manifestChain = PathSet((spelledFolders + spelledFiles.map { ($0 as NSString).deletingLastPathComponent })
            .filter { !PathKey.same($0, project) }.flatMap { Watched.chain(of: $0, below: project) })
        return Watched(manifestFiles: files, sourceRoots: PathSet(roots).sorted(), skipped: skipped.sortedByBytes(), sourceChain: chain, linkChain: links,
                       writeTargets: targets, manifestChain: manifestChain, manifestPath: manifestPath, project: project)
    }

    /// The folders a build writes into: the manifest's write targets, each folder holding a file
    /// the builds wrote, and the folders above those.
    static func writeFolders(_ watched: Watched, written: PathDictionary<FileState>, writtenFolders: PathDictionary<FolderState>) -> PathSet {
        PathSet(Array(watched.writeTargets) + written.keys.map { ($0 as NSString).deletingLastPathComponent } + Array(writtenFolders.keys))
    }

    /// The error that ends a watch whose manifest is not there at start (nil when it is, or when
    /// it cannot be told: a folder this user may not search says so in the build).
    static func missingManifest(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) != 0, errno == ENOENT || errno == ENOTDIR else { return nil }
        // Not init in another project's bucket or state (attack 50c's M7): that project is named.
        let folder = (path as NSString).deletingLastPathComponent
        if let outer = EnclosingProject.of(folder: folder.isEmpty ? "." : folder) {
            return "cannot watch \(path): no such manifest; this folder is in \(outer.what) of \(outer.manifest), another project: run derive in \(outer.folder), or name that manifest's path"
        }
        return "cannot watch \(path): no such manifest (check the path, or run derive init to make one); the watch starts only from a manifest that exists"
    }

    /// What the manifest says to watch when the build failed before making a workspace (a source
    /// bucket missing at start, or a loop of links): its bucket folders are followed from the
    /// start, so their coming back is seen; nil when the manifest does not load at all.
    func watchedAfterFailure() -> Watched? {
        let loaded = command.manifest.load(crossChecks: false)
        guard let manifest = loaded.manifest else { return nil }
        return Self.watched(manifest, manifestPath: command.manifest.manifest)
    }

    /// The path with its folder's symbolic links resolved (the file itself may be gone), as inotify reports it.
    static func real(_ path: String) -> String {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let folder = (absolute as NSString).deletingLastPathComponent
        guard let resolved = realpath(folder, nil) else { return absolute }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return (base == "/" ? "" : base) + "/" + (absolute as NSString).lastPathComponent
    }

    /// The current folder, its links resolved (as the watched paths are).
    static func currentFolder() -> String {
        URL(literalFilePath: FileManager.default.currentDirectoryPath).resolvingSymlinksInPath().path
    }

    /// "photos/a.jpg changed", "photos/a.jpg and 2 more changed": a file that still exists is
    /// named first (an editor's swap file, saved and renamed away, is only counted).
    /// `bases`: folders a changed path is named relative to, the first that holds it: the current
    /// folder and the manifest's as they were when the watch started (the watches name paths as
    /// they were then: after `mv project project2` the current folder's new path no longer
    /// prefixes them, and the line named the old absolute path: attack 39b's L1), then the
    /// current folder now.
    static func describe(_ changed: [String], relativeTo bases: [String] = []) -> String {
        let bases = bases + [currentFolder()]
        if changed == [recheckMarker] { return "outputs found stale by the no-op check (a change inotify did not report, or made while the build ran)" }
        let changed = changed.count > 1 ? changed.filter { $0 != recheckMarker } : changed
        // The folder the watch started in (or is in now) itself is `.` (attack 42b's L-i: after
        // `chmod 555 .` and `chmod 755 .` the line named the project by its absolute path).
        let own = [bases.first, bases.last].compactMap { $0 }
        func relative(_ path: String) -> String {
            if own.contains(path) { return "." }
            return bases.first { path.hasPrefix($0 + "/") }.map { String(path.dropFirst($0.count + 1)) } ?? path
        }
        // Still there, as named then or (the project moved since) from the current folder.
        let existing = changed.filter { FileManager.default.fileExists(atPath: $0) || FileManager.default.fileExists(atPath: relative($0)) }
        let shown = (existing + changed).first.map(relative) ?? "?"
        // Escaped as error lines are: a name with ESC or BEL would retitle or clear the terminal,
        // one with a line feed would split the one line per rebuild (attack 39b's L1).
        let named = TerminalText.escaped(shown)
        return changed.count > 1 ? "\(named) and \(changed.count - 1) more changed" : "\(named) changed"
    }

    /// A build's summary as the watch says it: its first line, ended by `ending` (the line's own
    /// words go on it, not on a note's), and the notes below it (outputs adopted from the lock
    /// unverified), each on its own line and only when it differs from the notes said last.
    /// Attack 40b's L4: in a clone the note came after every rebuild, and the first build's
    /// "Watching 5 folders" was glued to its end.
    static func statusLines(_ summary: String, ending: String, said: inout [String]) -> (status: String, notes: [String]) {
        let lines = summary.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let notes = Array(lines.dropFirst())
        defer { said = notes }
        return ((lines.first ?? "") + ending, notes.filter { !said.contains($0) })
    }

    /// One line per build, with the time, flushed at once (standard output may be a pipe).
    static func say(_ line: String) {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        print(String(format: "[%02d:%02d:%02d] ", parts.tm_hour, parts.tm_min, parts.tm_sec) + line)
        fflush(nil)   // every stream: standard output may be a pipe
    }
}

/// The folder of the manifest a watch was started with, held open: whether the path the manifest
/// was given by (relative: from the current folder, which follows a project moved around it)
/// still reaches it.
final class ProjectFolder: @unchecked Sendable {
    let descriptor: Int32
    /// The manifest as given, and its folder as given ("." for a bare name).
    let manifest: String
    let folder: String
    /// The folder's absolute path when the watch started.
    let startPath: String

    init?(manifest: String) {
        let folder = (manifest as NSString).deletingLastPathComponent
        self.folder = folder.isEmpty ? "." : folder
        self.manifest = manifest
        descriptor = open(self.folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        startPath = Self.path(of: descriptor) ?? URL(literalFilePath: self.folder).standardizedFileURL.path
    }

    func close() { _ = Glibc.close(descriptor) }

    /// Where the folder held is now (the kernel's name for it), nil when that cannot be read.
    static func path(of descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, Int(PATH_MAX))
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Nil while the manifest's folder as given is the folder held; else the error line that
    /// stops the watch: what happened and how to restart it.
    /// Also when the current folder moved past Foundation's reach (attack 58d's H1: the project,
    /// given by a relative path, moved under a 1 243-byte path with the watch's current folder;
    /// the next build made `/.derive/derive`, and a relative path given to Foundation trapped).
    func moved() -> String? {
        if let refusal = CurrentFolderCheck.refusal() {
            return refusal + " (the watch's current folder moved while it ran); the watch stopped"
        }
        var held = stat(), named = stat()
        guard fstat(descriptor, &held) == 0 else { return nil }
        if stat(folder, &named) == 0 {
            if named.st_dev == held.st_dev, named.st_ino == held.st_ino { return nil }
        } else if errno != ENOENT, errno != ENOTDIR, held.st_nlink > 0 {
            return nil   // unreadable for now (a chmod above it): the build says so, and the watch goes on
        }
        let name = (manifest as NSString).lastPathComponent
        let stopped = "the watch follows the manifest by the path it was given (\(manifest)), which no longer reaches it, so it stopped"
        if held.st_nlink == 0 {
            return "the project folder \(startPath) was removed while watching; \(stopped). Put the project back and run derive build --watch \(manifest) again"
        }
        if let now = Self.path(of: descriptor), now.hasPrefix("/"), stat(now, &named) == 0, named.st_dev == held.st_dev, named.st_ino == held.st_ino {
            let restart = (now == "/" ? "" : now) + "/" + name
            return "the project folder \(startPath) moved to \(now) while watching; \(stopped). Restart it there: derive build --watch \(restart)"
        }
        return "the project folder \(startPath) moved or was replaced while watching; \(stopped). Run derive build --watch again with the manifest's path now"
    }
}

/// Set once by SIGINT or SIGTERM; its descriptor becomes readable then, to wake `poll`.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    let descriptor: Int32
    private let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        _ = pipe(&ends)
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC); _ = fcntl(end, F_SETFL, O_NONBLOCK) }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    func set() {
        lock.lock()
        stopped = true
        lock.unlock()
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }
}
