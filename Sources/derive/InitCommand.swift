import ArgumentParser
import Confinement
import Foundation
import Manifest
import Planner
#if canImport(Glibc)
import Glibc
#endif

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented starter derive.yaml here for the images in DIR (never over an existing one).",
        discussion: "The manifest goes in the current folder and DIR becomes its source bucket: a bucket may not hold its own manifest, lock or state, so DIR is a folder below (or beside) this one."
    )

    // Optional, so that `--page DIR` is told apart from `--page` (attack 42b's L-h: DIR was ignored).
    @Argument(help: "The folder of images, below or beside the current folder (default: images).")
    var dir: String?

    @Flag(name: .long, help: "Write only init's page, _site/index.html, again (when it is gone); never over a file there. Nothing else is read or written.")
    var page = false

    /// Refuses an `_site` leading to `outputs` (a real path, made or not yet) when that lies in
    /// another project's bucket or state; a project whose manifest is the one init writes here
    /// (a registry line left from an earlier life of this folder) is no other project.
    static func refuseOtherProjects(outputs: String, here: String, manifest: String) throws {
        guard let outer = EnclosingProject.of(folder: outputs) ?? RegisteredProjects.enclosing(folder: outputs),
              StarterManifest.realPath((outer.manifest as NSString).deletingLastPathComponent) + "/" + (outer.manifest as NSString).lastPathComponent
                  != here + "/" + manifest else { return }
        throw CLIError("\(StarterManifest.outputFolder) leads to \(outputs), which is in \(outer.what) of \(outer.manifest), another project; derive init writes nothing there: "
                       + "the outputs and the page would be that project's files (served as them, or refused by its every build), and \(manifest) would not validate. "
                       + "Remove the link \(StarterManifest.outputFolder), or make it lead to a folder of its own outside that project's buckets and state, then run derive init again")
    }

    /// Why `path`, when something is there, is no folder: a symbolic link to nothing or in a
    /// loop, a file; nil for a folder (through links too) or nothing at all.
    static func notAFolder(_ path: String) -> String? {
        var info = stat(), target = stat()
        guard lstat(path, &info) == 0 else { return nil }
        let isLink = (info.st_mode & S_IFMT) == S_IFLNK
        let destination = isLink ? ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?") : ""
        if stat(path, &target) != 0 {
            return errno == ELOOP ? "is a symbolic link to \(destination), which leads back to itself (a loop of links)"
                : "is a symbolic link to nothing (\(destination), which does not exist)"
        }
        guard (target.st_mode & S_IFMT) != S_IFDIR else {
            // A folder this user cannot make files in (attack 40b's M4: owned by root, not writable).
            guard access(path, W_OK | X_OK) != 0 else { return nil }
            return "is a folder this user cannot make files in (\(String(cString: strerror(errno))))"
        }
        return isLink ? "is a symbolic link to \(destination), which is a file, not a folder" : "is a file, not a folder"
    }

    /// The usage error for `derive init -photos`: an argument with one '-' and more than one
    /// letter, before any `--`, is a cluster of one-letter options to ArgumentParser (`-h` among
    /// them printed help and exited 0); init has none, so it is a folder name written unprotected.
    static func optionLikeFolder(_ arguments: [String]) -> String? {
        guard arguments.first == "init" else { return optionLikeManifest(arguments) }
        for argument in arguments.dropFirst() {
            if argument == "--" { return nil }
            guard argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2 else { continue }
            return "\(argument) is not an option of derive init (it reads as the one-letter options \(argument.dropFirst().map { "-\($0)" }.joined(separator: " ")), and init has none); "
                + "for a folder named \(argument), write derive init -- \(argument) or derive init ./\(argument)"
        }
        return nil
    }

    /// The same for every other command: `derive check -dash.yaml` was read as -d -a -s -h …, and
    /// `-h` printed help and exited 0 with nothing checked (attack 43a's F3). An argument with one
    /// '-' and more than one letter, before any `--`, that names a manifest (its extension) or a
    /// file or folder that is there, is a usage error saying how to write it.
    static func optionLikeManifest(_ arguments: [String]) -> String? {
        guard let command = arguments.first, !command.hasPrefix("-") else { return nil }
        for (position, argument) in arguments.enumerated().dropFirst() {
            if argument == "--" { return nil }
            guard argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2 else { continue }
            var info = stat()
            let lowered = argument.lowercased()
            guard [".yaml", ".yml", ".json"].contains(where: lowered.hasSuffix) || lstat(argument, &info) == 0 else { continue }
            // `./NAME` first: it works as an option's value too (`--manifest ./-hero.yaml`), where
            // `-- NAME` would make it the next positional argument (attack 43c's L-a).
            let name = TerminalText.escaped(argument)
            // Given to --manifest (explain, html, release take the manifest only so): `./NAME` or
            // `--manifest=NAME` there; `-- NAME` would make it their OUTPUT argument (attack 44a's L5).
            if ["--manifest", "-m"].contains(arguments[position - 1]) {
                return "\(name) is not an option of derive \(command) (it reads as the one-letter options \(TerminalText.escaped(argument.dropFirst().map { "-\($0)" }.joined(separator: " ")))); "
                    + "for a manifest named \(name), write --manifest ./\(name) or --manifest=\(name)"
            }
            return "\(name) is not an option of derive \(command) (it reads as the one-letter options \(TerminalText.escaped(argument.dropFirst().map { "-\($0)" }.joined(separator: " ")))); "
                + "for a file named \(name), write ./\(name) (derive \(command) ./\(name), or after --manifest), or put it after -- where it is the manifest argument (derive \(command) -- \(name))"
        }
        return nil
    }

    /// The first folder below `_site` that the outputs of `keys` go into (`_site/{dir}`, each
    /// level) that is there and is no folder this user can make files in, with why (`notAFolder`).
    static func blockedOutputFolder(for keys: [String]) -> (path: String, problem: String)? {
        var looked: Set<String> = []
        for key in keys {
            var path = StarterManifest.outputFolder
            for part in (key as NSString).deletingLastPathComponent.split(separator: "/") {
                path += "/" + part
                var info = stat()
                // Not there: the build makes it, in the folder above, which was looked at.
                guard lstat(path, &info) == 0 else { break }
                guard looked.insert(path).inserted else { continue }
                if let problem = notAFolder(path) { return (path, problem) }
            }
        }
        return nil
    }

    /// Whether a command-line argument's bytes are not UTF-8.
    static var argumentsHoldNonUTF8: Bool {
        (0..<Int(CommandLine.argc)).contains { index in CommandLine.unsafeArgv[index].map { String(validatingCString: $0) == nil } ?? false }
    }

    func validate() throws {
        if page, let dir {
            throw ValidationError("--page writes only init's page (\(StarterManifest.outputFolder)/\(StarterManifest.pageName)) again and reads no folder of images; "
                                  + "run derive init --page without \(TerminalText.escaped(dir))")
        }
    }

    func run() throws {
        let folder = dir ?? "images"
        let manifest = "derive.yaml"
        var info = stat()
        let pagePath = StarterManifest.outputFolder + "/" + StarterManifest.pageName
        // Never a project in another's bucket or state folder (attack 50c's M7): its manifest,
        // .gitignore and page would be that bucket's files, and the outer project refused.
        // And a bucket the registry of built projects records (attack 51b's M1): a sibling or
        // absolute one, or one whose manifest is mid-edit, emptied or renamed.
        if let outer = EnclosingProject.of(folder: FileManager.default.currentDirectoryPath)
            ?? RegisteredProjects.enclosing(folder: FileManager.default.currentDirectoryPath) {
            throw CLIError("this folder is in \(outer.what) of \(outer.manifest), another project; derive init writes nothing here: a manifest, .gitignore, "
                           + ".gitattributes and page written in a project's bucket or state would be its files (served, taken as sources, or refused by its every build, "
                           + "as a bucket may not hold a project). Run derive init in a folder of its own, outside that project's buckets and state; "
                           + "to work on that project, run derive in \(outer.folder)")
        }
        if page {
            try Self.writePageAgain(pagePath)
            return
        }
        if lstat(manifest, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK, stat(manifest, &info) != 0 {
            // A link to nothing is no manifest that "already exists" (attack 41b's L8); it is left as it is.
            let loop = errno == ELOOP
            let destination = (try? FileManager.default.destinationOfSymbolicLink(atPath: manifest)) ?? "?"
            throw CLIError("\(manifest) is a dangling symbolic link (to \(destination), \(loop ? "a loop of links" : "which does not exist")); derive init never writes through a link, and leaves it. "
                           + "Restore \(destination) if it was your manifest, or remove the link (rm \(manifest)) and run derive init again")
        }
        if lstat(manifest, &info) == 0 {
            // Builds never write the page: after `rm -rf _site` this is the way back (attack 39b's L7).
            let pageGone = lstat(pagePath, &info) != 0 && errno == ENOENT
            throw CLIError("\(manifest) already exists here; derive init never overwrites a manifest (edit it, or move it away first)"
                + (pageGone ? "; to write only init's page again (\(pagePath) is gone), run derive init --page" : ""))
        }
        // A manifest of the same stem here (derive.yml, derive.json, derive) would share derive.lock
        // and .derive/derive with the new one: both would fail validation, the user's working one too.
        // One that does not parse yet counts too (issue #13): it would, once finished.
        if let sibling = SiblingManifests.blockingNewManifest(stem: "derive", in: ".").first {
            let name = (sibling as NSString).lastPathComponent
            if SiblingManifests.existing(stem: "derive", in: ".").contains(sibling) {
                throw CLIError("\(name) is already a manifest here; derive init would write derive.yaml beside it, and the two would share derive.lock and .derive/derive (neither would validate). Edit \(name), or run derive init in another folder")
            }
            throw CLIError("\(name) is here, named as a manifest of derive.yaml's stem (it does not parse as one yet); derive init would write derive.yaml beside it, "
                           + "and once \(name) parses the two would share derive.lock and .derive/derive (neither would validate). "
                           + "Finish \(name) as your manifest, or move or rename it (or run derive init in another folder)")
        }
        // The folder is looked at as the kernel resolves it and named in the manifest, whose loader
        // reads '..' as text: a '..' the two read differently is refused (OptionPath).
        _ = try Output.resolvedOption(folder, "DIR")
        // A manifest of another name here whose 'lock:' or 'state:' is derive.lock or .derive/derive
        // (attack 13b's finding 6): the validator would refuse both, as it does two of one stem.
        if let (sibling, lock, state) = SiblingManifests.sharingControlFiles(withNew: manifest, in: ".").first {
            let name = (sibling as NSString).lastPathComponent
            let shared = [lock ? "derive.lock" : nil, state ? ".derive/derive" : nil].compactMap { $0 }.joined(separator: " and ")
            let ownName = (name as NSString).deletingPathExtension
            throw CLIError("\(name) is already a manifest here and uses \(shared) ('lock:'/'state:'), which derive.yaml would use too; "
                           + "two manifests may not share a lock or a state folder (each would break the other project). "
                           + "Give \(name) names of its own (e.g. lock: \(ownName).lock and state: .derive/\(ownName)), or run derive init in another folder")
        }
        // derive.lock here (not a neighbour manifest's, named above) and not a lock of derive.yaml (the user's file, another tool's): the first
        // build would refuse it, so the manifest would not build as written (attack 36's F9).
        if lstat("derive.lock", &info) == 0 {
            let data = (info.st_mode & S_IFMT) == S_IFREG ? FileHandle(forReadingAtPath: "derive.lock").flatMap { try? $0.read(upToCount: 1 << 20) } : nil
            if !(data.map { LockFile.isOurs($0, manifest: manifest, lockPath: "derive.lock") } ?? false) {
                throw CLIError("derive.lock is here and is not a Derive lock of \(manifest); derive init would write \(manifest) beside it, and its first build would refuse "
                               + "to overwrite derive.lock (Derive replaces only files it wrote). Move or rename derive.lock, or run derive init in another folder")
            }
        }
        // derive.yaml's state folder left by an earlier project here (the manifest and lock removed
        // to start over): the first build would take its records for the new manifest's, and delete
        // the old outputs they name that it does not produce. Named, as derive.lock is.
        let state = ".derive/derive"
        if lstat(state, &info) == 0 {
            throw CLIError("\(state) is here: the build state of an earlier Derive project in this folder (derive.yaml's state folder); derive init would write \(manifest) beside it, "
                           + "and its first build would take that project's records for its own. Remove it (rm -r \(state): it holds only Derive's records of what it built, never an image or an output), "
                           + "then run derive init again; or run derive init in another folder")
        }
        // Anything at the index path the manifest declares (an earlier project's index, the user's
        // file): the first build would refuse to replace it and build nothing (attack 37b's F5).
        let index = StarterManifest.outputFolder + "/" + StarterManifest.indexName
        if lstat(index, &info) == 0 {
            let what = (info.st_mode & S_IFMT) == S_IFREG ? "a file" : (info.st_mode & S_IFMT) == S_IFDIR ? "a folder" : "not a regular file"
            throw CLIError("\(index) is here (\(what)); derive init would name it as \(manifest)'s index, and its first build would refuse "
                           + "to overwrite it (Derive replaces only files it wrote and recorded), so nothing would be built. "
                           + "Move or rename \(index) (an index left by an earlier Derive project here may be deleted: the build writes it again), then run derive init again")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            // The argument's bytes were not UTF-8: Swift shows them as U+FFFD, and no such folder is there.
            if folder.unicodeScalars.contains("\u{FFFD}"), Self.argumentsHoldNonUTF8 {
                throw CLIError("\(folder) (as UTF-8 shows it) cannot be named in a manifest: the folder's name is not UTF-8, and derive.yaml is UTF-8 text. "
                               + "Rename the folder to a UTF-8 name (e.g. convmv -f latin1 -t utf-8 --notest on it), then run derive init again")
            }
            if folder.isEmpty { throw CLIError("DIR is empty (\"\"); name the folder of images, e.g. derive init photos, or leave DIR out for images") }
            // A link to nothing or a loop is named as one, as `_site` and derive.yaml links are.
            throw CLIError("\(folder) \(Self.notAFolder(folder) ?? "is not a folder"); name the folder of images, e.g. derive init photos")
        }
        // The manifest, its lock and state live here: the images' folder may not be this one or hold it.
        let here = StarterManifest.realPath(FileManager.default.currentDirectoryPath)
        let images = StarterManifest.realPath(URL(literalFilePath: folder).path)
        if here == images || here.hasPrefix(images.hasSuffix("/") ? images : images + "/") {
            throw CLIError("\(folder) holds the current folder, where derive.yaml, its lock and state go; a bucket may not hold them. "
                           + "Run derive init in the folder that holds \(folder), naming it (cd \((images as NSString).deletingLastPathComponent) && derive init \((images as NSString).lastPathComponent))")
        }
        // An _site nothing can be made in (a link to nothing, a loop of links, a file): the page
        // would not be written and the first build would fail on every output (attack 27w's finding 8).
        if let problem = Self.notAFolder(StarterManifest.outputFolder) {
            // A link to nothing that leads into another project's bucket or state is named as that
            // first (attack 53b's 6: "make the folder it leads to" led straight into that refusal).
            if problem.hasPrefix("is a symbolic link to nothing"),
               let target = try? FileManager.default.destinationOfSymbolicLink(atPath: StarterManifest.outputFolder) {
                let leads = StarterManifest.realPath(URL(literalFilePath: target, relativeTo: URL(literalFilePath: here + "/")).standardizedFileURL.path)
                try Self.refuseOtherProjects(outputs: leads, here: here, manifest: manifest)
            }
            throw CLIError("\(StarterManifest.outputFolder) \(problem); derive init puts the outputs and the page there, and nothing can be made in it. "
                           + (problem.hasPrefix("is a symbolic link to nothing") ? "Make the folder it leads to, or remove the link"
                              : problem.hasPrefix("is a folder this user") ? "Make it writable for you (chmod or chown it), or move it away" : "Move it away")
                           + ", then run derive init again")
        }
        // The outputs' folder (through a link too) may neither be the images' folder nor hold it:
        // the two buckets would share files and the manifest would not validate.
        let outputs = StarterManifest.realPath(here + "/" + StarterManifest.outputFolder)
        if images == outputs || images.hasPrefix(outputs + "/") {
            let what = images == outputs ? "is" : "is inside \(StarterManifest.outputFolder),"
            throw CLIError("\(folder) \(what) where derive init puts the outputs; keep the images in another folder")
        }
        // Nor the other way round (issue #13): an _site that leads into the images' folder (a link
        // to images/web, made or not yet) would put the outputs and the page among the sources.
        if outputs.hasPrefix(images == "/" ? images : images + "/") {
            throw CLIError("\(StarterManifest.outputFolder) leads into \(folder) (to \(outputs)), where derive init puts the outputs and the page: they would be written among the images, "
                           + "and the two buckets may not share files. Remove the link \(StarterManifest.outputFolder), or make it lead to a folder outside \(folder)")
        }
        // Nor into another project's bucket or state (attack 52b's 6 and L2: through a link, the
        // page went into a registered project's private bucket, and a refusal over its outputs
        // called them files "Derive did not write"). The cwd was looked at above; `_site` where
        // it leads. A project whose manifest is the one init writes here (a registry line left
        // from an earlier life of this folder) is no other project.
        if outputs != here + "/" + StarterManifest.outputFolder { try Self.refuseOtherProjects(outputs: outputs, here: here, manifest: manifest) }
        // An _site that already holds files (an earlier generator's output, drafts, private notes)
        // is not made a public, listable bucket with them (attack 38a's M2).
        // (The page an earlier init wrote there, unchanged, is Derive's: a re-run is not refused.)
        let earlierPage = StarterManifest.outputFolder + "/" + StarterManifest.pageName
        let held = InitSiteContents.of(StarterManifest.outputFolder) { $0 == earlierPage && StarterManifest.holdsPage($0) }
        if held.count > 0 { throw CLIError(held.refusal(StarterManifest.outputFolder)) }
        // A link to a folder is followed here, once: its images are looked for where it leads, and
        // the manifest names the link, which the build reads the bucket through (links inside
        // the folder are not followed, as the build does not).
        var link = info
        let isLink = lstat(folder, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK
        let root = isLink ? images : folder
        var found = StarterManifest.scan(root)
        guard !found.isEmpty else {
            // Images there that no build can take (attack 44a's L6: a folder renamed to Latin-1
            // held them all, and "add some" was the advice): each named with its fix.
            if !found.leftOut.isEmpty {
                let shown = found.leftOut.prefix(5).map { left in
                    "\(folder)/\(left.key): " + left.why.replacingOccurrences(of: ", then remove it from 'exclude:'", with: "")
                        .replacingOccurrences(of: ", and so does the 'exclude:' line", with: "")
                        .replacingOccurrences(of: " (its files are not sources, and it would fail on it)", with: "")
                }
                let more = found.leftOut.count > shown.count ? "; and \(found.leftOut.count - shown.count) more like these" : ""
                throw CLIError("found no images in \(folder) that a build can read, only what it would fail on: " + shown.joined(separator: "; ")
                               + more + ". Fix \(found.leftOut.count == 1 ? "it" : "those") as said, then run derive init again")
            }
            throw CLIError("found no images in \(folder)\(isLink ? " (a symbolic link to \(images), followed)" : "") (looked for \(StarterManifest.extensions.joined(separator: ", ")) files, "
                           + "outside hidden folders); add some and run derive init again")
        }
        // What the build's own checks refuse, judged on the manifest as it would be written.
        found.leaveOut(try InitBuildChecks.refusals(keys: found.keys, folder: root, manifestText: StarterManifest.text(found, images: folder)))
        // The folders below _site the starter rules write into (`_site/{dir}`), those there already:
        // one this user cannot make files in fails every output of its images (attack 41b's L6).
        if let (path, problem) = Self.blockedOutputFolder(for: found.keys) {
            throw CLIError("\(path) \(problem); the first build writes the outputs of the images in \(folder)/\(path.dropFirst(StarterManifest.outputFolder.count + 1)) there, "
                           + "and would fail on each. "
                           + (problem.hasPrefix("is a folder this user") ? "Make it writable for you (chmod or chown it), or move it away" : "Move it away")
                           + ", then run derive init again")
        }
        let text = StarterManifest.text(found, images: folder)
        // Files the first build would fail on: not counted, excluded in the manifest, named here.
        let shown = 20
        for left in found.leftOut.prefix(shown) {
            // Escaped as every terminal line is (`Output.printWarning`: ESC as `\u{1B}`, as watch
            // shows it; attack 40b's L2); a name that is not UTF-8 as its key is (`caf\xE9.jpg`).
            let name = folder + "/" + left.key
            if StarterManifest.excludePattern(left.key, counted: found.keys) == nil {
                Output.printWarning("\(name) is not counted, and the first build will fail on it: \(left.why). Its name holds '{', which an 'exclude:' pattern "
                                    + "cannot write exactly (braces are alternatives), and '?' in its place would exclude an image counted too: rename it or move it out of \(folder)")
            } else {
                Output.printWarning("\(name) is not counted and is excluded in \(manifest) ('exclude:'): \(left.why)")
            }
        }
        if found.leftOut.count > shown {
            Output.printWarning("and \(found.leftOut.count - shown) more files are not counted, each excluded in \(manifest) ('exclude:')")
        }
        guard !found.isEmpty else {
            throw CLIError("the first build would fail on every image in \(folder) (each named above); fix or replace them, or raise the limits named, then run derive init again")
        }
        // Never a manifest validate refuses (attack 52b's 6): judged on its text, nothing written yet.
        let refused = InitManifestCheck.errors(manifestText: text, manifest: manifest)
        if !refused.isEmpty { throw CLIError(InitManifestCheck.refusal(refused, manifest: manifest)) }
        // Whole or not at all: a manifest created since the check above is not replaced either.
        if let failure = StarterManifest.createWhole(manifest, bytes: Array(text.utf8)) {
            throw CLIError("cannot create \(manifest): \(failure)")
        }
        let total = found.total
        // The page the website shows: written once, never over a file there.
        let page = StarterManifest.outputFolder + "/" + StarterManifest.pageName
        let pageFailure = StarterManifest.writePage(page)
        let pageWritten = pageFailure == nil
        let pageNote = pageWritten ? " and \(page)" : ""
        let linkNote = isLink ? " (a symbolic link to \(images))" : ""
        // The lock and the index are compared byte for byte: git must not change their line endings.
        let controlFiles = ["derive.lock", StarterManifest.outputFolder + "/" + StarterManifest.indexName]
        let attributes = InitGitAttributes.ensure(paths: controlFiles)
        let marked = controlFiles.joined(separator: " and ") + " -text (git keeps their bytes as Derive wrote them)"
        let attributesNote: String
        switch attributes {
        case .written: attributesNote = "Wrote \(InitGitAttributes.fileName) marking \(marked). "
        case .extended: attributesNote = "Added to \(InitGitAttributes.fileName) lines marking \(marked). "
        case .unchanged: attributesNote = ""
        case .refused(let why):
            attributesNote = ""
            Output.printWarning("\(InitGitAttributes.fileName) was left as it is (\(why)); add the lines '"
                                + controlFiles.map(InitGitAttributes.line).joined(separator: "' and '")
                                + "' to it yourself, or a clone made with git's core.autocrlf changes those files' bytes")
        }
        // The build state is this clone's own: kept out of git (attack 42b's L-d).
        let ignoreNote: String
        switch InitGitIgnore.ensure() {
        case .written: ignoreNote = "Wrote \(InitGitIgnore.fileName) keeping .derive/ (the build state) out of git. "
        case .extended: ignoreNote = "Added to \(InitGitIgnore.fileName) a line keeping .derive/ (the build state) out of git. "
        case .unchanged: ignoreNote = ""
        case .refused(let why):
            ignoreNote = ""
            Output.printWarning("\(InitGitIgnore.fileName) was left as it is (\(why)); add the line '\(InitGitIgnore.line)' to it yourself, "
                                + "or git commits the build state, which each clone sets aside as another project's")
        }
        // The folder's name as the terminal shows every name (attack 40b's L2: ESC, BEL and LF in DIR were printed raw).
        Output.printLine("Wrote \(manifest)\(pageNote) for \(total) image\(total == 1 ? "" : "s") in \(folder)\(linkNote). "
              + (pageFailure.map { $0 == StarterManifest.thereAlready ? "\(page) was not written: something is there already (a file, a folder or a link), left as it is. "
                                                                        : "\(page) was not written (\($0)). " } ?? "")
              + attributesNote + ignoreNote
              + "Next: derive build, then derive serve and open the Website address it prints.")
    }
}

extension InitCommand {
    /// `derive init --page`: init's page written again where it was (`_site/index.html`), only
    /// when nothing is there, in a `_site` that is a folder (never through a link) or is made.
    static func writePageAgain(_ path: String) throws {
        let folder = StarterManifest.outputFolder
        var info = stat()
        if lstat(folder, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
            let what = (info.st_mode & S_IFMT) == S_IFLNK ? "a symbolic link, which derive init never writes through" : "not a folder"
            throw CLIError("\(folder) is \(what); derive init --page writes \(path) only into a folder \(folder) (remove or rename what is there, then run it again)")
        }
        if lstat(path, &info) == 0 {
            throw CLIError("\(path) is there already; derive init --page never writes over it (move it away first to get init's page again)")
        }
        if mkdir(folder, 0o755) != 0, errno != EEXIST {
            throw CLIError("cannot create \(folder): \(String(cString: strerror(errno)))")
        }
        // Written inside the folder opened without following a link (one swapped in since is refused).
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError("cannot open \(folder) as a folder (not through a link): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let name = StarterManifest.pageName, temporary = ".\(name).\(getpid()).derive-tmp"
        let bytes = Array(StarterManifest.page.utf8)
        let file = openat(fd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { unlinkat(fd, temporary, 0) }
        let written = bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) } == bytes.count && fsync(file) == 0
        let writeError = errno
        close(file)
        guard written else { throw CLIError("cannot write \(path): \(String(cString: strerror(writeError)))") }
        // Named only if nothing is there (a file made since is never replaced).
        guard linkat(fd, temporary, fd, name, 0) == 0 else {
            throw CLIError(errno == EEXIST ? "\(path) is there already; derive init --page never writes over it (move it away first to get init's page again)"
                           : "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        Output.printLine("Wrote \(path), init's page (it reads \(StarterManifest.indexName) beside it); nothing else was written.")
    }
}

/// The manifest `derive init` writes: the images' folder as a private source bucket, `_site/`
/// beside the manifest as the public output bucket, two styles (one in each form), two rules.
enum StarterManifest {
    static let extensions = ["jpg", "jpeg", "png", "webp", "gif", "heic", "heif", "avif", "tif", "tiff", "bmp"]
    static let outputFolder = "_site"
    /// The rules' `from:` glob after `images/**/`: every extension above, as written in lower and upper case.
    static let sourceGlob = "*.{" + extensions.flatMap { [$0, $0.uppercased()] }.joined(separator: ",") + "}"
    /// Files looked at before the scan stops (a home folder is not a photo folder).
    static let maxFiles = 100_000

    /// What the scan found: image extensions as written (`JPG` and `jpg` are different globs) →
    /// count, and whether two images of one folder share a name but for the extension
    /// (`IMG_0001.JPG` and `IMG_0001.HEIC`), whose outputs `{name}` alone would name alike.
    struct Found {
        var counts: [String: Int] = [:]
        var stemsCollide = false
        /// Files with an image extension the first build would fail on (a link, a FIFO, a name with
        /// a control character, bytes of no image format): key in the folder → why. Not counted;
        /// the rules exclude them (issue #13: init counted them, and the first build failed).
        var leftOut: [(key: String, why: String)] = []
        /// The keys counted (to check that an exclude pattern takes none of them).
        var keys: [String] = []
        /// Keys of `leftOut` whose names are not UTF-8, as the build's listing writes them (`\xHH`).
        var notUTF8: Set<String> = []
        /// Keys of `leftOut` that are folders the build cannot walk: excluded with all below them.
        var folders: Set<String> = []
        var isEmpty: Bool { counts.isEmpty }
        var total: Int { counts.values.reduce(0, +) }

        /// Counted keys moved to `leftOut`, each with why.
        mutating func leaveOut(_ refused: [(key: String, why: String)]) {
            let moved = Set(refused.map(\.key))
            guard !moved.isEmpty else { return }
            for key in keys where moved.contains(key) {
                let ext = (key as NSString).pathExtension
                counts[ext, default: 0] -= 1
                if counts[ext] == 0 { counts[ext] = nil }
            }
            keys.removeAll { moved.contains($0) }
            leftOut += refused
        }
    }

    /// The files of `folder` as the build lists a bucket (`DiskObjectLister`: the same keys, hidden
    /// names skipped, and the entries it cannot take named, a name that is not UTF-8 as `\xHH`).
    static func scan(_ folder: String) -> Found {
        var found = Found()
        guard let listing = DiskObjectLister().entries(inFolder: folder, skipping: []) else { return found }
        var stems: Set<String> = []
        let entries = listing.keys.map { ($0, kind: String?.none) } + listing.others.map { ($0.key, kind: Optional($0.kind)) }
        for (key, kind) in entries.prefix(maxFiles) {
            let ext = (key as NSString).pathExtension
            // A link to a folder, a mount point, a folder it cannot read: the build fails on
            // any the rules' `**` descends into, whatever its name (attack 37b's F3), so the
            // whole folder is excluded (`key/**`, and `key` too, for a name like an image's).
            if let kind, !key.isEmpty, DiskObjectLister.hidesFiles(kind) {
                found.leftOut.append((key, hiddenFilesWhy(kind)))
                found.folders.insert(key)
                continue
            }
            guard extensions.contains(ext.lowercased()), kind != DiskObjectLister.folder else { continue }
            if kind == DiskObjectLister.notUTF8 {
                found.leftOut.append((key, "its name is not valid UTF-8, so it cannot be a key (the build names it with its other bytes as \\xHH, as here, "
                                      + "and so does the 'exclude:' line); rename it to UTF-8 (e.g. convmv -f latin1 -t utf-8 --notest), then remove it from 'exclude:'"))
                found.notUTF8.insert(key)
                continue
            }
            if let why = buildWouldFail(folder + "/" + key, key: key) ?? outputsWouldLandOnAFile(key) {
                found.leftOut.append((key, why))
                continue
            }
            guard kind == nil else { continue }
            found.counts[ext, default: 0] += 1
            found.keys.append(key)
            // Case-folded: `a.jpg` and `A.png` collide on a case-insensitive disk.
            if !stems.insert((key as NSString).deletingPathExtension.lowercased()).inserted { found.stemsCollide = true }
        }
        return found
    }

    /// Why the build fails on a folder entry whose files it cannot see, and the fix.
    static func hiddenFilesWhy(_ kind: String) -> String {
        let fix = kind.hasPrefix("a symbolic link") ? "put the folder itself there (or make the folder it leads to a bucket of its own)"
            : kind == DiskObjectLister.mountPoint ? "unmount it, or make the mounted folder a bucket of its own"
            : kind == DiskObjectLister.pathTooLong ? "shorten the path"
            : kind == DiskObjectLister.notUTF8Folder ? "rename it to UTF-8 (e.g. convmv -r -f latin1 -t utf-8 --notest)" : "make it readable"
        return "it is \(kind), which the build never walks into (its files are not sources, and it would fail on it); \(fix), then remove it from 'exclude:'"
    }

    /// Why the first build would fail on the file at `path` (`key` in the bucket), or nil: the
    /// build's own refusals of a source, judged here before any manifest names it.
    static func buildWouldFail(_ path: String, key: String) -> String? {
        if key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "its name holds a control character, which no output's name may (derive serve refuses such keys); rename it, then remove it from 'exclude:'"
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return "it cannot be read (\(String(cString: strerror(errno))))" }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFLNK: return "a symbolic link, which Derive never follows inside a bucket; put the file itself there, then remove it from 'exclude:'"
        default: return "not a regular file (a FIFO, socket or device); move it away"
        }
        // Never a FIFO swapped in meanwhile (O_NONBLOCK), never through a link.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return "it cannot be read (\(String(cString: strerror(errno))))" }
        defer { close(descriptor) }
        var head = [UInt8](repeating: 0, count: 12)
        let count = read(descriptor, &head, head.count)
        guard count >= 0 else { return "it cannot be read (\(String(cString: strerror(errno))))" }
        if ContentDigests.sniff(Data(head.prefix(count))).isEmpty {
            return "its bytes are not an image in a supported format (JPEG, PNG, GIF, WebP, TIFF, HEIC, AVIF, BMP), whatever its name says"
        }
        return nil
    }

    /// Why the outputs of the image `key` would land below a file init writes in `_site` (a photo
    /// folder named `derive-index.json` or `index.html`: the plan refuses outputs below the index,
    /// and none can be written below the page), or nil.
    static func outputsWouldLandOnAFile(_ key: String) -> String? {
        guard let slash = key.firstIndex(of: "/") else { return nil }
        let folder = String(key[..<slash])
        guard folder == indexName || folder == pageName else { return nil }
        return "its outputs would go below \(outputFolder)/\(folder), where derive init writes the \(folder == indexName ? "index" : "preview page") (a file); rename the folder \(folder), then remove it from 'exclude:'"
    }

    /// `path`'s real path: every link resolved, also a link whose target is not made yet (an
    /// `_site` leading to `images/web/new`), and a missing last part kept as written.
    static func realPath(_ path: String, depth: Int = 0) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        let parent = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        let base = parent.isEmpty || parent == path || depth > 40 ? parent : realPath(parent, depth: depth + 1)
        let joined = (base.hasSuffix("/") ? base : base + "/") + name
        if depth <= 40, let target = try? FileManager.default.destinationOfSymbolicLink(atPath: joined) {
            return realPath(target.hasPrefix("/") ? target : (base.hasSuffix("/") ? base : base + "/") + target, depth: depth + 1)
        }
        return joined
    }

    /// An exclude pattern that matches `key` alone: `*`, `?` and `[` written as a class of one
    /// (`x*.jpg` → `x[*].jpg`, `bad[1].jpg` → `bad[[]1].jpg`; `]` outside a class, `}` and `,`
    /// outside braces and `\` are plain characters already). A `{` has no exact spelling (braces
    /// expand before classes are read): it becomes `?`. The pattern is nil when it would match
    /// another key init counted too (a `?` for `{`, or a literal `caf\xE9.jpg` beside a name
    /// that is not UTF-8): the file is then only named, with the fix.
    static func excludePattern(_ key: String, counted: [String]) -> String? {
        var pattern = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "*", "?", "[": pattern.unicodeScalars.append(contentsOf: ["[", scalar, "]"])
            case "{": pattern.unicodeScalars.append("?")
            default: pattern.unicodeScalars.append(scalar)
            }
        }
        guard let glob = try? Glob(pattern), !counted.contains(where: glob.matches) else { return nil }
        return pattern
    }

    static func text(_ found: Found, images: String) -> String {
        // A path YAML reads back as written; the comment shows the same escapes, on one line.
        let path = "\"" + yamlEscaped(images) + "\""
        let exts = found.counts.keys.sorted()
        // Every extension Derive reads, lower and upper case, not only those found: a camera's
        // `IMG_2000.JPG` or a `.webp` added later must not be skipped while every command says
        // "up to date" (attack 20's I1). A mixed case found (`Photo.Jpg`) is added: every file
        // counted is built (issue #13).
        let mixed = exts.filter { $0 != $0.lowercased() && $0 != $0.uppercased() }
        let glob = mixed.isEmpty ? Self.sourceGlob
            : "*.{" + (extensions.flatMap { [$0, $0.uppercased()] } + mixed).joined(separator: ",") + "}"
        // Files the first build would fail on, each excluded by a pattern that takes it alone.
        let patterns = found.leftOut.flatMap { left -> [String] in
            guard let pattern = Self.excludePattern(left.key, counted: found.keys) else { return [] }
            return found.folders.contains(left.key) ? [pattern, pattern + "/**"] : [pattern]
        }
        let exclude = patterns.isEmpty ? ""
            : "\n    exclude:                      # files derive init did not count: the build would fail on them (it said why)"
            + patterns.map { "\n      - \"images/" + yamlEscaped($0) + "\"" }.joined()
        let summary = exts.map { "\(found.counts[$0]!) \($0)" }.joined(separator: ", ")
        // `{key}` keeps the source's extension in the name, where two sources share a stem.
        let named = found.stemsCollide ? "{key}" : "{dir}/{name}"
        let namedNote = found.stemsCollide
            ? "\n  # Two images share a name but for the extension, so outputs are named by {key} (with it)."
            : ""
        return """
        # Derive manifest written by `derive init` for the images in \(yamlEscaped(images)) (\(summary)).
        # Next: `derive build` renders, `derive serve` previews (open the Website address it prints:
        # _site/index.html shows every picture). `derive validate` checks this file, `derive plan`
        # shows what a build would do; editors complete and check it with `derive schema`.
        version: 1

        buckets:
          # The images are the sources. Private: `derive serve` shows them only to signed requests.
          images:
            path: \(path)
            acl: private
          # Where the derivatives go, beside this file (the first build creates the folder).
          # Public: anyone may read them. Publish _site/ as your site (or copy its files into it).
          site:
            path: \(outputFolder)
            acl: public-read
            url: .                        # addresses in the index, from _site/index.html (or https://cdn.example.com/img)
            website: {index: \(pageName)}  # `derive serve` answers /site/ with _site/\(pageName)

        # Named recipes in the OSS image-processing language (README, "The process language"):
        # a list of actions with plain values (Derive writes the OSS string), or a string such as
        # image/resize,m_fill,w_320,h_320/quality,q_80/format,webp (the same recipe as thumb).
        # A large copy is the <picture> rule's widest WebP below: no style writes it again.
        styles:
          thumb:
            - resize: {m: fill, w: 320, h: 320}
            - quality: {q: 80}
            - format: webp

        derivatives:
          # A square thumbnail of every image, as WebP (browsers show it, whatever the source's
          # format). {hash} names each file by its bytes: a changed file gets a new
          # name, so it can be cached for ever; the old one is deleted.\(namedNote)
          - name: thumbnails
            from: images/**/\(glob)\(exclude)
            styles: [thumb]
            to: site/\(named).{style}.{hash}.webp
            acl: public-read              # the sources are private: publishing their derivatives is deliberate
          # A <picture> per image: AVIF and WebP <source>s and a JPEG <img> at three widths (a
          # narrower image is drawn once, at its own width), and a tiny blurred placeholder.
          # `derive html images/KEY --rule responsive` prints it; the index below holds it for every image.
          - name: responsive
            from: images/**/\(glob)\(exclude)
            process: image/resize,w_{w}/format,{f}
            matrix:
              w: [480, 960, 1600]
              f: [avif, webp, jpg]
            to: site/\(named)-{w}.{hash}.{f}
            acl: public-read
            placeholder: true

        # Every output by source, with each picture's HTML, for site generators and _site/index.html
        # (README, "The index and responsive images").
        index: site/\(indexName)

        """
    }

    static let pageName = "index.html"
    static let indexName = "derive-index.json"

    /// `text` escaped for a YAML double-quoted scalar: `\\` and `"`, and every character YAML
    /// would fold into a space or refuse there, or that would end a comment: the line breaks
    /// (LF, CR, U+0085, U+2028, U+2029: attack 15's M3, where a folder name `p\nregion: x\n#`
    /// wrote a top-level key), the other C0 and C1 controls, DEL, the byte order mark, and the
    /// noncharacters U+FFFE and U+FFFF, which libyaml refuses anywhere in a document ("control
    /// characters are not allowed": a folder so named made a manifest nothing could load).
    /// Everything else libyaml reads as it is (`InitYAMLEscapeTests` tries every scalar). The
    /// result has no line break, so it also fits in a comment, where it reads the same.
    static func yamlEscaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{85}": result += "\\N"
            case "\u{2028}": result += "\\L"
            case "\u{2029}": result += "\\P"
            case "\u{0}"..."\u{1F}", "\u{7F}"..."\u{9F}", "\u{FEFF}", "\u{FFFE}", "\u{FFFF}":
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// A page that shows every picture of the index (it reads derive-index.json when it loads),
    /// each over its placeholder: `derive serve` shows it as the website's index.
    static let page = """
        <!doctype html>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Derive preview</title>
        <link rel="icon" href="data:,">
        <style>body{font:16px system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em}
        figure{margin:0 0 2em}img{max-width:100%;height:auto;background-size:cover}</style>
        <h1>Derive preview</h1>
        <p>Written by <code>derive init</code> (Derive never changes it). Each picture is the index's
        <code>html</code>, with the <code>sizes</code> of this page's column, over its placeholder.</p>
        <main id="pictures"></main>
        <script>
        // The index's sizes assume a full-width image; here it is at most the 60em column.
        const sizes = "(max-width: 62em) calc(100vw - 2em), 60em";
        fetch("derive-index.json").then(r => r.json()).then(index => {
          const main = document.getElementById("pictures");
          for (const [source, entry] of Object.entries(index.sources || {})) {
            const picture = (entry.pictures || {}).responsive;
            if (!picture) continue;
            const figure = document.createElement("figure");
            figure.innerHTML = picture.html.split('sizes="' + picture.sizes + '"').join('sizes="' + sizes + '"');
            const img = figure.querySelector("img");
            if (img && entry.placeholder) img.style.backgroundImage = "url(" + entry.placeholder.src + ")";
            const caption = document.createElement("figcaption");
            caption.textContent = source;
            figure.append(caption);
            main.append(figure);
          }
        });
        </script>

        """

    /// Writes the preview page at `path` unless a file (or anything) is there; whether it did.
    /// Whether `path` is a regular file (not through a link) holding exactly the page init writes.
    static func holdsPage(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) == page.utf8.count else { return false }
        return FileManager.default.contents(atPath: path) == Data(page.utf8)
    }

    /// Nil when written, else why not (`thereAlready`, or the system's reason).
    static func writePage(_ path: String) -> String? {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return createWhole(path, bytes: Array(page.utf8))
    }

    static let thereAlready = "something is there already"

    /// Creates `path` holding `bytes`, never over anything there, and never as a part-written
    /// file: the bytes go to a hidden temporary file in the same folder, which `link` then names
    /// `path` (failing if anything is there). An `init` killed half-way left an empty
    /// derive.yaml that blocked every later run (attack round 25). Nil, or why it failed.
    static func createWhole(_ path: String, bytes: [UInt8]) -> String? {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = (folder.isEmpty ? "" : folder + "/") + ".\((path as NSString).lastPathComponent).\(getpid()).derive-tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { unlink(temporary) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        let writeError = errno
        close(fd)
        guard written else { return String(cString: strerror(writeError)) }
        guard link(temporary, path) == 0 else { return errno == EEXIST ? thereAlready : String(cString: strerror(errno)) }
        return nil
    }
}
