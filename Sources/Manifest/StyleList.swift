import Foundation
import ProcessLanguage
import Confinement

/// A style written as a YAML list of actions with plain values, compiled to the OSS string:
///
/// ```yaml
/// hero:
///   - resize: {w: 1600}
///   - watermark: {text: "© 2026 Lake Studio", size: 24, g: se}
///   - format: webp
/// ```
///
/// becomes `image/resize,w_1600/watermark,text_wqkgMjAyNiBMYWtlIFN0dWRpbw,size_24,g_se/format,webp`:
/// a mapping gives `k_v` items in the order written, a scalar gives `action,value` (but
/// `- quality: 80` gives the absolute `quality,Q_80`), a bare name
/// the action alone. The values OSS wants base64url (`text`, `type`, `image` of `watermark`)
/// are written plain and encoded here. The result is parsed like any style, so both forms of
/// one recipe have the same canonical string (and fingerprint).
struct StyleList {
    /// The compiled text and, per action, where it and its parameters were written.
    struct Compiled {
        var text: String
        var actions: [(location: SourceLocation, parameters: [String: SourceLocation])]
    }

    /// Parameters written plain in the list form that the OSS string carries base64url-encoded.
    static let encoded: [String: Set<String>] = ["watermark": ["text", "type", "image"]]

    /// Longest list accepted (the OSS string allows no more actions than this either way).
    static let maxActions = 64

    static func compile(_ node: YAMLNode, style: String, into diagnostics: inout Diagnostics) -> Compiled? {
        guard case .sequence(let items) = node.kind else { return nil }
        let context = "style '\(style)'"
        guard !items.isEmpty else {
            diagnostics.error(node.location, "\(context) is an empty list; list actions such as '- resize: {w: 400}'")
            return nil
        }
        guard items.count <= maxActions else {
            diagnostics.error(node.location, "\(context) lists \(items.count) actions; at most \(maxActions) are allowed")
            return nil
        }
        var segments: [String] = []
        var actions: [(location: SourceLocation, parameters: [String: SourceLocation])] = []
        var ok = true
        for item in items {
            switch item.kind {
            case .scalar(let name, _):
                // `- auto-orient` or `- info`: an action without parameters.
                guard let name = plainWord(name, at: item, what: "an action name", context: context, into: &diagnostics) else { ok = false; continue }
                segments.append(name)
                actions.append((item.location, [:]))
            case .sequence:
                diagnostics.error(item.location, "each item of \(context) is one action, e.g. '- resize: {w: 400}', got a list")
                ok = false
            case .mapping(let pairs):
                guard pairs.count == 1, let keyNode = pairs.first?.key, let value = pairs.first?.value, let rawName = keyNode.scalar else {
                    diagnostics.error(item.location, "each item of \(context) names one action, e.g. '- resize: {w: 400}'; got \(pairs.count) keys",
                                      hint: "write each action as its own '- ' item")
                    ok = false; continue
                }
                guard let name = plainWord(rawName, at: keyNode, what: "an action name", context: context, into: &diagnostics) else { ok = false; continue }
                var parameters: [String: SourceLocation] = [:]
                var items = [name]
                switch value.kind {
                case .scalar(let text, _) where value.isNull:
                    _ = text
                case .scalar(let text, _):
                    // `- format: webp`, `- rotate: 90`: the action's one value.
                    guard let word = plainWord(yamlValue(text), at: value, what: "the value of '\(name)'", context: context, into: &diagnostics) else { ok = false; continue }
                    // `- quality: 80` means 80, the absolute `Q_` (attack 36a's M9): OSS's bare
                    // `quality,80` is the relative `q_` (a q60 JPEG came out at q48). `{q: 80}` says so.
                    items.append(name == "quality" ? "Q_" + word : word)
                case .sequence:
                    diagnostics.error(value.location, "'\(name)' in \(context) takes a value or a mapping of parameters, e.g. {w: 400}, not a list")
                    ok = false; continue
                case .mapping(let parameterPairs):
                    var seen: Set<String> = []
                    for (parameterKey, parameterValue) in parameterPairs {
                        guard let key = parameterKey.scalar, !key.isEmpty,
                              key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                            diagnostics.error(parameterKey.location, "parameter names of '\(name)' in \(context) are letters and digits, e.g. w, h, m")
                            ok = false; continue
                        }
                        guard seen.insert(key).inserted else {
                            diagnostics.error(parameterKey.location, "parameter '\(key)' of '\(name)' is written twice in \(context)")
                            ok = false; continue
                        }
                        guard case .scalar(let raw, _) = parameterValue.kind, !parameterValue.isNull else {
                            diagnostics.error(parameterValue.location, "parameter '\(key)' of '\(name)' in \(context) needs a plain value, got \(parameterValue.kindName)")
                            ok = false; continue
                        }
                        parameters[key] = parameterValue.location
                        if encoded[name]?.contains(key) == true {
                            // Written plain: an empty one is empty text, not bad base64url (attack 15's L7).
                            guard !raw.isEmpty else {
                                diagnostics.error(parameterValue.location, "parameter '\(key)' of '\(name)' in \(context) is empty; write it as plain text, e.g. \(key): \(key == "text" ? "\"© 2026 Lake Studio\"" : key == "type" ? "\"DejaVu Sans\"" : "logo.png")")
                                ok = false; continue
                            }
                            items.append(key + "_" + Base64URL.encode(raw))
                        } else {
                            guard let word = plainWord(yamlValue(raw), at: parameterValue, what: "parameter '\(key)' of '\(name)'",
                                                       context: context, into: &diagnostics) else { ok = false; continue }
                            items.append(key + "_" + word)
                        }
                    }
                }
                segments.append(items.joined(separator: ","))
                actions.append((keyNode.location, parameters))
            }
        }
        guard ok else { return nil }
        return Compiled(text: "image/" + segments.joined(separator: "/"), actions: actions)
    }

    /// YAML booleans as the language's 0/1 (`fill: true`).
    static func yamlValue(_ text: String) -> String {
        switch text {
        case "true", "True", "TRUE": return "1"
        case "false", "False", "FALSE": return "0"
        default: return text
        }
    }

    /// A value that is not encoded must not contain the string's separators.
    static func plainWord(_ text: String, at node: YAMLNode, what: String, context: String, into diagnostics: inout Diagnostics) -> String? {
        if text.isEmpty || text.contains(where: { $0 == "/" || $0 == "," || $0 == "\n" }) {
            diagnostics.error(node.location, "\(what) in \(context) cannot be empty or contain '/' or ','; got '\(text)'")
            return nil
        }
        return text
    }
}

extension LoadState {
    /// Parses a compiled list style; a parse error is reported at the action (or parameter value)
    /// it is about, never at an offset into text the author did not write.
    mutating func listProcess(_ compiled: StyleList.Compiled, style: String) -> Pipeline? {
        let context = "style '\(style)'"
        func location(action: String?, parameter: String?, offset: Int?) -> SourceLocation? {
            var index: Int?
            if let offset {
                let prefix = compiled.text.prefix(offset).dropFirst("image/".count)
                index = prefix.filter { $0 == "/" }.count
            } else if let action {
                index = compiled.text.dropFirst("image/".count).split(separator: "/").firstIndex { $0.split(separator: ",").first.map(String.init) == action }
            }
            guard let index, compiled.actions.indices.contains(index) else { return nil }
            let entry = compiled.actions[index]
            if let parameter, let at = entry.parameters[parameter] { return at }
            return entry.location
        }
        do {
            let pipeline = try Pipeline.parse(compiled.text)
            for warning in pipeline.warnings {
                let at = location(action: warning.action, parameter: warning.parameter, offset: nil) ?? compiled.actions.first?.location
                diagnostics.warning(at ?? SourceLocation(file: "", line: 1, column: 1), "\(warning.message) in \(context)")
            }
            return pipeline
        } catch let error as ProcessError {
            let at = location(action: error.action, parameter: error.parameter, offset: error.offset) ?? compiled.actions.first?.location
            var message = error.message + " in \(context)"
            if let ec = error.ec { message += " [\(error.code.rawValue) EC \(ec)]" }
            diagnostics.error(at ?? SourceLocation(file: "", line: 1, column: 1), message, hint: error.hint)
        } catch {
            diagnostics.error(compiled.actions.first?.location ?? SourceLocation(file: "", line: 1, column: 1), "\(error) in \(context)")
        }
        return nil
    }

    /// Watermark fonts beyond the seven OSS names are fontconfig families: each must be installed.
    mutating func checkFonts(_ pipeline: Pipeline, at node: YAMLNode, context: String) {
        guard let fontInstalled else { return }
        for case .font(let name, _, _) in pipeline.dependencies where !Watermark.fonts.contains(name) && !fontInstalled(name) {
            // Installed, but a strong alias draws another: `fc-list` lists it, so "not installed" misleads (attack 51c's 5).
            if let drawn = fontSubstitute?(name) {
                diagnostics.error(node.location, "font family '\(name)' in \(context) is installed, but the fontconfig configuration substitutes '\(drawn)' for it",
                                  hint: "Derive draws only the family named: remove the strong alias or rule that replaces it from the fonts.conf, or name '\(drawn)'; fc-match '\(name)' family shows the family drawn")
                continue
            }
            diagnostics.error(node.location, "font family '\(name)' in \(context) is not installed",
                              hint: "list the installed families with: fc-list : family")
        }
    }

    /// Watermark texts with characters neither their font nor any fallback can draw (the build
    /// refuses them when it renders), each at `location(action index)`; only when `textDrawable`
    /// is set (`derive validate`). `reported`: texts said already, not said again.
    mutating func checkTexts(_ pipeline: Pipeline, context: String, reported: inout Set<String>, location: (Int) -> SourceLocation) {
        guard let textDrawable else { return }
        for (index, action) in pipeline.actions.enumerated() {
            guard case .watermark(let mark) = action, let text = mark.text,
                  reported.insert("text\u{0}" + mark.font + "\u{0}" + text).inserted,
                  let problem = textDrawable(text, mark.font) else { continue }
            diagnostics.error(location(index), "\(problem) in \(context)")
        }
    }

    mutating func checkTexts(_ pipeline: Pipeline, context: String, location: (Int) -> SourceLocation) {
        var reported: Set<String> = []
        checkTexts(pipeline, context: context, reported: &reported, location: location)
    }

    /// `website: {index: index.html, error: 404.html}`.
    mutating func website(_ node: YAMLNode, bucket: String) -> Website? {
        guard let fields = mapping(node, "'website' of bucket '\(bucket)'") else { return nil }
        checkKeys(fields, allowed: ManifestSchema.website.names, context: "in 'website' of bucket '\(bucket)'")
        guard let indexNode = fields.first(where: { $0.key == "index" })?.value else {
            diagnostics.error(node.location, "'website' of bucket '\(bucket)' needs 'index' (a file name such as index.html)")
            return nil
        }
        // Both values are checked, each with its own reason, before either is refused (attack
        // round 25: a bad index hid a bad error page, and control characters reached the terminal).
        var valid = true
        let index = string(indexNode, "website.index")
        if let index {
            let problem: String? = index.contains("/") ? "contains '/'" : Self.keyProblem(index)
            if let problem {
                diagnostics.error(indexNode.location, "website.index '\(Self.shownEscaped(index))' must be a file name without '/', e.g. index.html: \(problem)")
                valid = false
            }
        } else {
            valid = false
        }
        var error: String?
        if let errorNode = fields.first(where: { $0.key == "error" })?.value {
            if let text = string(errorNode, "website.error") {
                if let problem = Self.keyProblem(text) {
                    diagnostics.error(errorNode.location, "website.error '\(Self.shownEscaped(text))' must be an object key in bucket '\(bucket)', e.g. 404.html: \(problem)")
                    valid = false
                }
                error = text
            } else {
                valid = false
            }
        }
        guard valid, let index else { return nil }
        return Website(index: index, error: error)
    }

    /// Why `text` is no object key (nil when it is one): ObjectKey's own words.
    static func keyProblem(_ text: String) -> String? {
        do { _ = try ObjectKey(text) } catch { return error.description }
        return nil
    }

    /// `text` with control characters written as `\u{1B}`, so a message never sends them to
    /// the terminal (an ESC sequence or backspaces could make a bad value look like a good one).
    static func shownEscaped(_ text: String) -> String {
        text.unicodeScalars.map { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? "\\u{\(String($0.value, radix: 16, uppercase: true))}" : String($0) }.joined()
    }
}
