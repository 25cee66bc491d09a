import Confinement

/// Why an output key, its variables filled in, cannot be a file below its bucket's folder: a
/// `.`, `..` or empty part (a place outside the output's folder, or another name for one), or a
/// part longer than a file name may be. Such an output is a plan failure of its source, so plan
/// says what the build does, and nothing is written (attack 38a's H1 and M3).
enum KeyPlaceProblem: Equatable {
    case dotSegment
    case nameTooLong(Int)
    /// The file name (the key's last part) is longer than Derive can write it under its temporary
    /// name (`ConfinedFolder.longestInstalledName`).
    case fileNameTooLong(Int)
    /// The file name has the shape of Derive's temporaries (`.NAME.PID.N.derive-tmp`), which a
    /// build's sweep removes as a killed command's (attack 56b's H5).
    case temporaryName

    /// Linux's NAME_MAX: the longest file or folder name, in bytes, on ext4, XFS, Btrfs and tmpfs.
    static let maxNameBytes = 255

    static func of(_ key: String) -> KeyPlaceProblem? {
        let parts = key.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var longest = 0
        for part in parts {
            if part.isEmpty || part.elementsEqual([0x2E]) || part.elementsEqual([0x2E, 0x2E]) { return .dotSegment }
            longest = max(longest, part.count)
        }
        if longest > maxNameBytes { return .nameTooLong(longest) }
        guard let last = parts.last else { return nil }
        if last.count > ConfinedFolder.longestInstalledName { return .fileNameTooLong(last.count) }
        if last.first == UInt8(ascii: "."), String(decoding: last, as: UTF8.self).hasSuffix(ConfinedFolder.temporaryMarker) {
            return .temporaryName
        }
        return nil
    }

    func message(output: String) -> String {
        let shown = output.utf8.count <= 120 ? output : String(output.prefix(60)) + "…" + String(output.suffix(50))
        switch self {
        case .dotSegment:
            return "its outputs' keys would have a '.' or '..' part (or an empty one), as in \(shown); such a key names a place outside "
                + "the output's folder, so Derive never writes it: rename the source or the style, or change the rule's 'to:', or exclude the source in 'exclude:'"
        case .temporaryName:
            return "its outputs' file names would have the shape of Derive's temporary files (.NAME.PID.N.derive-tmp), as in \(shown); a build removes such "
                + "a file as one a killed command left: change the rule's 'to:', or rename the source, or exclude it in 'exclude:'"
        case .fileNameTooLong(let bytes):
            return "its outputs' file names would be \(bytes) bytes long, as in \(shown); an output's file name may be at most \(ConfinedFolder.longestInstalledName) bytes "
                + "(Derive writes it first under a temporary name \(KeyPlaceProblem.maxNameBytes - ConfinedFolder.longestInstalledName) bytes longer, and a file name may be at most \(Self.maxNameBytes)): "
                + "shorten the rule's 'to:', or rename the source, or exclude it in 'exclude:'"
        case .nameTooLong(let bytes):
            return "its outputs' file names would be \(bytes) bytes long, as in \(shown); a file name may be at most \(Self.maxNameBytes) bytes: "
                + "shorten the rule's 'to:', or rename the source, or exclude it in 'exclude:'"
        }
    }
}
