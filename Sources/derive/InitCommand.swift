import ArgumentParser
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented starter derive.yaml here for the images in DIR (never over an existing one).",
        discussion: "The manifest goes in the current folder and DIR becomes its source bucket: a bucket may not hold its own manifest, lock or state, so DIR is a folder below (or beside) this one."
    )

    @Argument(help: "The folder of images, below the current folder (default: images).")
    var dir: String = "images"

    /// Whether a command-line argument's bytes are not UTF-8.
    static var argumentsHoldNonUTF8: Bool {
        (0..<Int(CommandLine.argc)).contains { index in CommandLine.unsafeArgv[index].map { String(validatingCString: $0) == nil } ?? false }
    }

    func run() throws {
        let folder = dir
        let manifest = "derive.yaml"
        var info = stat()
        if lstat(manifest, &info) == 0 {
            throw CLIError("\(manifest) already exists here; derive init never overwrites a manifest (edit it, or move it away first)")
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
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            // The argument's bytes were not UTF-8: Swift shows them as U+FFFD, and no such folder is there.
            if folder.unicodeScalars.contains("\u{FFFD}"), Self.argumentsHoldNonUTF8 {
                throw CLIError("\(folder) (as UTF-8 shows it) cannot be named in a manifest: the folder's name is not UTF-8, and derive.yaml is UTF-8 text. "
                               + "Rename the folder to a UTF-8 name (e.g. convmv -f latin1 -t utf-8 --notest on it), then run derive init again")
            }
            throw CLIError("\(folder) is not a folder; name the folder of images, e.g. derive init photos")
        }
        // The manifest, its lock and state live here: the images' folder may not be this one or hold it.
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).resolvingSymlinksInPath().path
        let images = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        if here == images || here.hasPrefix(images.hasSuffix("/") ? images : images + "/") {
            throw CLIError("\(folder) holds the current folder, where derive.yaml, its lock and state go; a bucket may not hold them. "
                           + "Run derive init in the folder that holds \(folder), naming it (cd \((images as NSString).deletingLastPathComponent) && derive init \((images as NSString).lastPathComponent))")
        }
        // The outputs' folder (through a link too) may neither be the images' folder nor hold it:
        // the two buckets would share files and the manifest would not validate.
        let outputs = URL(fileURLWithPath: here + "/" + StarterManifest.outputFolder).resolvingSymlinksInPath().path
        if images == outputs || images.hasPrefix(outputs + "/") {
            let what = images == outputs ? "is" : "is inside \(StarterManifest.outputFolder),"
            throw CLIError("\(folder) \(what) where derive init puts the outputs; keep the images in another folder")
        }
        // A link to a folder is followed here, once: its images are looked for where it leads, and
        // the manifest names the link, which the build reads the bucket through (links inside
        // the folder are not followed, as the build does not).
        var link = info
        let isLink = lstat(folder, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK
        let found = StarterManifest.scan(isLink ? images : folder)
        guard !found.isEmpty else {
            throw CLIError("found no images in \(folder)\(isLink ? " (a symbolic link to \(images), followed)" : "") (looked for \(StarterManifest.extensions.joined(separator: ", ")) files, "
                           + "outside hidden folders); add some and run derive init again")
        }
        let text = StarterManifest.text(found, images: folder)
        // Whole or not at all: a manifest created since the check above is not replaced either.
        if let failure = StarterManifest.createWhole(manifest, bytes: Array(text.utf8)) {
            throw CLIError("cannot create \(manifest): \(failure)")
        }
        let total = found.total
        // The page the website shows: written once, never over a file there.
        let page = StarterManifest.outputFolder + "/" + StarterManifest.pageName
        let pageWritten = StarterManifest.writePage(page)
        let pageNote = pageWritten ? " and \(page)" : ""
        let linkNote = isLink ? " (a symbolic link to \(images))" : ""
        print("Wrote \(manifest)\(pageNote) for \(total) image\(total == 1 ? "" : "s") in \(folder)\(linkNote). "
              + (pageWritten ? "" : "\(page) was not written: something is there already (a file, a folder or a link), left as it is. ")
              + "Next: derive build, then derive serve and open the Website address it prints.")
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
        var isEmpty: Bool { counts.isEmpty }
        var total: Int { counts.values.reduce(0, +) }
    }

    static func scan(_ folder: String) -> Found {
        var found = Found()
        guard let walker = FileManager.default.enumerator(at: URL(fileURLWithPath: folder), includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey],
                                                          options: [.skipsHiddenFiles]) else { return found }
        var seen = 0
        var stems: Set<String> = []
        for case let url as URL in walker {
            seen += 1
            if seen > maxFiles { break }
            let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
            guard values?.isRegularFile == true, values?.isSymbolicLink != true else { continue }
            let ext = url.pathExtension
            guard extensions.contains(ext.lowercased()) else { continue }
            found.counts[ext, default: 0] += 1
            // Case-folded: `a.jpg` and `A.png` collide on a case-insensitive disk.
            if !stems.insert(url.deletingPathExtension().path.lowercased()).inserted { found.stemsCollide = true }
        }
        return found
    }

    static func text(_ found: Found, images: String) -> String {
        // A path YAML reads back as written; the comment shows the same escapes, on one line.
        let path = "\"" + yamlEscaped(images) + "\""
        let exts = found.counts.keys.sorted()
        // Every extension Derive reads, lower and upper case, not only those found: a camera's
        // `IMG_2000.JPG` or a `.webp` added later must not be skipped while every command says
        // "up to date" (attack 20's I1).
        let glob = Self.sourceGlob
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
        # a string, or a list of actions with plain values (Derive writes the OSS string).
        styles:
          thumb: image/resize,m_fill,w_320,h_320/quality,q_80/format,webp
          large:
            - resize: {w: 1600}
            - format: webp

        derivatives:
          # A square thumbnail and a large copy of every image, as WebP (browsers show it, whatever
          # the source's format). {hash} names each file by its bytes: a changed file gets a new
          # name, so it can be cached for ever; the old one is deleted.\(namedNote)
          - name: thumbnails
            from: images/**/\(glob)
            styles: [thumb, large]
            to: site/\(named).{style}.{hash}.webp
            acl: public-read              # the sources are private: publishing their derivatives is deliberate
          # A <picture> per image: AVIF and WebP <source>s and a JPEG <img> at three widths (a
          # narrower image is drawn once, at its own width), and a tiny blurred placeholder.
          # `derive html images/KEY` prints it; the index below holds it for every image.
          - name: responsive
            from: images/**/\(glob)
            process: image/resize,w_{w}/format,{f}
            matrix:
              w: [480, 960, 1600]
              f: [avif, webp, jpg]
            to: site/\(named)-{w}.{hash}.{f}
            acl: public-read
            placeholder: true

        # Every output by source, with each picture's HTML, for site generators and _site/index.html
        # (README, "The index and responsive images").
        index: site/derive-index.json

        """
    }

    static let pageName = "index.html"

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
    static func writePage(_ path: String) -> Bool {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return createWhole(path, bytes: Array(page.utf8)) == nil
    }

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
        guard link(temporary, path) == 0 else { return errno == EEXIST ? "something is there already" : String(cString: strerror(errno)) }
        return nil
    }
}
