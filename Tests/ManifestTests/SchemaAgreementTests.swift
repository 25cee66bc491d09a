import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 39b's L2: `derive schema` and `derive validate` disagreed both ways (`name: 2024`
/// refused by the schema, `website: {index: ..}` or a matrix variable `hash` accepted by it).
/// Every case of Tests/Interop/schema-cases.yaml is judged by the manifest loader and by the
/// JSON Schema, evaluated here in Swift (the keywords `derive schema` uses, with ICU regular
/// expressions); both must give the case's verdict. `Tests/Interop/schema_check.py` runs the same
/// cases through `derive validate` and Python's jsonschema, so this evaluator is held to the
/// reference implementation in CI.
@Suite(.ownThreads) struct SchemaAgreementTests {
    static let casesFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop/schema-cases.yaml")

    struct Case {
        var what: String
        var valid: Bool
        var text: String
    }

    static func cases() throws -> [Case] {
        let data = try Data(contentsOf: casesFile)
        let root = try #require(try YAMLLoader.load(data, file: "schema-cases.yaml"))
        func field(_ node: YAMLNode, _ key: String) -> YAMLNode? {
            guard case .mapping(let entries) = node.kind else { return nil }
            return entries.first { $0.key.scalar == key }?.value
        }
        let base = try #require(field(root, "base")?.scalar)
        guard case .sequence(let items) = try #require(field(root, "cases")).kind else { throw CocoaError(.fileReadCorruptFile) }
        return try items.map { item in
            let what = try #require(field(item, "what")?.scalar)
            let valid = try #require(field(item, "valid")?.scalar)
            let text = field(item, "manifest")?.scalar ?? base
                .replacingOccurrences(of: "@BUCKET@", with: field(item, "bucket")?.scalar ?? "")
                .replacingOccurrences(of: "@RULE@", with: field(item, "rule")?.scalar ?? "")
                .replacingOccurrences(of: "@TOP@", with: field(item, "top")?.scalar ?? "")
                .replacingOccurrences(of: "@FROM@", with: field(item, "from")?.scalar ?? "src/*.jpg")
                .replacingOccurrences(of: "@TO@", with: field(item, "to")?.scalar ?? "\"out/{name}.jpg\"")
            return Case(what: what, valid: valid == "true", text: text)
        }
    }

    @Test func theLoaderAndTheSchemaGiveEachCaseItsVerdict() throws {
        let cases = try Self.cases()
        // Both verdicts, for more than a handful of fields: a table of one kind proves nothing.
        #expect(cases.count >= 80 && cases.contains { $0.valid } && cases.contains { !$0.valid })
        let schema = try JSONSerialization.jsonObject(with: ManifestSchema.json())
        let evaluator = SchemaEvaluator()
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        for folder in ["src", "2024", "out"] {
            try FileManager.default.createDirectory(at: workspace.folder.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try workspace.write("src/a.jpg", "not read")
        try workspace.write("2024/a.jpg", "not read")
        var disagreements: [String] = []
        for item in cases {
            let result = try workspace.load(yaml: item.text, objects: ["src": ["a.jpg"], "2024": ["a.jpg"]])
            let loader = !result.diagnostics.hasErrors
            let node = try #require(try YAMLLoader.load(Data(item.text.utf8), file: "derive.yaml"), "\(item.what)")
            let checked = evaluator.valid(schema, SchemaEvaluator.value(node))
            if loader != item.valid || checked != item.valid {
                let expected = item.valid ? "valid" : "refused"
                disagreements.append("\(item.what): expected \(expected); the loader says \(loader ? "valid" : "refused \(result.lines)"), the schema \(checked ? "valid" : "refused")")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        #expect(evaluator.problems.isEmpty, "the schema uses what this evaluator does not read: \(evaluator.problems.sorted())")
    }

    /// The evaluator itself: the keywords it reads change its verdicts (a schema it cannot read
    /// would otherwise pass everything).
    @Test func theEvaluatorRefusesWhatJSONSchemaRefuses() throws {
        let evaluator = SchemaEvaluator()
        let schema: [String: Any] = [
            "type": "object", "required": ["a"], "additionalProperties": false,
            "properties": ["a": ["anyOf": [["type": "string", "pattern": "^x(?![\\s\\S])"], ["type": ["integer"]]]] as [String: Any]],
        ]
        func judge(_ yaml: String) throws -> Bool {
            evaluator.valid(schema, SchemaEvaluator.value(try #require(try YAMLLoader.load(Data(yaml.utf8), file: "t.yaml"))))
        }
        #expect(try judge("a: x"))
        #expect(try judge("a: 5"))
        #expect(try !judge("a: 1.5"))
        #expect(try !judge("a: \"x\\n\""))
        #expect(try !judge("a: \"5\""))
        #expect(try !judge("a: true"))
        #expect(try !judge("b: x"))
        #expect(try !judge("{a: x, b: 1}"))
        #expect(evaluator.problems.isEmpty)
    }
}

/// A JSON value as a YAML 1.2 (core schema) reader sees a manifest: the YAML language server's
/// reading, where `2024` is an integer, `true` a boolean and `yes` a string.
indirect enum SchemaInstance {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([SchemaInstance])
    case object([(String, SchemaInstance)])
}

/// The JSON Schema keywords `ManifestSchema.json()` writes, evaluated as draft 2020-12 says.
/// Any other keyword is a problem (reported), never silently passed.
final class SchemaEvaluator {
    private(set) var problems: Set<String> = []
    private var expressions: [String: NSRegularExpression] = [:]
    static let annotations: Set<String> = ["$schema", "$id", "title", "description"]

    static func value(_ node: YAMLNode) -> SchemaInstance {
        switch node.kind {
        case .scalar(let text, let plain):
            guard plain else { return .string(text) }
            if node.isNull { return .null }
            if ["true", "True", "TRUE"].contains(text) { return .bool(true) }
            if ["false", "False", "FALSE"].contains(text) { return .bool(false) }
            if text.wholeMatch(of: #/[-+]?[0-9]+/#) != nil, let number = Double(text) { return .number(number) }
            if text.hasPrefix("0o"), let number = Int(text.dropFirst(2), radix: 8) { return .number(Double(number)) }
            if text.hasPrefix("0x"), let number = Int(text.dropFirst(2), radix: 16) { return .number(Double(number)) }
            if text.wholeMatch(of: #/[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?/#) != nil, let number = Double(text) { return .number(number) }
            if text.wholeMatch(of: #/[-+]?\.(inf|Inf|INF)/#) != nil { return .number(text.hasPrefix("-") ? -.infinity : .infinity) }
            if text.wholeMatch(of: #/\.(nan|NaN|NAN)/#) != nil { return .number(.nan) }
            return .string(text)
        case .sequence(let items):
            return .array(items.map(value))
        case .mapping(let entries):
            return .object(entries.map { ($0.key.scalar ?? "", value($0.value)) })
        }
    }

    func valid(_ schema: Any, _ value: SchemaInstance) -> Bool {
        guard let schema = schema as? [String: Any] else { return (schema as? Bool) ?? false }
        var valid = true
        for (keyword, argument) in schema where !Self.annotations.contains(keyword) {
            if !check(keyword, argument, schema, value) { valid = false }
        }
        return valid
    }

    private func check(_ keyword: String, _ argument: Any, _ schema: [String: Any], _ value: SchemaInstance) -> Bool {
        switch keyword {
        case "type":
            let types = (argument as? [String]) ?? [(argument as? String) ?? "?"]
            return types.contains { has(type: $0, value) }
        case "enum":
            return ((argument as? [Any]) ?? []).contains { equal($0, value) }
        case "const":
            return equal(argument, value)
        case "pattern":
            guard case .string(let text) = value else { return true }
            return matches(argument as? String ?? "", text)
        case "minimum", "maximum":
            guard case .number(let number) = value, let bound = Self.number(argument) else { return true }
            return keyword == "minimum" ? number >= bound : number <= bound
        case "anyOf":
            return ((argument as? [Any]) ?? []).contains { valid($0, value) }
        case "oneOf":
            return ((argument as? [Any]) ?? []).filter { valid($0, value) }.count == 1
        case "not":
            return !valid(argument, value)
        case "if":
            return valid(argument, value) ? schema["then"].map { valid($0, value) } ?? true : schema["else"].map { valid($0, value) } ?? true
        case "then", "else":
            return true   // read with "if"
        case "required":
            guard case .object(let entries) = value else { return true }
            return ((argument as? [String]) ?? []).allSatisfy { name in entries.contains { $0.0 == name } }
        case "properties", "patternProperties", "additionalProperties":
            guard case .object(let entries) = value else { return true }
            guard keyword == "additionalProperties" else {
                let table = (argument as? [String: Any]) ?? [:]
                return entries.allSatisfy { name, item in
                    table.allSatisfy { key, sub in (keyword == "properties" ? key == name : matches(key, name)) ? valid(sub, item) : true }
                }
            }
            let named = (schema["properties"] as? [String: Any]) ?? [:]
            let patterns = ((schema["patternProperties"] as? [String: Any]) ?? [:]).keys
            return entries.allSatisfy { name, item in
                named[name] != nil || patterns.contains { matches($0, name) } || valid(argument, item)
            }
        case "propertyNames":
            guard case .object(let entries) = value else { return true }
            return entries.allSatisfy { valid(argument, .string($0.0)) }
        case "minProperties", "maxProperties":
            guard case .object(let entries) = value, let bound = argument as? Int else { return true }
            return keyword == "minProperties" ? entries.count >= bound : entries.count <= bound
        case "items":
            guard case .array(let items) = value else { return true }
            return items.allSatisfy { valid(argument, $0) }
        case "minItems":
            guard case .array(let items) = value, let bound = argument as? Int else { return true }
            return items.count >= bound
        default:
            problems.insert(keyword)
            return false
        }
    }

    private func has(type: String, _ value: SchemaInstance) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .number(let number)): return number.isFinite && number.rounded() == number
        default: return false
        }
    }

    /// JSON equality: a string equals a string, a number a number (1.0 is 1), a boolean a boolean.
    private func equal(_ constant: Any, _ value: SchemaInstance) -> Bool {
        switch value {
        case .string(let text): return (constant as? String) == text
        case .number(let number): return type(of: constant) != Bool.self && Self.number(constant) == number
        case .bool(let flag): return type(of: constant) == Bool.self && (constant as? Bool) == flag
        default: return false
        }
    }

    static func number(_ value: Any) -> Double? {
        if value is String || type(of: value) == Bool.self { return nil }
        if let integer = value as? Int { return Double(integer) }
        if let double = value as? Double { return double }
        return (value as? NSNumber)?.doubleValue
    }

    private func matches(_ pattern: String, _ text: String) -> Bool {
        let expression: NSRegularExpression
        if let known = expressions[pattern] {
            expression = known
        } else {
            guard let compiled = try? NSRegularExpression(pattern: pattern) else {
                problems.insert("pattern \(pattern)")
                return false
            }
            expressions[pattern] = compiled
            expression = compiled
        }
        // JSON Schema patterns are not anchored: a match anywhere counts.
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
