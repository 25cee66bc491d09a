import CYAML
import Foundation

/// A YAML node that remembers where it was written. Aliases are expanded (with a budget) and
/// merge keys (`<<`) applied, so consumers see plain trees.
public struct YAMLNode: Sendable {
    public enum Kind: Sendable {
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    public var kind: Kind
    public var location: SourceLocation

    public var scalar: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    /// A plain (unquoted) scalar: `null`, `~` and empty plain scalars are null in YAML.
    public var isNull: Bool {
        if case .scalar(let text, let plain) = kind { return plain && (text.isEmpty || text == "null" || text == "~" || text == "Null" || text == "NULL") }
        return false
    }

    public var kindName: String {
        switch kind {
        case .scalar: return isNull ? "null" : "a scalar"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

/// What a hostile document may cost before loading stops.
public struct YAMLBudget: Sendable {
    public var maxBytes = 4 * 1024 * 1024
    public var maxDepth = 64
    /// Nodes after alias expansion: stops "billion laughs" documents.
    public var maxNodes = 200_000
    public var maxScalarLength = 64 * 1024

    public init() {}
}

public struct YAMLError: Error, Sendable {
    public var location: SourceLocation
    public var message: String
}

/// Loads one YAML document with the system libyaml.
public enum YAMLLoader {
    public static func load(_ data: Data, file: String, budget: YAMLBudget = YAMLBudget()) throws -> YAMLNode? {
        guard data.count <= budget.maxBytes else {
            throw YAMLError(location: SourceLocation(file: file, line: 1, column: 1),
                            message: "the file is \(data.count) bytes; manifests may be at most \(budget.maxBytes) bytes")
        }
        try checkDepth(data, file: file, budget: budget)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(location: SourceLocation(file: file, line: 1, column: 1), message: "libyaml could not start")
        }
        defer { yaml_parser_delete(&parser) }
        var document = yaml_document_t()
        let loaded: Int32 = data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress ?? UnsafePointer<UInt8>(bitPattern: 1)!
            yaml_parser_set_input_string(&parser, base, raw.count)
            return yaml_parser_load(&parser, &document)
        }
        guard loaded == 1 else {
            let mark = parser.problem_mark
            var message = parser.problem.map { String(cString: $0) } ?? "malformed YAML"
            if let context = parser.context { message = String(cString: context) + ": " + message }
            if message.contains("invalid leading UTF-8") || message.contains("invalid trailing UTF-8") || message.contains("invalid Unicode") {
                message += " (manifests must be UTF-8 text)"
            }
            throw YAMLError(location: SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1),
                            message: "YAML syntax error: \(message)")
        }
        defer { yaml_document_delete(&document) }
        guard let root = yaml_document_get_root_node(&document) else { return nil }
        var converter = Converter(document: document, file: file, budget: budget)
        return try converter.convert(root, depth: 0)
    }

    /// What a document nested too deeply is told.
    static func tooDeep(_ budget: YAMLBudget) -> String {
        "nesting deeper than \(budget.maxDepth) levels (lists and mappings inside each other); no manifest needs that many: write the deep part flatter"
    }

    /// Counts the nesting of lists and mappings on libyaml's events, before any document is
    /// built, and stops at the first one past `maxDepth`, where it opens. libyaml builds a deeply
    /// nested flow document in time quadratic in its depth (attack round 24's M1: 160 KB took
    /// 19 s, 4 MB hours) before the converter below could refuse it; the events come one at a
    /// time, so this pass stops after the first `maxDepth + 1` openings. A syntax error is left
    /// to the load, which says it with its position.
    static func checkDepth(_ data: Data, file: String, budget: YAMLBudget) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        try data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress ?? UnsafePointer<UInt8>(bitPattern: 1)!
            yaml_parser_set_input_string(&parser, base, raw.count)
            var depth = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    depth += 1
                    guard depth <= budget.maxDepth else {
                        throw YAMLError(location: SourceLocation(file: file, line: Int(event.start_mark.line) + 1,
                                                                 column: Int(event.start_mark.column) + 1),
                                        message: tooDeep(budget))
                    }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    depth -= 1
                case YAML_DOCUMENT_END_EVENT, YAML_STREAM_END_EVENT:
                    return   // the load reads one document
                default:
                    break
                }
            }
        }
    }

    private struct Converter {
        var document: yaml_document_t
        let file: String
        let budget: YAMLBudget
        var nodes = 0

        func location(_ node: UnsafeMutablePointer<yaml_node_t>) -> SourceLocation {
            // Clamped: a mark past Int.max (seen once, loading a neighbour's manifest in a test
            // run) trapped the process; a location is only ever shown, never used to index.
            SourceLocation(file: file, line: Int(clamping: node.pointee.start_mark.line) &+ 1,
                           column: Int(clamping: node.pointee.start_mark.column) &+ 1)
        }

        mutating func node(at index: Int32) -> UnsafeMutablePointer<yaml_node_t>? {
            yaml_document_get_node(&document, index)
        }

        mutating func convert(_ node: UnsafeMutablePointer<yaml_node_t>, depth: Int) throws -> YAMLNode {
            let here = location(node)
            nodes += 1
            guard nodes <= budget.maxNodes else {
                throw YAMLError(location: here, message: "the document expands to more than \(budget.maxNodes) nodes (aliases repeating aliases?); refusing to load it")
            }
            guard depth <= budget.maxDepth else {
                // Past the events' check only through aliases, which it does not expand.
                throw YAMLError(location: here, message: YAMLLoader.tooDeep(budget))
            }
            switch node.pointee.type {
            case YAML_SCALAR_NODE:
                let scalar = node.pointee.data.scalar
                guard scalar.length <= budget.maxScalarLength else {
                    throw YAMLError(location: here, message: "a scalar of \(scalar.length) bytes; at most \(budget.maxScalarLength) are allowed")
                }
                let bytes = UnsafeBufferPointer(start: scalar.value, count: Int(scalar.length))
                let text = String(decoding: bytes, as: UTF8.self)
                return YAMLNode(kind: .scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE), location: here)
            case YAML_SEQUENCE_NODE:
                var items: [YAMLNode] = []
                var item = node.pointee.data.sequence.items.start
                while let current = item, current != node.pointee.data.sequence.items.top {
                    if let child = self.node(at: current.pointee) { items.append(try convert(child, depth: depth + 1)) }
                    item = current + 1
                }
                return YAMLNode(kind: .sequence(items), location: here)
            case YAML_MAPPING_NODE:
                var pairs: [(key: YAMLNode, value: YAMLNode)] = []
                var merged: [(key: YAMLNode, value: YAMLNode)] = []
                var pair = node.pointee.data.mapping.pairs.start
                while let current = pair, current != node.pointee.data.mapping.pairs.top {
                    defer { pair = current + 1 }
                    guard let keyNode = self.node(at: current.pointee.key),
                          let valueNode = self.node(at: current.pointee.value) else { continue }
                    let key = try convert(keyNode, depth: depth + 1)
                    let value = try convert(valueNode, depth: depth + 1)
                    if case .scalar("<<", true) = key.kind {
                        // Merge keys: a mapping or a list of mappings; earlier sources win, and
                        // keys written in this mapping win over all of them.
                        let sources: [YAMLNode]
                        switch value.kind {
                        case .mapping: sources = [value]
                        case .sequence(let list): sources = list
                        case .scalar: throw YAMLError(location: value.location, message: "'<<' (merge) needs a mapping or a list of mappings, e.g. '<<: *defaults'")
                        }
                        for source in sources {
                            guard case .mapping(let entries) = source.kind else {
                                throw YAMLError(location: source.location, message: "'<<' (merge) needs mappings, got \(source.kindName)")
                            }
                            for entry in entries where !merged.contains(where: { $0.key.scalar == entry.key.scalar }) {
                                merged.append(entry)
                            }
                        }
                        continue
                    }
                    pairs.append((key, value))
                }
                for entry in merged where !pairs.contains(where: { $0.key.scalar == entry.key.scalar }) {
                    pairs.append(entry)
                }
                return YAMLNode(kind: .mapping(pairs), location: here)
            default:
                return YAMLNode(kind: .scalar("", plain: true), location: here)
            }
        }
    }
}
