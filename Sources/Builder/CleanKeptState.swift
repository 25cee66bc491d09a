import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why `derive clean` keeps an entry of the state folder (round 22's V5 trivia: the message
/// ended "the lines above say why" when no line above said why). Each entry is named with its
/// reason: one a line above already names (serve's files it kept, with why) says so.
enum CleanKeptState {
    /// `<folder> is kept: it still holds A (why), B (why) …`, for the entries `names` left in
    /// `folder` (shown as `display`); `above`: the lines clean printed before this one.
    static func message(folder: String, display: String, names: [String], above: [String]) -> String {
        let sorted = names.sorted()
        // Entries of one reason together (a database and its journals), in name order.
        var groups: [(reason: String, names: [String])] = []
        for name in sorted.prefix(5) {
            let why = reason(name, in: folder, above: above)
            if let index = groups.firstIndex(where: { $0.reason == why }) { groups[index].names.append(name) } else { groups.append((why, [name])) }
        }
        let shown = groups.map { $0.names.joined(separator: ", ") + " (\($0.reason))" }
        let more = sorted.count > 5 ? " and \(sorted.count - 5) more" : ""
        return "\(display) is kept: it still holds " + shown.joined(separator: ", ") + more
            + "; clean removes only the build state's own files there, and the folder once it is empty"
    }

    /// An empty state folder Derive did not make (`StateFolderMade`): the user's, kept (attack 37b's F9).
    static func notMadeMessage(display: String) -> String {
        "\(display) is kept: Derive did not make it (it was there before a build put its state in it, or it is a link); "
            + "clean removes only the folders Derive made, once empty: remove it yourself if it is yours to remove"
    }

    static func reason(_ name: String, in folder: String, above: [String]) -> String {
        if above.contains(where: { $0.contains(folder + "/" + name) }) { return "named above, with why" }
        var info = stat()
        let kind = lstat(folder + "/" + name, &info) == 0 ? info.st_mode & S_IFMT : 0
        if kind == S_IFLNK { return "a symbolic link, which clean never follows: nothing where it points was touched" }
        if name == StateFiles.objectMetadata || StateFiles.objectMetadataJournals.contains(name) {
            return "derive serve's headers of the objects uploaded through it, which stay in their buckets after clean"
        }
        if name == StateFiles.buildRenders {
            return kind == S_IFDIR ? "it holds entries that are not renders a build kept (only those are removed)"
                                   : "not the folder a build keeps its renders in"
        }
        if StateFiles.movedAsidePrefixes.contains(where: { name.hasPrefix($0) }) {
            return "a build state Derive moved aside (corrupt, or another manifest's), kept for you to look at: delete it when it is of no more use"
        }
        if [StateFiles.serveCache, StateFiles.serveUploads, StateFiles.serveAppendable, StateFiles.serveLock].contains(name) {
            // A serve running all along: the line above says its files are kept while it runs
            // (attack 13b's finding 9: this line called them written while clean ran).
            if above.contains(where: { $0.contains(folder + "/" + StateFiles.serveLock) && $0.contains(ServeStateCleanup.serveRunning) }) {
                return "named above, with why"
            }
            return "derive serve's, written while clean ran (a serve started?): run clean again"
        }
        if StateFiles.isReserved(name) { return "a build state file written while clean ran (a build started?): run clean again" }
        switch kind {
        case S_IFDIR: return "a folder Derive does not write there"
        case S_IFREG: return "a file Derive does not write there"
        case 0: return "gone since clean looked"
        default: return "a FIFO, socket or device, which Derive does not write there"
        }
    }
}
