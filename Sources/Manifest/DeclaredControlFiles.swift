import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `lock:` and `state:` a manifest that does not parse (mid-edit) declares, read from its text
/// in any spelling a manifest may use: block YAML (`lock: x.lock`), a flow mapping (`{version: 1,
/// lock: x.lock, ...`), JSON or quoted keys (`"lock": "x.lock"`). Attack 46b's N2: only block
/// `lock:` lines were read, so a neighbour broken in JSON or flow style with its lock and state
/// moved had neither found; its outputs were nobody's, served publicly and writable by requests.
///
/// Why a scan and not "fail closed on every folder it could write": a broken manifest's buckets
/// are as unknown as its lock (they are in the same broken text), so the folders it could write
/// cannot be placed either, and taking every folder its text names would take the served site's
/// own buckets too. Its own lock and state, once found, say exactly which files it wrote (each
/// lock line with its bytes, each state row with its folder). What no scan can find (a key cut
/// off before its `lock:` was written) is not guessed: its defaults still count, and what a
/// running serve learned while it loaded.
extension ControlFiles {
    /// The last top-level `lock` and `state` keys with a scalar value in `data` (nil for one not
    /// found): a key at the start of a line (block; a bracket an earlier line left open is taken
    /// as closed there), or right after the `{` or
    /// a `,` of the document's outermost mapping when the text starts with `{` (flow, JSON); bare
    /// or quoted keys, values quoted (one line) or plain (up to `,`, `}`, `]`, a line's end or
    /// ` #`). One pass over at most `maxManifestBytes` bytes.
    static func declaredControlFiles(_ data: Data) -> (lock: String?, state: String?) {
        guard data.count <= ProjectMarkers.maxManifestBytes else { return (nil, nil) }
        let bytes = [UInt8](data)
        let space: Set<UInt8> = [0x20, 0x09, 0x0D, 0x0A]
        // The first byte that is no space, no BOM and no comment line decides flow or block.
        var flow = false
        do {
            var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
            while index < bytes.count {
                if space.contains(bytes[index]) { index += 1; continue }
                if bytes[index] == UInt8(ascii: "#") {
                    while index < bytes.count, bytes[index] != 0x0A { index += 1 }
                    continue
                }
                if bytes[index] == UInt8(ascii: "-"), bytes[index...].starts(with: Array("---".utf8)) { index += 3; continue }
                flow = bytes[index] == UInt8(ascii: "{")
                break
            }
        }
        var lock: String?, state: String?
        var depth = 0
        var previous: UInt8 = 0x0A
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let lineStart = index == 0 || bytes[index - 1] == 0x0A || (index == 3 && bytes.starts(with: [0xEF, 0xBB, 0xBF]))
            // Block YAML: a key at a line's first column is top-level whatever bracket an earlier
            // line left open (attack 47b's F2-F4: `from: [` half-typed above a moved `lock:` hid
            // it); the bracket is closed there.
            if !flow, lineStart { depth = 0 }
            let keyPlace = flow ? depth == 1 && (previous == UInt8(ascii: "{") || previous == UInt8(ascii: ",")) : depth == 0 && lineStart
            if keyPlace, let (key, value, end) = Self.keyAndValue(bytes, at: index), key == "lock" || key == "state" {
                if key == "lock" { lock = value } else { state = value }
                index = end
                previous = UInt8(ascii: "a")
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                // A quoted scalar (a key or a value that is not a control file's): skipped, on its line.
                index += 1
                while index < bytes.count, bytes[index] != byte, bytes[index] != 0x0A {
                    if byte == UInt8(ascii: "\""), bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    index += 1
                }
            case UInt8(ascii: "#") where index == 0 || space.contains(bytes[index - 1]):
                while index < bytes.count, bytes[index] != 0x0A { index += 1 }
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth = max(0, depth - 1)
            default: break
            }
            if index < bytes.count, !space.contains(bytes[index]) { previous = bytes[index] }
            index += 1
        }
        return (lock, state)
    }

    /// A key at `start` (bare, `"quoted"` or `'quoted'`), `:`, and a scalar value on the same line;
    /// with the index just past the value. Nil when `start` holds no such pair.
    private static func keyAndValue(_ bytes: [UInt8], at start: Int) -> (key: String, value: String, end: Int)? {
        var index = start
        func quoted(_ close: UInt8) -> String? {
            var text: [UInt8] = []
            index += 1
            while index < bytes.count, bytes[index] != close, bytes[index] != 0x0A {
                if close == UInt8(ascii: "\""), bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
                text.append(bytes[index])
                index += 1
            }
            guard index < bytes.count, bytes[index] == close else { return nil }
            index += 1
            return String(decoding: text, as: UTF8.self)
        }
        let key: String
        if bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
            guard let text = quoted(bytes[index]) else { return nil }
            key = text
        } else {
            let begin = index
            while index < bytes.count, (bytes[index] >= UInt8(ascii: "a") && bytes[index] <= UInt8(ascii: "z")) { index += 1 }
            key = String(decoding: bytes[begin..<index], as: UTF8.self)
        }
        guard key == "lock" || key == "state" else { return nil }
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
        index += 1
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
        guard index < bytes.count else { return nil }
        let value: String
        if bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
            guard let text = quoted(bytes[index]) else { return nil }
            value = text
        } else {
            let begin = index
            while index < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x0A, 0x0D].contains(bytes[index]),
                  !(bytes[index] == UInt8(ascii: "#") && index > begin && (bytes[index - 1] == 0x20 || bytes[index - 1] == 0x09)) {
                index += 1
            }
            value = String(decoding: bytes[begin..<index], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            // An alias, a tag, a block scalar or a nested collection is no path of a control file.
            guard let first = value.first, !"{[&*!|>\"'#".contains(first) else { return nil }
        }
        guard !value.isEmpty, !value.contains("\0") else { return nil }
        return (key, value, index)
    }

    /// The lock and state folder a manifest that does not parse declares (`declaredControlFiles`),
    /// resolved against its folder; nil for one it does not declare.
    static func declaredControlFiles(ofBroken path: String, _ data: Data) -> (lock: String?, state: String?) {
        let declared = declaredControlFiles(data)
        let base = URL(literalFilePath: (URL(literalFilePath: path).standardizedFileURL.path as NSString).deletingLastPathComponent + "/")
        func resolved(_ value: String?) -> String? {
            value.map { URL(literalFilePath: $0, relativeTo: base).standardizedFileURL.path }
        }
        return (resolved(declared.lock), resolved(declared.state))
    }

    /// Whether a manifest that does not parse declares a lock that is a Derive lock, or a state
    /// folder that holds Derive's state database: a project mid-edit with its control files moved
    /// (its own state is not beside it, so `besideOwnState` cannot say so).
    static func declaresOwnState(_ path: String, _ data: Data) -> Bool {
        let declared = declaredControlFiles(ofBroken: path, data)
        if let lock = declared.lock, isDeriveLock(lock) { return true }
        var info = stat()
        if let state = declared.state, lstat(state + "/" + StateFiles.database, &info) == 0 { return true }
        return false
    }

    /// Whether `data` is a text that does not parse as YAML, has a manifest's key in it, and
    /// declares a `lock` or a `state` (`declaredControlFiles`): what `declaresOwnState` may take
    /// for a project, judged without the folder (serve's writers: `ProjectMarkers.why`).
    static func declaresControlFiles(contents data: Data) -> Bool {
        guard data.count <= ProjectMarkers.maxManifestBytes, !data.contains(0) else { return false }
        let text = String(decoding: data, as: UTF8.self)
        guard ["version", "buckets", "derivatives"].contains(where: { text.contains($0) }),
              (try? YAMLLoader.load(data, file: "manifest")) == nil else { return false }
        let declared = declaredControlFiles(data)
        return declared.lock != nil || declared.state != nil
    }
}
