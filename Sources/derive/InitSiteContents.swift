import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What an existing output folder already holds before `derive init` names it a public-read
/// bucket: every entry that is not a folder (files, links, FIFOs), found without following links
/// below it. Such files would be served and listed to anyone (attack 38a's M2), so init refuses.
struct InitSiteContents {
    /// The first entries found, by path, as `folder/…`.
    var shown: [String] = []
    /// How many entries there are in all (at most `limit`: more are not looked for).
    var count = 0

    /// The non-folder entries below `folder` (the folder itself may be a link, followed once),
    /// but those `isDerives` (the page an earlier init wrote). `shownCount` are named; counting
    /// stops at `limit`.
    static func of(_ folder: String, shownCount: Int = 5, limit: Int = 100_000, isDerives: (String) -> Bool = { _ in false }) -> InitSiteContents {
        var found = InitSiteContents()
        var all: [String] = []
        var pending = [folder]
        while let current = pending.popLast(), found.count < limit {
            guard let directory = opendir(current) else { continue }
            defer { closedir(directory) }
            while let entry = readdir(directory), found.count < limit {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard name != ".", name != ".." else { continue }
                let path = current + "/" + name
                var info = stat()
                if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                    pending.append(path)
                } else if !isDerives(path) {
                    found.count += 1
                    all.append(path)
                }
            }
        }
        found.shown = Array(all.sorted().prefix(shownCount))
        return found
    }

    /// The refusal, naming what is there and how to go on.
    func refusal(_ folder: String) -> String {
        let more = count > shown.count ? " and \(count - shown.count)\(count >= 100_000 ? "+" : "") more" : ""
        return "\(folder) already holds files Derive did not write: \(shown.joined(separator: ", "))\(more). derive init makes \(folder) a public-read bucket, "
            + "which derive serve lists and gives to anyone, so they would be published. Move them out of \(folder) (empty folders may stay), "
            + "then run derive init again; or run derive init in another folder, or write the manifest yourself to publish them on purpose"
    }
}
