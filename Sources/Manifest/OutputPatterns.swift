import ProcessLanguage

/// What paths an output template can give, as loose patterns (a superset): styles, matrix
/// values and known formats are substituted, `{key}` stands for the rule's `from` pattern,
/// `{name}` for one folder's worth of text, `{dir}` for any folders (or none).
enum OutputPatterns {
    /// Beyond this many recipes or `from` alternatives, values are treated as unknown text.
    static let maxRecipes = 32
    static let maxKeyAlternatives = 16

    static func of(_ template: PathTemplate, from: Glob?,
                   recipes: [(values: [String: String], pipeline: Pipeline?)]) -> [LoosePattern] {
        let keys = keyAlternatives(from)
        var cases = recipes
        // `json` is an `{ext}` only of recipes answering with JSON (`info`, `average-hue`).
        let answersJSON = recipes.contains { $0.pipeline?.answersJSON == true }
        if cases.isEmpty || cases.count > maxRecipes { cases = [([:], nil)] }
        var result: [LoosePattern] = []
        var seen: Set<LoosePattern> = []
        for (values, pipeline) in cases {
            // {ext}: the pipeline's format, except gif (kept only for gif sources), else any format.
            var extensions = Format.Kind.allCases.map(\.fileExtension) + (pipeline == nil && answersJSON ? ["json"] : [])
            if pipeline?.answersJSON == true { extensions = ["json"] }
            else if let format = pipeline?.outputFormat, format != .gif { extensions = [format.fileExtension] }
            for pattern in of(template, keyAlternatives: keys, values: values, extensions: extensions)
            where seen.insert(pattern).inserted {
                result.append(pattern)
            }
        }
        return result
    }

    /// The patterns of one recipe (`values` substituted) with `{ext}` one of `extensions`.
    static func of(_ template: PathTemplate, from: Glob?, values: [String: String], extensions: [String]) -> [LoosePattern] {
        of(template, keyAlternatives: keyAlternatives(from), values: values, extensions: extensions)
    }

    static func keyAlternatives(_ from: Glob?) -> [[LoosePattern.Item]] {
        if let from, from.alternatives.count <= maxKeyAlternatives { return from.loose.flatMap { listed($0.items) } }
        return [[.run(.any)]]
    }

    /// A `from` alternative narrowed to the keys the source listing keeps: each folder or file
    /// name starts with a scalar `sourceListingKeeps` allows. A `*` starting a name is either
    /// empty or starts with one (never empty as a whole name); `?` there becomes one, a class stays
    /// itself; a literal `.` there leaves
    /// no key at all. (`**` spans names and is left as it is: still a superset.)
    static func listed(_ items: [LoosePattern.Item]) -> [[LoosePattern.Item]] {
        let narrowed = listed(items[...], atStart: true)
        // Many `*`s starting names: each doubles the alternatives; past a few, the plain superset.
        return narrowed.count > maxKeyAlternatives ? [items] : narrowed
    }

    static func listed(_ items: ArraySlice<LoosePattern.Item>, atStart: Bool) -> [[LoosePattern.Item]] {
        guard let first = items.first else { return [[]] }
        let rest = items.dropFirst()
        func then(_ head: [LoosePattern.Item], atStart: Bool) -> [[LoosePattern.Item]] { listed(rest, atStart: atStart).map { head + $0 } }
        let slash = first == .one(.scalar("/"))
        // A key has no empty folder or file name: an alternative with `//`, a leading or a trailing
        // `/` (`src/{,sub}/*.jpg` gives `src//*.jpg`) matches no key at all.
        if slash, atStart || rest.isEmpty { return [] }
        guard atStart else { return then([first], atStart: slash) }
        switch first {
        case .one(.scalar(let c)) where !slash && !LoosePattern.Class.listedStart.admits(c): return []
        case .one(.segment): return then([.one(.listedStart)], atStart: false)
        case .run(.segment):
            // Empty (the name starts with what follows), or a listed scalar and more; never empty
            // when it is the whole name (`*/`: a key has no empty folder name).
            let wholeName = rest.isEmpty || rest.first == .one(.scalar("/"))
            return (wholeName ? [] : listed(rest, atStart: true)) + then([.one(.listedStart), .run(.segment)], atStart: false)
        default: return then([first], atStart: slash)
        }
    }

    /// The folders (`{dir}`) a source matching the key alternative `key` can have: `photos/*.jpg`
    /// gives `photos`; a key with no folder gives only the empty `{dir}`; `photos/**/*.jpg` gives
    /// `photos` and any listed folders below it (the folders before a `**` stay: attack 15 D1); nil
    /// where the alternative does not say (a `**` before any folder): then any listed folders.
    /// (`{name}` stays one listed name: a lock from before `from:` was narrowed still vouches for
    /// the outputs it no longer makes.)
    static func dir(_ key: [LoosePattern.Item]) -> [[LoosePattern.Item]]? {
        let slash = LoosePattern.Item.one(.scalar("/"))
        guard let last = key.lastIndex(of: slash) else { return key.contains(.run(.any)) ? nil : [[]] }
        let folders = Array(key[..<last])
        guard key[(last + 1)...].contains(.run(.any)) else { return [folders] }
        // The `**` after the last `/` may stand for no folder, or for folders below `folders`.
        return [folders, folders + [slash, .one(.listedStart), .run(.any)]]
    }

    /// What a `{hash}` slot stands for: the template's own length, another one, or any length
    /// a template may give.
    enum HashSlot {
        case template
        case length(Int)
        case anyLength
    }

    /// A style or matrix variable with no value given: `anyValues` makes it any value the
    /// manifest's syntax allows for it (an earlier manifest's), else any text within a folder.
    static func unknownValue(_ name: String, anyValues: Bool) -> [LoosePattern.Item] {
        guard anyValues else { return [.run(.segment)] }
        let scalar: LoosePattern.Class = name == "style" ? .styleName : .matrixValue
        return [.one(scalar), .run(scalar)]
    }

    static func of(_ template: PathTemplate, keyAlternatives: [[LoosePattern.Item]], values: [String: String],
                   extensions: [String], hash: HashSlot = .template, anyValues: Bool = false) -> [LoosePattern] {
        // {dir} as sources the `from:` keys can give: a folder no `from:` reaches never is one.
        let anyFolders: [[LoosePattern.Item]] = [[], [.one(.listedStart), .run(.any)]]
        var dirs: [[LoosePattern.Item]] = []
        for key in keyAlternatives {
            for choice in dir(key) ?? anyFolders where !dirs.contains(choice) { dirs.append(choice) }
        }
        var alternatives: [[LoosePattern.Item]] = [[]]
        for part in template.parts {
            let choices: [[LoosePattern.Item]]
            switch part {
            case .literal(let text): choices = [LoosePattern.literal(text)]
            case .variable("key"): choices = keyAlternatives
            // A source's folders and name: never empty (the folders may be none), never starting
            // with a name the listing skips.
            case .variable("dir"): choices = dirs
            case .variable("name"): choices = [[.one(.listedStart), .run(.segment)]]
            case .variable("ext"): choices = extensions.map(LoosePattern.literal)
            case .variable("hash"):
                switch hash {
                case .template: choices = [Array(repeating: .one(.hexDigit), count: template.hashLength ?? PathTemplate.defaultHashLength)]
                case .length(let length): choices = [Array(repeating: .one(.hexDigit), count: length)]
                case .anyLength: choices = [Array(repeating: .one(.hexDigit), count: PathTemplate.hashLengths.lowerBound) + [.run(.hexDigit)]]
                }
            case .variable(let name):
                if let value = values[name] { choices = [LoosePattern.literal(value)] } else { choices = [unknownValue(name, anyValues: anyValues)] }
            }
            alternatives = alternatives.flatMap { head in choices.map { head + $0 } }
        }
        return alternatives.map { LoosePattern(normalized($0)) }
    }

    /// As `PathTemplate.render` does: doubled and leading slashes go; a slash after "any
    /// folders" is dropped too, since those folders may be none (`{dir}/` with an empty dir).
    static func normalized(_ items: [LoosePattern.Item]) -> [LoosePattern.Item] {
        var out: [LoosePattern.Item] = []
        for item in items {
            if item == .one(.scalar("/")) {
                switch out.last {
                case nil, .one(.scalar("/"))?, .run(.any)?: continue
                default: break
                }
            }
            out.append(item)
        }
        return out
    }
}

extension LoosePattern {
    /// Whether every string this pattern gives also matches `glob` (an under-approximation:
    /// recognises `prefix/**`, `**/*suffix`, `prefix*suffix` and `**`, the shapes excludes take).
    func isCovered(by glob: LoosePattern) -> Bool {
        let e = glob.items
        var prefix: [LoosePattern.Item] = []
        var index = 0
        while index < e.count, case .one(.scalar) = e[index] { prefix.append(e[index]); index += 1 }
        var middle: [LoosePattern.Item] = []
        while index < e.count, case .run = e[index] { middle.append(e[index]); index += 1 }
        let suffix = Array(e[index...])
        guard suffix.allSatisfy({ if case .one(.scalar(let c)) = $0 { return c != "/" } else { return false } }),
              !middle.isEmpty, items.count >= prefix.count + suffix.count,
              items.starts(with: prefix), items.reversed().starts(with: suffix.reversed()) else { return false }
        if middle.contains(.run(.any)) { return true }
        // Only "any text within a folder": what stands between must stay within one folder.
        let between = items[prefix.count..<(items.count - suffix.count)]
        return between.allSatisfy { item in
            switch item {
            case .one(.scalar(let c)): return c != "/"
            case .one(.segment), .run(.segment): return true
            default: return false
            }
        }
    }
}
