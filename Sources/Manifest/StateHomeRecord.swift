import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Derive's own per-user records met outside the state home (attack 52b's 4): the secret that
/// seals a build state (`states/<sha>`), a lock's provenance (`<sha>.lock`), the folders made for
/// a state (`<sha>.folders`), the registry of built projects and its mark, the reports' secret.
/// Serve hid them only by the state home's path, so a hard link (`cp -al`, `rsync --link-dest`),
/// a copy (`cp -a state/derive pub/.st/`) or another state home inside a public bucket handed
/// anyone the secret, with which they can forge records that make a build delete or overwrite files.
///
/// Known by what they are: a file whose device and inode are a current token's, or whose first
/// bytes are a token's as `StateFolderTrust.writeToken`'s callers write them. Asked only of the
/// file a request names or a listing returns (never of every file of a scan: reading each file's
/// head made a listing test 15 times slower), the verdict kept by device, inode, size and times.
public enum StateHomeRecord {
    /// A token file is at most this big (`StateFolderTrust.maxTokenBytes`): a bigger file is none.
    static let maxRecordBytes: Int64 = 1 << 20
    /// The shortest record's first bytes (`derive-projects 2\n`): a smaller file is none, and is not read.
    static let minRecordBytes: Int64 = 18
    /// Bytes read of a file at most: every signature below fits.
    static let headBytes = 160

    /// Whether `head`, a file's first bytes, starts as one of the token records Derive writes:
    /// `secret <hex>` then `state "` (`StateBinding`) or `report folders` (`ReportSeal`),
    /// build-17's `token <hex>`, `lock <hex>` or `not <hex>` then `path "` (`LockProvenance`),
    /// `made DEVICE INODE BIRTH "` (`StateFolderMade`), `derive-projects 1|2` (`ProjectRegistry`),
    /// `derive-takeovers 1` (`TakeoverNotes`)
    /// and the registry's `projects.incomplete` mark.
    /// Compared once normalised (`normalised`): a CRLF copy, a BOM or leading blank lines still match.
    public static func matches(_ head: [UInt8]) -> Bool {
        let text = Substring(String(decoding: normalised(head), as: UTF8.self))
        /// `prefix`, at least 32 lower-case hex digits, then `next`.
        func hexThen(_ prefix: String, _ next: [String]) -> Bool {
            guard text.hasPrefix(prefix) else { return false }
            let rest = text.utf8.dropFirst(prefix.utf8.count)
            let digits = rest.prefix { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
            guard digits.count >= 32 else { return false }
            let after = Substring(rest.dropFirst(digits.count))
            return next.contains { after.hasPrefix($0) }
        }
        if hexThen("secret ", ["\nstate \"", "\nreport folders\n"]) || hexThen("token ", ["\n"]) || hexThen("lock ", ["\npath \""])
            || hexThen("not ", ["\npath \""]) {
            return true
        }
        if text.hasPrefix("derive-projects 1\n") || text.hasPrefix("derive-projects 2\n") || text.hasPrefix("derive-takeovers 1\n")
            || text.hasPrefix("derive: the registry of built projects may lack a project") {
            return true
        }
        // `made DEVICE INODE BIRTH "PATH"`
        let fields = text.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
        func number(_ field: Substring, signed: Bool = false) -> Bool {
            let digits = signed && field.hasPrefix("-") ? field.dropFirst() : field
            return !digits.isEmpty && digits.utf8.allSatisfy { (0x30...0x39).contains($0) }
        }
        return fields.count == 5 && fields[0] == "made" && number(fields[1]) && number(fields[2]) && number(fields[3], signed: true)
            && fields[4].hasPrefix("\"")
    }

    /// `head` as a record's writer wrote it, undoing what an editor, a sync or git does to a text
    /// file (attack 53b's 2: a CRLF or BOM copy of a secret was answered whole, as the first bytes
    /// were compared literally): a UTF-8 BOM and leading blank lines, spaces and tabs dropped, each
    /// CR before a LF dropped. A leading comment line or a compressed copy is not undone (README).
    static func normalised(_ head: [UInt8]) -> [UInt8] {
        var bytes = head[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        bytes = bytes.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for (index, byte) in zip(bytes.indices, bytes) {
            if byte == 0x0D, bytes.index(after: index) < bytes.endIndex, bytes[bytes.index(after: index)] == 0x0A { continue }
            out.append(byte)
        }
        return out
    }

    /// Whether the file at `path` (no link followed) is one of Derive's per-user records: a
    /// current token's very file, or a regular file of a token's size starting as one does.
    /// `tokens`: `currentTokens()`, when the caller asks of many files.
    public static func isRecord(_ path: String, tokens: Set<[UInt64]>? = nil) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        if (tokens ?? currentTokens()).contains([UInt64(info.st_dev), UInt64(info.st_ino)]) { return true }
        let size = Int64(info.st_size)
        guard size >= minRecordBytes, size <= maxRecordBytes else { return false }
        let stamp = [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), size,
                     Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        if let known = verdicts.withLock({ $0[stamp] }) { return known }
        let verdict = headMatches(path)
        // Kept only once its change time is two seconds old: a file rewritten within one clock
        // tick keeps its times (git's "racily clean"), so a fresh verdict may be stale.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if Int64(now.tv_sec) - Int64(info.st_ctim.tv_sec) >= 2 {
            verdicts.withLock { cache in
                if cache.count >= maxVerdicts { cache.removeAll() }
                cache[stamp] = verdict
            }
        }
        return verdict
    }

    /// Verdicts kept at most (all forgotten when full).
    static let maxVerdicts = 65_536
    private static let verdicts = LockedBox<[[Int64]: Bool]>([:])

    /// The first `headBytes` of the regular file at `path` (opened without following a link or
    /// blocking) start as a record does.
    static func headMatches(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        var buffer = [UInt8](repeating: 0, count: headBytes)
        var count = 0
        while count < headBytes {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + count, headBytes - count, off_t(count)) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { break }
            count += got
        }
        return matches(Array(buffer[..<count]))
    }

    /// Device and inode of each regular file in the folder of tokens now, listed again only when
    /// the folder's identity or times changed (a token is written by a rename into it).
    static func currentTokens() -> Set<[UInt64]> {
        guard let folder = StateHome.tokenFolder() else { return [] }
        var info = stat()
        guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return [] }
        let stamp = [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), Int64(info.st_mtim.tv_sec),
                     Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        if let known = tokens.withLock({ $0 }), known.folder == folder, known.stamp == stamp { return known.identities }
        var found: Set<[UInt64]> = []
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0, let directory = fdopendir(descriptor) else {
            if descriptor >= 0 { close(descriptor) }
            return []
        }
        defer { closedir(directory) }
        while found.count < maxTokens, let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) { String(cString: $0) }
            }
            guard name != ".", name != ".." else { continue }
            var file = stat()
            if fstatat(descriptor, name, &file, AT_SYMLINK_NOFOLLOW) == 0, (file.st_mode & S_IFMT) == S_IFREG {
                found.insert([UInt64(file.st_dev), UInt64(file.st_ino)])
            }
        }
        // A change within the folder's clock tick leaves its times: listed again until settled.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if Int64(now.tv_sec) - Int64(info.st_mtim.tv_sec) >= 2, Int64(now.tv_sec) - Int64(info.st_ctim.tv_sec) >= 2 {
            tokens.withLock { $0 = (folder, stamp, found) }
        }
        return found
    }

    /// Token files looked at at most (a state home's history: three per state ever built).
    static let maxTokens = 65_536
    private static let tokens = LockedBox<(folder: String, stamp: [Int64], identities: Set<[UInt64]>)?>(nil)

    /// The records a bucket's folder holds (`isRecord`), below it at any depth with no link
    /// followed, at most `maxFilesLooked` files looked at: `derive validate` warns of those in a
    /// public bucket (serve never answers them; the folder published by other means shows them).
    public static func held(in folder: String) -> (records: [String], boundReached: Bool) {
        var records: [String] = []
        var looked = 0
        let tokens = currentTokens()
        var pending = [folder]
        while let current = pending.popLast() {
            let descriptor = open(current, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard descriptor >= 0, let directory = fdopendir(descriptor) else {
                if descriptor >= 0 { close(descriptor) }
                continue
            }
            defer { closedir(directory) }
            let base = current == "/" ? "" : current
            while let entry = readdir(directory) {
                let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                    tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) { String(cString: $0) }
                }
                guard name != ".", name != ".." else { continue }
                var info = stat()
                guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFDIR {
                    pending.append(base + "/" + name)
                } else if (info.st_mode & S_IFMT) == S_IFREG {
                    guard looked < maxFilesLooked else { return (records.sorted(), true) }
                    looked += 1
                    if isRecord(base + "/" + name, tokens: tokens) { records.append(base + "/" + name) }
                }
            }
        }
        return (records.sorted(), false)
    }

    /// Files `held(in:)` looks at at most per bucket.
    public static let maxFilesLooked = 20_000
}

extension StateHomeRecord {
    /// `derive validate` only (a walk of each public bucket): Derive's own per-user records in a
    /// bucket anonymous requests may reach (`StateHomeRecord`).
    public static func validate(_ manifest: Manifest, into diagnostics: inout Diagnostics) {
        for bucket in manifest.buckets where NeighbourProjects.mostPublic(bucket).isPublic {
            let (records, boundReached) = StateHomeRecord.held(in: bucket.path)
            guard !records.isEmpty else { continue }
            let shown = records.prefix(5).map { TerminalText.escaped($0) }.joined(separator: ", ") + (records.count > 5 ? " and \(records.count - 5) more" : "")
            diagnostics.warning(bucket.pathLocation,
                                "bucket '\(bucket.name)' (\(bucket.declaredPath)), which is \(NeighbourProjects.mostPublic(bucket).rawValue), holds Derive's per-user records (a build state's secret, a lock's provenance, the folders made for a state or the registry of built projects): \(shown)\(boundReached ? " (the first \(StateHomeRecord.maxFilesLooked) files looked at)" : ""); derive serve never answers them, but the folder published by other means hands out the secrets that seal build states",
                                hint: "remove them from the bucket (a hard link or copy of the state home, e.g. a backup made with cp -al or rsync --link-dest); Derive keeps them in its state home alone")
        }
    }
}
