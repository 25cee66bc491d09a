import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 17 (static): a public index listed a private bucket's sources (N4), `objects:` rules
/// over a rule's outputs were silently overridden (L2), and rule names could hold invisible
/// characters (L1).
@Suite(.ownThreads) struct IndexACLManifestTests {
    /// pub (public-read), priv (private), site (public-read) holding the index; `rules` follow.
    static func manifest(_ rules: String, site: String = "{path: site, acl: public-read, url: /site}", index: String = "site/index.json") -> String {
        """
        version: 1
        buckets:
          pub: {path: pub, acl: public-read}
          priv: {path: priv, acl: private}
          site: \(site)
        derivatives:
        \(rules)
        index: \(index)

        """
    }

    static let gallery = """
          - name: gallery
            from: pub/*.jpg
            process: image/resize,w_200/format,webp
            to: site/g/{name}.{hash}.webp
            placeholder: true
        """

    static let objects = ["pub": ["lake.jpg"], "priv": ["ceo-passport-scan.jpg", "payroll.jpg"], "site": []]

    // MARK: N4: a public index lists only public outputs

    /// Attack 17's N4 as written: rule `internal`'s outputs are private (`acl: private`), yet the
    /// public-read index listed their sources' names, colours and blurred placeholders. An error
    /// at the rule, naming the index and its ACL, with both fixes.
    @Test func aPrivateRuleBesideAPublicIndexIsRefused() throws {
        let result = try Workspace().load(yaml: Self.manifest(Self.gallery + """

          - name: internal
            from: priv/*.jpg
            process: image/resize,w_200/format,webp
            to: site/internal/{name}.{hash}.webp
            acl: private
            placeholder: true
        """), objects: Self.objects)
        #expect(result.has(12, 5, "rule 'internal' writes private outputs (its acl: private), and the index site/index.json, which lists every output, is public-read (bucket 'site'): anyone could read their sources' names, sizes, colours and placeholder images"), "\(result.lines)")
        #expect(result.has(12, 5, "{match: \"index.json\", acl: private} first in the objects: of bucket 'site'"), "\(result.lines)")
        #expect(result.has(12, 5, "acl: public-read on their rule"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
    }

    /// Without `acl:` the outputs take their sources' ACL: private sources make private outputs,
    /// which a public index may not list either (the keys are named, as the leak guard does).
    /// Their target is private here, so the leak guard has nothing to say.
    @Test func derivativesOfPrivateSourcesBesideAPublicIndexAreRefused() throws {
        let result = try Workspace().load(yaml: Self.manifest("""
          - name: internal
            from: priv/*.jpg
            process: image/resize,w_200/format,webp
            to: drafts/{name}.webp
        """, index: "site/index.json").replacingOccurrences(of: "  site: ", with: "  drafts: {path: drafts}\n  site: "),
            objects: Self.objects)
        #expect(result.has(8, 5, "rule 'internal' writes derivatives of private objects of bucket 'priv' (ceo-passport-scan.jpg, payroll.jpg), private as their sources are, and the index site/index.json, which lists every output, is public-read (bucket 'site')"), "\(result.lines)")
        #expect(result.diagnostics.errors.count == 1, "\(result.lines)")
    }

    /// What stays valid: public outputs (a public source, or an explicit `acl: public-read`,
    /// which publishes derivatives of private sources on purpose, placeholders with them), and
    /// any outputs beside an index that is private (its bucket, or an `objects:` rule).
    @Test(arguments: [
        ("explicit public-read", "    acl: public-read\n", "{path: site, acl: public-read}", "site/index.json"),
        ("private index bucket", "    acl: private\n", "{path: site, acl: public-read}", "data/index.json"),
        ("objects rule", "    acl: private\n", "{path: site, acl: public-read, objects: [{match: index.json, acl: private}]}", "site/index.json"),
        ("private site", "    acl: private\n", "{path: site, acl: private}", "site/index.json"),
    ])
    func publicOutputsOrAPrivateIndexStayValid(what: String, acl: String, site: String, index: String) throws {
        let yaml = Self.manifest(Self.gallery + """

          - name: internal
            from: priv/*.jpg
            process: image/resize,w_200/format,webp
            to: site/internal/{name}.{hash}.webp
        \(acl)
        """, site: site, index: index).replacingOccurrences(of: "  site: ", with: "  data: {path: data}\n  site: ")
        let result = try Workspace().load(yaml: yaml, objects: Self.objects)
        #expect(!result.diagnostics.hasErrors, "\(what): \(result.lines)")
    }

    /// The index's ACL is its effective one: an `objects:` rule that makes it public in a private
    /// bucket counts (and is named as what makes it public); one in a public-read-write bucket
    /// is refused for that too.
    @Test func anIndexMadePublicByAnObjectsRuleCounts() throws {
        let result = try Workspace().load(yaml: Self.manifest(Self.gallery + """

          - name: internal
            from: priv/*.jpg
            process: image/resize,w_200/format,webp
            to: site/internal/{name}.webp
            acl: private
        """, site: "{path: site, acl: private, objects: [{match: \"*.json\", acl: public-read}]}"), objects: Self.objects)
        #expect(result.has(12, 5, "is public-read (an 'objects:' rule of bucket 'site')"), "\(result.lines)")
        let writable = try Workspace().load(yaml: Self.manifest(Self.gallery + """

          - name: internal
            from: priv/*.jpg
            process: image/resize,w_200/format,webp
            to: site/internal/{name}.webp
            acl: private
        """, site: "{path: site, acl: public-read-write}"), objects: Self.objects)
        #expect(writable.has(12, 5, "is public-read-write (bucket 'site')"), "\(writable.lines)")
        #expect(writable.diagnostics.errors.contains { $0.message.contains("anyone could overwrite it") }, "\(writable.lines)")
    }

    // MARK: L2: objects rules never set a built output's ACL

    /// Attack 17's L2: `objects: [{match: "*.webp", acl: private}]` in the target bucket looked as
    /// if it hid rule `pic`'s outputs, but the rule's `acl: public-read` wins. A warning at the
    /// objects rule; none for one that says the same as the rule or matches none of its outputs,
    /// nor for one behind an earlier rule that covers the outputs.
    @Test func anObjectsRuleOverriddenByTheRulesACLIsAWarning() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          src: {path: src}
          site:
            path: site
            acl: public-read
            objects:
              - {match: "notes.txt", acl: private}
              - {match: "*.webp", acl: private}
              - {match: "thumbs/**", acl: public-read}
              - {match: "thumbs/*.webp", acl: private}
        derivatives:
          - name: pic
            from: src/*.jpg
            process: image/resize,w_100/format,webp
            to: site/{name}.webp
            acl: public-read
          - name: same
            from: src/*.jpg
            process: image/resize,w_50/format,webp
            to: site/thumbs/{name}.webp
            acl: public-read

        """, objects: ["src": ["landscape.jpg"]])
        #expect(result.has(9, 9, "objects rule '*.webp' (private) of bucket 'site' matches outputs of rule 'pic', whose acl: public-read wins", severity: .warning), "\(result.lines)")
        #expect(result.has(9, 9, "set the rule's acl: instead", severity: .warning), "\(result.lines)")
        // `thumbs/**` says what rule `same` says and covers its outputs, so `thumbs/*.webp` after it never applies.
        #expect(!result.lines.contains { $0.contains("notes.txt") || $0.contains("thumbs/") || $0.contains("'same'") }, "\(result.lines)")
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
    }

    /// Without `acl:`, outputs take their source's ACL: an objects rule that says otherwise is
    /// named with that ACL.
    @Test func anObjectsRuleOverriddenByTheSourcesACLIsAWarning() throws {
        let result = try Workspace().load(yaml: """
        version: 1
        buckets:
          pub: {path: pub, acl: public-read}
          site:
            path: site
            acl: public-read
            objects: [{match: "**", acl: private}]
        derivatives:
          - name: pic
            from: pub/*.jpg
            process: image/resize,w_100/format,webp
            to: site/{name}.webp

        """, objects: ["pub": ["landscape.jpg"]])
        #expect(result.has(7, 15, "objects rule '**' (private) of bucket 'site' matches outputs of rule 'pic', which take their source's ACL (public-read) in bucket 'pub'", severity: .warning), "\(result.lines)")
    }

    // MARK: L1: invisible characters in rule names

    /// A manifest whose one rule is named `name`, written between YAML double quotes (so `\u200D`
    /// is YAML's escape), loaded; the name stands at 6:11.
    static func load(ruleNamed name: String) throws -> ManifestLoader.Result {
        try Workspace().load(yaml: """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: "\(name)"
            from: src/*.jpg
            process: image/resize,w_100
            to: out/{name}.{ext}

        """, objects: ["src": ["a.jpg"]])
    }

    /// Attack 17's L1: `xy` and `x<U+200B>y` were two rules that print alike; so were ` sp ` and
    /// `sp`. Format characters (Cf), spaces other than U+0020 and a space at either end are
    /// refused like the controls, with the character shown as an escape.
    @Test(arguments: [("x\\u200By", "U+200B"), ("x\\u200Dy", "U+200D"), ("x\\u2060y", "U+2060"), ("\\uFEFFxy", "U+FEFF"),
                      ("x\\u00ADy", "U+00AD"), ("x\\u00A0y", "U+00A0"), ("x\\u3000y", "U+3000"), ("x\\u202Fy", "U+202F"),
                      (" sp", "starts or ends with a space"), ("sp ", "starts or ends with a space"), ("x\\U000E0041y", "U+E0041"),
                      // U+200D joins two emoji only: not after a letter, before one, at an end, twice, or after a lone U+FE0F.
                      ("x\\u200D\\U0001F4BB", "U+200D"), ("\\U0001F469\\u200Dy", "U+200D"), ("\\U0001F469\\u200D", "U+200D"),
                      ("\\u200D\\U0001F4BB", "U+200D"), ("\\U0001F469\\u200D\\u200D\\U0001F4BB", "U+200D"),
                      ("x\\uFE0F\\u200D\\U0001F4BB", "U+200D"), ("\\U0001F469 \\u200D\\U0001F4BB", "U+200D")])
    func invisibleCharactersInRuleNamesAreRefused(name: String, said: String) throws {
        let result = try Self.load(ruleNamed: name)
        #expect(result.has(6, 11, "rule name '"), "\(result.lines)")
        #expect(result.has(6, 11, said), "\(result.lines)")
        #expect(!result.lines.joined().unicodeScalars.contains { $0.properties.generalCategory == .format }, "\(result.lines)")
    }

    /// Emoji ZWJ sequences are names: U+200D between two pictographs (Extended_Pictographic),
    /// the first of them maybe with a skin tone or U+FE0F (`👩🏽‍💻`, `🏳️‍🌈`, `❤️‍🔥`).
    @Test(arguments: ["\\U0001F469\\u200D\\U0001F4BB desk", "\\U0001F469\\U0001F3FD\\u200D\\U0001F4BB", "\\U0001F3F3\\uFE0F\\u200D\\U0001F308",
                      "\\U0001F468\\u200D\\U0001F469\\u200D\\U0001F467 family", "\\u2764\\uFE0F\\u200D\\U0001F525", "a \\U0001F9D1\\u200D\\U0001F373 b"])
    func emojiJoinedByZeroWidthJoinerAreRuleNames(name: String) throws {
        let result = try Self.load(ruleNamed: name)
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
    }

    // MARK: V5: variation selectors only on emoji

    /// Round 19's V5: a variation selector after a letter shows nothing (`x<U+FE0F>y` printed as
    /// `xy`). U+FE0E and U+FE0F are a name's only right after a pictograph (`❤️`) or in a keycap
    /// (`#️⃣`: `0-9 # *`, U+FE0F, U+20E3); every other variation selector (U+FE00-U+FE0D, the
    /// ideographic U+E0100-U+E01EF, the Mongolian U+180B-U+180D, U+180F) anywhere, and U+FE0E/
    /// U+FE0F anywhere else (after a letter, a space, a skin tone, another selector), is refused.
    @Test(arguments: [("x\\uFE0Fy", "U+FE0F"), ("x\\uFE0Ey", "U+FE0E"), ("\\uFE0Fxy", "U+FE0F"), ("xy\\uFE0F", "U+FE0F"),
                      ("x\\uFE00y", "U+FE00"), ("\\u845B\\U000E0100", "U+E0100"), ("x\\U000E01EFy", "U+E01EF"), ("\\u1820\\u180B", "U+180B"),
                      ("\\u1820\\u180Fx", "U+180F"), ("\\u2764\\uFE0F\\uFE0F love", "U+FE0F"), ("\\U0001F600\\uFE00", "U+FE00"),
                      ("\\U0001F469\\U0001F3FD\\uFE0F", "U+FE0F"), ("1\\uFE0F", "U+FE0F"), ("#\\uFE0Fx", "U+FE0F"), ("#\\uFE0E\\u20E3", "U+FE0E"),
                      ("x\\uFE0F\\u20E3", "U+FE0F"), ("\\u2764 \\uFE0F", "U+FE0F"), ("\\U0001F469\\U0001F3FD\\uFE0F\\u200D\\U0001F4BB", "U+FE0F")])
    func variationSelectorsOnNoEmojiAreRefusedInRuleNames(name: String, said: String) throws {
        let result = try Self.load(ruleNamed: name)
        #expect(result.has(6, 11, "rule name '"), "\(result.lines)")
        #expect(result.has(6, 11, "it holds the variation selector \(said)"), "\(result.lines)")
        // The refused selector is written as an escape, so the message does not show `xy` (no
        // closing brace here: before U+20E3 it is one Character with it).
        #expect(result.has(6, 11, "\\u{" + said.dropFirst(2)), "\(result.lines)")
    }

    /// What stays: U+FE0F/U+FE0E right after a pictograph, in ZWJ sequences (`🏳️‍⚧️`, `🕵️‍♀️`) and
    /// keycaps (`#️⃣`, `1️⃣0️⃣`); messages show those as they are, a refused one as an escape.
    @Test func variationSelectorsOnEmojiAreRuleNames() throws {
        for name in ["\u{2764}\u{FE0F} love", "\u{2764}\u{FE0E}", "\u{00A9}\u{FE0F}", "#\u{FE0F}\u{20E3} tag", "*\u{FE0F}\u{20E3}",
                     "1\u{FE0F}\u{20E3}0\u{FE0F}\u{20E3}", "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}", "\u{1F3F3}\u{FE0F}\u{200D}\u{26A7}\u{FE0F}",
                     "\u{1F575}\u{FE0F}\u{200D}\u{2640}\u{FE0F}", "\u{1F469}\u{FE0F}\u{1F3FD}\u{200D}\u{1F4BB}", "a\u{20E3}"] {
            #expect(RuleName.problem(name) == nil, "\(name.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        let result = try Self.load(ruleNamed: "#\\uFE0F\\u20E3 \\u2764\\uFE0F")
        #expect(!result.diagnostics.hasErrors, "\(result.lines)")
        #expect(RuleName.shown("\u{2764}\u{FE0F} love") == "\u{2764}\u{FE0F} love")
        #expect(RuleName.shown("x\u{FE0F}y\u{E0100}") == "x\\u{FE0F}y\\u{E0100}")
    }

    /// The schema's table of pictographs U+200D may join is exactly the scalars Swift's own
    /// Unicode data joins into one Character that way (grapheme rule GB11: a pictograph, U+200D,
    /// a pictograph), scalar by scalar; and RuleName's rule is that table.
    @Test func theSchemasRuleNamePictographTableIsSwifts() {
        var differing: [String] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            var joined = String(), afterLetter = String("a\u{200D}")
            joined.unicodeScalars.append(contentsOf: [scalar, "\u{200D}", scalar])
            afterLetter.unicodeScalars.append(scalar)
            // One Character only by GB11 (not because the scalar extends whatever precedes it).
            let swifts = joined.count == 1 && afterLetter.count == 2
            let inTable = ManifestSchema.ruleNamePictographs.contains { $0.contains(value) }
            if inTable != swifts || RuleName.isPictograph(scalar) != swifts { differing.append("U+" + String(value, radix: 16, uppercase: true)) }
        }
        #expect(differing.isEmpty, "\(differing.count): \(differing.prefix(20))")
    }

    /// Attack 18's L1b: characters that show nothing but are not format characters (the
    /// combining grapheme joiner U+034F, Hangul fillers U+115F, U+3164, U+FFA0, the blank Braille
    /// pattern U+2800) passed; they are refused by name. A variation selector stays allowed
    /// where it presents an emoji, U+FE0F after one (round 19's V5 refuses it anywhere else:
    /// `variationSelectorsOnNoEmojiAreRefusedInRuleNames`).
    @Test func invisibleFillersAreRefusedInRuleNames() {
        for scalar in ["\u{034F}", "\u{115F}", "\u{1160}", "\u{17B4}", "\u{3164}", "\u{FFA0}", "\u{2800}", "\u{E0000}", "\u{E0FFF}"] as [Unicode.Scalar] {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            let problem = RuleName.problem("a" + String(Character(scalar)) + "b")
            #expect(problem == "it holds the invisible character \(code)", "\(code): \(problem ?? "accepted")")
            #expect(RuleName.problem(String(Character(scalar))) != nil, "\(code) alone")
        }
        for name in ["\u{2764}\u{FE0F} love", "\u{1F469}\u{1F3FD}\u{200D}\u{1F4BB} desk", "caf\u{00E9}", "ᄀ한"] {
            #expect(RuleName.problem(name) == nil, "\(name.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    /// The schema's table of refused characters is exactly what `RuleName` refuses, scalar by
    /// scalar (a newer Unicode in Swift moves a character into Cf: this names it).
    @Test func theSchemasRuleNameTableIsTheLoadersRule() {
        var differing: [String] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let inTable = ManifestSchema.ruleNameForbidden.contains { $0.contains(value) }
            if inTable != RuleName.isForbidden(scalar) { differing.append("U+" + String(value, radix: 16, uppercase: true)) }
        }
        #expect(differing.isEmpty, "\(differing.prefix(20))")
    }
}
