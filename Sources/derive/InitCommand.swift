import ArgumentParser
import Foundation
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

    func run() throws {
        let folder = dir
        let manifest = "derive.yaml"
        var info = stat()
        if lstat(manifest, &info) == 0 {
            throw CLIError("\(manifest) already exists here; derive init never overwrites a manifest (edit it, or move it away first)")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CLIError("\(folder) is not a folder; name the folder of images, e.g. derive init photos")
        }
        // The manifest, its lock and state live here: the images' folder may not be this one or hold it.
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).resolvingSymlinksInPath().path
        let images = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        if here == images || here.hasPrefix(images.hasSuffix("/") ? images : images + "/") {
            throw CLIError("\(folder) holds the current folder, where derive.yaml, its lock and state go; a bucket may not hold them. "
                           + "Run derive init in the folder above, naming this one (e.g. cd .. && derive init \((images as NSString).lastPathComponent))")
        }
        if images == here + "/" + StarterManifest.outputFolder {
            throw CLIError("\(folder) is where derive init puts the outputs; keep the images in another folder")
        }
        let found = StarterManifest.scan(folder)
        guard !found.isEmpty else {
            throw CLIError("found no images in \(folder) (looked for \(StarterManifest.extensions.joined(separator: ", ")) files, "
                           + "outside hidden folders); add some and run derive init again")
        }
        let text = StarterManifest.text(found, images: folder)
        // O_EXCL: a manifest created since the check above is not replaced either.
        let fd = open(manifest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CLIError("cannot create \(manifest): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw CLIError("cannot write \(manifest): \(String(cString: strerror(errno)))")
        }
        let total = found.values.reduce(0, +)
        print("Wrote \(manifest) for \(total) image\(total == 1 ? "" : "s") in \(folder). Next: derive plan, then derive build.")
    }
}

/// The manifest `derive init` writes: the images' folder as a private source bucket, `_site/`
/// beside the manifest as the public output bucket, two styles (one in each form), two rules.
enum StarterManifest {
    static let extensions = ["jpg", "jpeg", "png", "webp", "gif", "heic", "heif", "avif", "tif", "tiff", "bmp"]
    static let outputFolder = "_site"
    /// Files looked at before the scan stops (a home folder is not a photo folder).
    static let maxFiles = 100_000

    /// Image extensions as written (`JPG` and `jpg` are different globs) → count.
    static func scan(_ folder: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        guard let walker = FileManager.default.enumerator(at: URL(fileURLWithPath: folder), includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey],
                                                          options: [.skipsHiddenFiles]) else { return counts }
        var seen = 0
        for case let url as URL in walker {
            seen += 1
            if seen > maxFiles { break }
            let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
            guard values?.isRegularFile == true, values?.isSymbolicLink != true else { continue }
            let ext = url.pathExtension
            if extensions.contains(ext.lowercased()) { counts[ext, default: 0] += 1 }
        }
        return counts
    }

    static func text(_ found: [String: Int], images: String) -> String {
        // A path YAML reads back as written (quoted, with quotes and backslashes escaped).
        let path = "\"" + images.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        let exts = found.keys.sorted()
        let glob = exts.count == 1 ? "*.\(exts[0])" : "*.{\(exts.joined(separator: ","))}"
        let summary = exts.map { "\(found[$0]!) \($0)" }.joined(separator: ", ")
        return """
        # Derive manifest written by `derive init` for the images in \(images) (\(summary)).
        # Next: `derive validate` checks it, `derive plan` shows what a build would do, `derive build`
        # renders, `derive serve` previews. Editors can complete and check it with `derive schema`.
        version: 1

        buckets:
          # The images are the sources. Private: `derive serve` shows them only to signed requests.
          images:
            path: \(path)
            acl: private
          # Where the derivatives go, beside this file (the first build creates the folder).
          # Public: anyone may read them.
          site:
            path: \(outputFolder)
            acl: public-read

        # Named recipes in the OSS image-processing language (README, "The process language"):
        # a string, or a list of actions with plain values (Derive writes the OSS string).
        styles:
          thumb: image/resize,m_fill,w_320,h_320/quality,q_80
          large:
            - resize: {w: 1600}
            - quality: {q: 82}

        derivatives:
          # A square thumbnail and a large copy of every image, in the same folders as the originals.
          - name: thumbnails
            from: images/**/\(glob)
            styles: [thumb, large]
            to: site/{dir}/{name}.{style}.{ext}
            acl: public-read              # the sources are private: publishing their derivatives is deliberate
          # WebP at three widths, for srcset.
          - name: responsive
            from: images/**/\(glob)
            process: image/resize,w_{w}/format,webp
            matrix:
              w: [480, 960, 1600]
            to: site/{dir}/{name}-{w}.webp
            acl: public-read

        # Every output by source, for site generators (README, "derive build").
        index: site/derive-index.json

        """
    }
}
