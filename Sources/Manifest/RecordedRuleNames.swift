/// The rule name a record of an older Derive gives an unnamed rule, read as the name the rule has
/// now. Before round 39 an unnamed rule was called `rule at FILE:LINE` with FILE the manifest's
/// path as the user typed it (`/abs/site/derive.yaml`, `./derive.yaml`, `../site/derive.yaml`, a
/// path through a linked folder; an include as `that folder/inc/rules.yaml`), so the same rule
/// had as many names as spellings, and naming the manifest another way renamed every record.
/// Now FILE is relative to the root manifest's folder (`Rule.manifestFile`). A recorded name is
/// the current rule's when, with `.` and `x/..` taken out of its FILE, the current FILE's path
/// components end it and the line is the same (the longest such FILE wins; a tie is left as
/// recorded). Names of named rules, and names that are a current rule's already, pass unchanged.
/// Records are read through this (`StateStore.recognise(ruleNames:)`), never rewritten for it.
public struct RecordedRuleNames: Sendable {
    /// The current unnamed rules by line: their file's path components and their name.
    private let unnamed: [Int: [(components: [Substring], name: String)]]
    private let current: Set<String>

    public init(_ rules: [Rule]) {
        var unnamed: [Int: [(components: [Substring], name: String)]] = [:]
        for rule in rules where rule.name == nil {
            unnamed[rule.location.line, default: []].append((Self.components(rule.manifestFile), rule.planName))
        }
        self.unnamed = unnamed
        current = Set(rules.map(\.planName))
    }

    /// The name the rule recorded as `recorded` has now: `recorded` itself unless it is an older
    /// spelling of an unnamed rule's place.
    public func current(_ recorded: String) -> String {
        guard !unnamed.isEmpty, recorded.hasPrefix(RuleName.unnamedPrefix), !current.contains(recorded) else { return recorded }
        let place = recorded.dropFirst(RuleName.unnamedPrefix.count)
        guard let colon = place.lastIndex(of: ":"), let line = Int(place[place.index(after: colon)...]),
              let candidates = unnamed[line] else { return recorded }
        let file = Self.components(place[..<colon])
        var best: (count: Int, name: String?) = (0, nil)
        for candidate in candidates where candidate.components.count <= file.count && file.suffix(candidate.components.count).elementsEqual(candidate.components) {
            if candidate.components.count > best.count {
                best = (candidate.components.count, candidate.name)
            } else if candidate.components.count == best.count {
                best.name = nil   // two rules' places fit alike: not guessed
            }
        }
        return best.name ?? recorded
    }

    /// A path's components without empty and `.` ones, `x/..` taken out (a leading `..` stays).
    static func components(_ path: some StringProtocol) -> [Substring] {
        var result: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            let part = Substring(part)
            if part == "." { continue }
            if part == "..", let last = result.last, last != ".." { result.removeLast(); continue }
            result.append(part)
        }
        return result
    }
}
