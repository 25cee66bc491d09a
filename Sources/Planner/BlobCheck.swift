import Foundation

/// Reads `git cat-file --batch`'s answer for the blobs `expected` (asked in that order) as it
/// arrives, never holding a blob whole: for each, `ID blob SIZE\n`, SIZE bytes and `\n` (or
/// `ID missing\n`), the bytes hashed as a git object (`blob SIZE\0` and the bytes; SHA-1 or
/// SHA-256 by the id's length). A blob is whole only when git gave back exactly HEAD's size and
/// bytes whose hash is its id. Anything else in the answer's shape stops the reading (`read`
/// answers false): the blobs not yet answered are then proven by nothing.
struct BlobCheck {
    enum Verdict: Equatable { case whole, unproven(String) }

    static let damaged = "it is committed to git at HEAD, but the repository's copy of it is damaged: git cannot give it back (`git fsck` names the damage)"
    static let unanswered = "it is committed to git at HEAD, but git ended before giving it back (`git fsck` names any damage)"
    static let lacking = "it is committed to git at HEAD, but the repository does not hold that commit's copy of it"

    let expected: [(id: String, size: Int)]
    /// How many blobs of `expected` are answered (in order).
    private(set) var answered = 0
    private(set) var results: [String: Verdict] = [:]
    /// Whether the reading stopped at a blob git announced larger than its id's size: judged
    /// damaged (its id covers its size), the blobs after it not answered.
    private(set) var stoppedAtDamage = false
    /// Whether git began answering for the blob being read (named it, or part of that line).
    var begun: Bool { phase != .header || !header.isEmpty }
    /// The most git's answer may hold: each blob, its header line and its newline, and one read
    /// (`GitCommand` reads 64 KiB at a time) more: a blob announced larger than asked (another
    /// object's content under its id) is judged from its header, which that read brings.
    var maxBytes: Int { expected.reduce(1 << 16) { $0 + $1.size + $1.id.count + 32 } }

    private enum Phase { case header, body, newline }
    private var phase = Phase.header
    private var header: [UInt8] = []
    private var left = 0
    private var hasher: GitProof.ObjectHasher?
    /// The verdict already known for the blob being read (git gave another size or type).
    private var known: Verdict?

    init(expected: [(id: String, size: Int)]) { self.expected = expected }

    mutating func read(_ chunk: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < chunk.count {
            guard answered < expected.count else { return false }
            let (id, size) = expected[answered]
            switch phase {
            case .header:
                let byte = chunk[index]
                index += 1
                guard byte == 10 else {
                    header.append(byte)
                    if header.count > id.count + 32 { return false }
                    continue
                }
                let fields = String(decoding: header, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
                header = []
                guard fields.first.map(String.init) == id else { return false }
                if fields.count == 2, fields[1] == "missing" {
                    finish(id, .unproven(Self.lacking))
                    continue
                }
                guard fields.count == 3, let announced = Int(fields[2]), announced >= 0 else { return false }
                guard announced <= size else {
                    // Not read (more than the blob can hold): another object's content under this id.
                    finish(id, .unproven(Self.damaged))
                    stoppedAtDamage = true
                    return false
                }
                known = fields[1] == "blob" && announced == size ? nil : .unproven(Self.damaged)
                hasher = GitProof.ObjectHasher(length: id.count, size: size)
                left = announced
                phase = left == 0 ? .newline : .body
            case .body:
                let take = min(left, chunk.count - index)
                hasher?.update(UnsafeRawBufferPointer(rebasing: chunk[index..<(index + take)]))
                index += take
                left -= take
                if left == 0 { phase = .newline }
            case .newline:
                guard chunk[index] == 10 else { return false }
                index += 1
                finish(id, known ?? (hasher?.finish() == id ? .whole : .unproven(Self.damaged)))
            }
        }
        return true
    }

    private mutating func finish(_ id: String, _ verdict: Verdict) {
        results[id] = verdict
        answered += 1
        phase = .header
        known = nil
        hasher = nil
    }
}
