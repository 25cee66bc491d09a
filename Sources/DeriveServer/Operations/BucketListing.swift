import Confinement
import Foundation

/// One page of a bucket's keys in byte order, from the folder tree itself.
///
/// The walk reads folders in key order (a folder sorts as its name plus `/`, so a depth-first
/// walk yields keys in byte order) and stops at the first item past the page. Folders whose
/// keys all lie before the marker, or outside the prefix, are never opened; a folder whose
/// keys all roll up into one common prefix is opened only until one listable object proves the
/// prefix non-empty. The cost of a page is the entries of the folders on its way, not the tree.
///
/// A page spends at most `budget` units: one per folder entry read (files and folders, counted as
/// they are read) and one more per key it examines but may not show (a private key an anonymous
/// caller walks past), so a huge folder, a deep tree or a run of hidden keys cannot make one
/// request read or check everything. When the budget runs out the page ends truncated at
/// `resume`, the last key it examined (shown or hidden), or the end of the last folder it walked
/// whole: every key up to it was listed or is hidden, so the next page starts after it. A page
/// that examined no key and finished no folder before the budget ran out cannot make progress
/// and says so (`budgetExhausted`). A cancelled walk (its client left) stops at the next entry.
///
/// Only regular files reached without links are listed: links, FIFOs and devices are skipped,
/// and so are names that are not keys (invalid UTF-8, control bytes) and Derive's temporary files.
struct BucketListing {
    let folder: ConfinedFolder
    let prefix: [UInt8]
    let delimiter: [UInt8]
    /// Items must sort after this (ListObjects' marker, V2's start-after or token).
    let marker: [UInt8]
    let maxKeys: Int
    /// Whether the caller may see a key (anonymous callers see public objects only).
    let visible: (ObjectKey) -> Bool
    /// Most units (entries read, hidden keys examined) one page may spend.
    var budget: Int = BucketListing.defaultBudget
    /// Whether the walk should stop now (its client disconnected).
    var cancelled: () -> Bool = { false }

    static let defaultBudget = 100_000

    /// Entries read so far (shared by the walk's recursive calls).
    final class Counter {
        var read = 0
        var exhausted = false
        var cancelled = false
        /// The greatest key examined so far (listed or hidden); the walk goes in key order.
        var examined: [UInt8]?
        /// Whether a hidden key was walked past since the last item.
        var hiddenSinceItem = false
    }
    private let counter = Counter()

    enum Item {
        case object(ObjectKey, FileStatus)
        case commonPrefix([UInt8])

        var bytes: [UInt8] {
            switch self {
            case .object(let key, _): return key.bytes
            case .commonPrefix(let bytes): return bytes
            }
        }
    }

    struct Page {
        var items: [Item] = []
        var truncated = false
        /// The budget ran out before any key was examined.
        var budgetExhausted = false
        /// Units spent for this page (entries read and hidden keys examined).
        var entriesRead = 0
        /// Where the next page starts when truncated: the last item, or (the budget ran out past
        /// hidden keys) the last key examined, which the caller may not see, or the end of a
        /// folder walked whole (not a key at all).
        var resume: [UInt8]?
        /// Its client went away; the page is incomplete.
        var cancelled = false

        /// Whether `resume` names an item of this page (else a key the page does not show).
        var resumesAtLastItem: Bool { resume != nil && resume == items.last?.bytes }
    }

    func list() -> Page {
        var page = Page()
        guard maxKeys > 0 else {
            // OSS answers max-keys=0 with no items; whether more exist is not asked.
            return page
        }
        walk([], &page)
        page.entriesRead = counter.read
        page.cancelled = counter.cancelled
        if counter.exhausted, !counter.cancelled {
            if let last = page.items.last, !counter.hiddenSinceItem {
                // Nothing hidden after the last item: resume there (a plain key for ListObjects).
                page.truncated = true
                page.resume = last.bytes
            } else if let examined = counter.examined {
                page.truncated = true
                page.resume = examined
            } else {
                page.budgetExhausted = true
            }
        } else if page.truncated {
            page.resume = page.items.last?.bytes
        }
        return page
    }

    private static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }

    /// A byte no key holds (never in UTF-8): `folder/` + `end` sorts after every key below the
    /// folder and before its next sibling. Such a position only travels sealed (`ListingTokens`).
    static let end: UInt8 = 0xFF

    /// The common prefix every key starting with `path` rolls up to, if the delimiter occurs
    /// after the listing's prefix within `path`.
    private func rollUp(_ path: [UInt8]) -> [UInt8]? {
        guard !delimiter.isEmpty, path.starts(with: prefix) else { return nil }
        var index = prefix.count
        while index + delimiter.count <= path.count {
            if path[index..<(index + delimiter.count)].elementsEqual(delimiter) { return Array(path[..<(index + delimiter.count)]) }
            index += 1
        }
        return nil
    }

    /// Counts one unit; false once the budget is spent or the walk was cancelled.
    private func spend() -> Bool {
        if cancelled() { counter.cancelled = true; counter.exhausted = true; return false }
        guard counter.read < budget else { counter.exhausted = true; return false }
        counter.read += 1
        return true
    }

    /// A key the caller may not see, walked past: charged one unit, and the next page may start
    /// after it. False once the budget is spent (the key then counts as not examined).
    private func skipHidden(_ path: [UInt8]) -> Bool {
        guard spend() else { return false }
        counter.examined = path
        counter.hiddenSinceItem = true
        return true
    }

    /// The folder's entries in key order; nil when the budget ran out while reading it.
    private func sortedEntries(_ folderPath: [UInt8]) -> [(bytes: [UInt8], entry: ConfinedFolder.ListedEntry)]? {
        let key = folderPath.last == UInt8(ascii: "/") ? Array(folderPath.dropLast()) : folderPath
        var entries: [ConfinedFolder.ListedEntry] = []
        _ = folder.forEachEntry(in: key) { entry in
            guard spend() else { return false }
            // A version control folder or `.derive` is never walked nor listed (`ObjectKey.isUnserved`).
            if !ObjectKey.isUnservedName(entry.name) { entries.append(entry) }
            return true
        }
        if counter.exhausted { return nil }
        return entries.map { entry in (folderPath + entry.name + (entry.isFolder ? [UInt8(ascii: "/")] : []), entry) }
            .sorted { Self.less($0.bytes, $1.bytes) }
    }

    /// Adds an item; false once the page is full (the item then only marks it truncated).
    private func emit(_ item: Item, _ page: inout Page) -> Bool {
        if page.items.count == maxKeys { page.truncated = true; return false }
        page.items.append(item)
        counter.examined = item.bytes
        counter.hiddenSinceItem = false
        return true
    }

    private func listableKey(_ path: [UInt8]) -> ObjectKey? {
        guard let key = try? ObjectKey(bytes: path), !ObjectService.isNeverObject(key) else { return nil }
        return key
    }

    /// Walks the folder at `folderPath` (empty or ending in `/`); false once the page is full.
    @discardableResult
    private func walk(_ folderPath: [UInt8], _ page: inout Page) -> Bool {
        guard let entries = sortedEntries(folderPath) else { return false }
        for (path, entry) in entries {
            if entry.isFolder {
                guard path.starts(with: prefix) || prefix.starts(with: path) else { continue }
                // Every key below sorts before the marker: skip the folder unopened (also when the
                // marker is the end of this very folder, see `walk`).
                if Self.less(path, marker), !marker.starts(with: path) || marker.starts(with: path + [Self.end]) { continue }
                if let common = rollUp(path) {
                    guard Self.less(marker, common), page.items.last?.bytes != common else { continue }
                    let found = containsListable(path)
                    if counter.exhausted { return false }
                    if found { guard emit(.commonPrefix(common), &page) else { return false } }
                    continue
                }
                guard walk(path, &page) else { return false }
                // Every key below was listed or walked past: a page that runs out of budget later
                // resumes after the whole folder, without reading it again.
                counter.examined = path + [Self.end]
            } else {
                guard path.starts(with: prefix), let key = listableKey(path), let status = entry.status else { continue }
                if let common = rollUp(path) {
                    guard Self.less(marker, common), Self.less(marker, path), page.items.last?.bytes != common else { continue }
                    guard visible(key) else {
                        // Charged, but not a place to resume: a marker inside the prefix would
                        // hide the whole prefix from the next page.
                        guard spend() else { return false }
                        continue
                    }
                    guard emit(.commonPrefix(common), &page) else { return false }
                    continue
                }
                guard Self.less(marker, path) else { continue }
                guard visible(key) else {
                    guard skipHidden(path) else { return false }
                    continue
                }
                guard emit(.object(key, status), &page) else { return false }
            }
        }
        return true
    }

    /// Whether the folder holds a key the caller may see: files first, in the file system's
    /// order, stopping at the first; then the subfolders.
    private func containsListable(_ folderPath: [UInt8]) -> Bool {
        let key = Array(folderPath.dropLast())
        var folders: [[UInt8]] = []
        var found = false
        folder.forEachEntry(in: key) { entry in
            guard spend() else { return false }
            let path = folderPath + entry.name
            if entry.isFolder {
                if !ObjectKey.isUnservedName(entry.name) { folders.append(path + [UInt8(ascii: "/")]) }
            } else if let key = listableKey(path), visible(key) {
                found = true
                return false
            }
            return true
        }
        return found || (!counter.exhausted && folders.contains { !counter.exhausted && containsListable($0) })
    }
}
