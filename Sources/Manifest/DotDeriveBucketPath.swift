import Confinement
import Foundation

extension ControlFiles {
    /// No bucket's folder has a part named `.derive`, by its declared path or by where the file
    /// system puts it (a link to `../b/.derive`), as no `to:` may (attack 48c's F3: `out/.derive`
    /// and `.derive/x` validated, and the build wrote outputs where Derive keeps build states and
    /// serve answers nothing; `.derive/x` is also the state folder of any `x.yaml` beside). A
    /// folder this manifest's own folder lies in is the user's choice, not judged. Asked after
    /// every other check of the bucket's line: a bucket inside another manifest's build state is
    /// said as that, naming the manifest, and not again.
    func validateDotDeriveBucketPaths(into diagnostics: inout Diagnostics) {
        let name = ProjectMarkers.stateFolderName
        let ownFolder = FileSystemPath(manifest: (manifest.file as NSString).deletingLastPathComponent).real
        for bucket in manifest.buckets {
            let location = bucket.pathLocation
            guard !diagnostics.errors.contains(where: { $0.file == location.file && $0.line == location.line && $0.column == location.column }) else { continue }
            let declared = bucket.declaredPath.split(separator: "/").contains { $0 == name }
            let real = FileSystemPath(manifest: bucket.path).real
            let shared = real == ownFolder || real.hasPrefix(ownFolder == "/" ? "/" : ownFolder + "/")
                ? ownFolder : Self.commonFolder(real, ownFolder)
            let resolved = real.dropFirst(shared.count).split(separator: "/").contains { $0 == name }
            guard declared || resolved else { continue }
            let through = declared ? "" : " (its folder is \(display(real)))"
            diagnostics.error(location,
                              "bucket '\(bucket.name)' path '\(bucket.declaredPath)'\(through) has a part named '\(name)'; Derive keeps build states in folders named \(name) (`\(name)/x` is the state folder of any `x.yaml` beside it), and serve answers nothing in them, so its outputs would be built where no one can get them",
                              hint: "give bucket '\(bucket.name)' a folder of another name")
        }
    }

    /// The deepest folder holding both absolute paths `a` and `b`.
    static func commonFolder(_ a: String, _ b: String) -> String {
        let left = a.split(separator: "/"), right = b.split(separator: "/")
        var count = 0
        while count < left.count, count < right.count, left[count] == right[count] { count += 1 }
        return "/" + left.prefix(count).joined(separator: "/")
    }
}
