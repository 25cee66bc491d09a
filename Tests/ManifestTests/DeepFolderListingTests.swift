import Foundation
@testable import Manifest
import Confinement
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 20's M2: the source listing opened every folder by its full path, so the kernel walked
/// depth² names for a chain of folders (a no-op's system time grew ~6× per doubling of depth)
/// and a chain past PATH_MAX failed as "a folder Derive cannot read". Each folder is now opened
/// from its parent's descriptor: the listing is the one the full paths gave, at any depth.
@Suite(.ownThreads) struct DeepFolderListingTests {
    static func temporaryFolder() -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("derive-deep-\(UUID().uuidString)").path
        mkdir(folder, 0o755)
        return folder
    }

    /// Removes a tree of any depth (`rm` walks it by descriptors, as FileManager does not).
    static func removeTree(_ folder: String) {
        let remove = Process()
        remove.executableURL = URL(fileURLWithPath: "/bin/rm")
        remove.arguments = ["-rf", folder]
        try? remove.run()
        remove.waitUntilExit()
    }

    /// Makes a chain of `depth` folders named `name` below `folder`, and `file` at its bottom,
    /// each made from its parent's descriptor (a full path past PATH_MAX cannot be used).
    /// Returns the file's key.
    static func chain(in folder: String, depth: Int, name: String = "dd", file: String = "deep.jpg") throws -> String {
        var fd = open(folder, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        for _ in 0..<depth {
            guard mkdirat(fd, name, 0o755) == 0 || errno == EEXIST else { close(fd); throw POSIXError(.EIO) }
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY)
            close(fd)
            guard next >= 0 else { throw POSIXError(.EIO) }
            fd = next
        }
        let out = openat(fd, file, O_WRONLY | O_CREAT, 0o644)
        close(fd)
        guard out >= 0 else { throw POSIXError(.EIO) }
        _ = write(out, "x", 1)
        close(out)
        return String(repeating: name + "/", count: depth) + file
    }

    /// Below PATH_MAX every file is listed, however deep; past it, the first entry whose path the
    /// system cannot take is named as such (a folder that hides its files: a rule reading below
    /// it fails, its outputs are kept), and nothing below it is looked at.
    @Test func aChainPastPathMaxIsListedUpToTheLimitAndNamedThere() throws {
        let folder = Self.temporaryFolder()
        defer { Self.removeTree(folder) }
        let shallow = try Self.chain(in: folder, depth: 1_000, name: "d", file: "deep.jpg")
        #expect(folder.utf8.count + 1 + shallow.utf8.count < Int(PATH_MAX))
        let key = try Self.chain(in: folder, depth: 1_400)
        #expect(folder.utf8.count + 1 + key.utf8.count > Int(PATH_MAX))
        let listing = try #require(DiskObjectLister().entries(inFolder: folder, skipping: []))
        #expect(listing.keys == [shallow])
        let hiding = listing.others.filter { DiskObjectLister.hidesFiles($0.kind) }
        #expect(hiding.count == 1 && hiding.allSatisfy { $0.kind == DiskObjectLister.pathTooLong && key.hasPrefix($0.key + "/") },
                "\(hiding.map { "\($0.key.utf8.count) bytes: \($0.kind)" })")
        #expect(folder.utf8.count + 1 + (hiding.first?.key.utf8.count ?? 0) >= Int(PATH_MAX) - 1)
        #expect(listing.others.filter { $0.kind == "a folder" }.count == 1_000 + listing.others.filter { $0.key.hasPrefix("dd") }.count - 1)
    }

    /// Every kind of entry, at several depths, and a comb (a side folder at every level of a
    /// chain) wider than the folders the listing keeps open: the same listing as the full paths gave.
    /// With fewer folders kept open (none: every folder but the bucket's is walked to from it,
    /// one name at a time), the same again.
    @Test(arguments: [DiskObjectLister.defaultOpenFolders, 2, 0])
    func theListingIsTheOneFullPathsGave(openFolders: Int) throws {
        let folder = Self.temporaryFolder()
        defer { Self.removeTree(folder) }
        for level in 0..<3 {
            let base = folder + String(repeating: "/sub", count: level)
            try FileManager.default.createDirectory(atPath: base + "/empty", withIntermediateDirectories: true)
            for name in ["a.jpg", ".hidden.jpg", "b c.png"] { _ = FileManager.default.createFile(atPath: base + "/" + name, contents: Data("x".utf8)) }
            symlink(base + "/a.jpg", base + "/link-to-file.jpg")
            symlink(base + "/empty", base + "/link-to-folder")
            symlink(base + "/nothing", base + "/link-to-nothing.jpg")
            mkfifo(base + "/pipe.jpg", 0o644)
            let raw = Array(base.utf8) + Array("/bad-".utf8) + [0xFF, 0]
            let fd = raw.withUnsafeBufferPointer { buffer in buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) { open($0, O_WRONLY | O_CREAT, 0o644) } }
            if fd >= 0 { close(fd) }
        }
        try FileManager.default.createDirectory(atPath: folder + "/.derive/state", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder + "/.derive/state/x.jpg", contents: Data())
        try FileManager.default.createDirectory(atPath: folder + "/skipped/inner", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder + "/skipped/inner/s.jpg", contents: Data())
        // The comb: 100 levels (more than the 64 folders the listing keeps open), a side folder with a file at each.
        var base = folder + "/comb"
        for level in 0..<100 {
            try FileManager.default.createDirectory(atPath: base + "/side", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: base + "/side/f\(level).jpg", contents: Data())
            base += "/c"
        }
        let skipping = [folder + "/skipped"]
        let listed = try #require(DiskObjectLister(openFolders: openFolders).entries(inFolder: folder, skipping: skipping))
        let reference = try #require(Self.byFullPaths(folder, skipping: skipping))
        #expect(listed.keys == reference.keys)
        #expect(listed.others.map { $0.key + " " + $0.kind } == reference.others.map { $0.key + " " + $0.kind })
        #expect(listed.keys.contains("comb/" + String(repeating: "c/", count: 99) + "side/f99.jpg"))
    }

    /// lows-23: past the folders it keeps open, the listing opened a folder by its full path,
    /// following any link on the way. A folder swapped for a link to a folder outside the bucket
    /// between its listing and the opening of a folder found in it (the hook stands for a swap at
    /// that instant) is never followed: the folder is named as one Derive cannot read, and
    /// nothing outside the bucket is listed.
    @Test(arguments: [DiskObjectLister.defaultOpenFolders, 0])
    func aFolderSwappedForALinkIsNeverFollowed(openFolders: Int) throws {
        let folder = Self.temporaryFolder()
        defer { Self.removeTree(folder) }
        let bucket = folder + "/bucket", outside = folder + "/outside"
        try FileManager.default.createDirectory(atPath: bucket + "/a/b", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside + "/b", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: bucket + "/a/b/c.jpg", contents: Data("c".utf8))
        _ = FileManager.default.createFile(atPath: outside + "/b/secret.jpg", contents: Data("not the bucket's".utf8))
        let lister = DiskObjectLister(openFolders: openFolders) { key in
            guard key == "a/b" else { return }
            rename(bucket + "/a", folder + "/a-moved")
            symlink(outside, bucket + "/a")
        }
        let listing = try #require(lister.entries(inFolder: bucket, skipping: []))
        #expect(!listing.keys.contains { $0.contains("secret") }, "a link was followed: \(listing.keys)")
        if openFolders == 0 {
            // Walked to from the bucket's folder: the link stops the walk, and says so.
            #expect(listing.keys.isEmpty, "\(listing.keys)")
            #expect(listing.others.contains { $0.key == "a/b" && DiskObjectLister.hidesFiles($0.kind) }, "\(listing.others)")
        } else {
            // Opened from the folder already open: the folder the listing was in, wherever it went.
            #expect(listing.keys == ["a/b/c.jpg"], "\(listing.keys)")
        }
    }

    /// The listing as it was made before (each folder opened by its full path), for comparison.
    static func byFullPaths(_ folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        let root = URL(fileURLWithPath: folder).standardizedFileURL.path
        var info = stat()
        guard stat(root, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        let skipped = skipping.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var keys: [String] = []
        var others: [(key: String, kind: String)] = []
        var pending: [(path: String, key: String)] = [(root, "")]
        while let (path, prefix) = pending.popLast() {
            guard let directory = opendir(path) else {
                others.append((String(prefix.dropLast()), DiskObjectLister.unreadable(errno)))
                continue
            }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let (valid, name) = withUnsafeBytes(of: entry.pointee.d_name) { raw -> (Bool, String) in
                    let bytes = UnsafeRawBufferPointer(rebasing: raw[..<(raw.firstIndex(of: 0) ?? raw.endIndex)])
                    if let valid = String(validating: bytes, as: UTF8.self) { return (true, valid) }
                    return (false, String(decoding: bytes, as: UTF8.self))
                }
                if !sourceListingKeeps(name) { continue }
                if !valid {
                    let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
                    others.append((prefix + DiskObjectLister.escaped(bytes), DiskObjectLister.notUTF8))
                    continue
                }
                var type = entry.pointee.d_type
                let child = path + "/" + name
                if type == UInt8(DT_UNKNOWN) || type == UInt8(DT_LNK) {
                    var childInfo = stat()
                    let followed = type == UInt8(DT_LNK) ? stat(child, &childInfo) : lstat(child, &childInfo)
                    guard followed == 0 else {
                        if type == UInt8(DT_LNK) { others.append((prefix + name, DiskObjectLister.linkToNothing)) }
                        continue
                    }
                    let mode = childInfo.st_mode & S_IFMT
                    if mode == S_IFREG { type = UInt8(DT_REG) } else if mode == S_IFDIR, type != UInt8(DT_LNK) { type = UInt8(DT_DIR) } else {
                        others.append((prefix + name, mode == S_IFDIR ? DiskObjectLister.linkToFolder : DiskObjectLister.kind(mode)))
                        continue
                    }
                }
                if type == UInt8(DT_DIR) {
                    if !skipped.contains(where: { PathKey.same($0, child) }) { pending.append((child, prefix + name + "/")) }
                    others.append((prefix + name, "a folder"))
                } else if type == UInt8(DT_REG) {
                    keys.append(prefix + name)
                } else {
                    others.append((prefix + name, DiskObjectLister.kind(type == UInt8(DT_FIFO) ? S_IFIFO : type == UInt8(DT_SOCK) ? S_IFSOCK : S_IFCHR)))
                }
            }
        }
        return (keys.sortedByBytes(), others.sorted { PathKey.ordered($0.key, $1.key) })
    }
}
