import Foundation
import Testing
@testable import Manifest

/// Attack 46b's N2: the `lock` and `state` a manifest that does not parse declares, in every
/// spelling a manifest may use, top-level keys only.
@Suite(.ownThreads) struct DeclaredControlFilesTests {
    func declared(_ text: String) -> [String?] {
        let found = ControlFiles.declaredControlFiles(Data(text.utf8))
        return [found.lock, found.state]
    }

    @Test func everySpellingIsRead() {
        // Block lines, plain, quoted, with a comment; a key quoted.
        #expect(declared("version: 1\nlock: meta/g.lock # moved\nstate: '../.g s'\nbuckets: [x\n") == ["meta/g.lock", "../.g s"])
        #expect(declared("\"version\": 1\n\"lock\": \"meta/g.lock\"\n'state': ../st\nbuckets: [x\n") == ["meta/g.lock", "../st"])
        // A flow mapping and JSON, cut short, over lines too.
        #expect(declared("{version: 1, lock: meta/g.lock, state: ../st, buckets: {src: {path: s") == ["meta/g.lock", "../st"])
        #expect(declared("{\"version\": 1, \"lock\": \"meta/g.lock\", \"state\": \"../st\", \"buckets\": {\"src\": {\"pa") == ["meta/g.lock", "../st"])
        #expect(declared("# a comment\n{\n  \"state\": \"a\\\"b\",\n  \"lock\": \"x.lock\"\n") == ["x.lock", "a\"b"])
    }

    /// Attack 47b's F2-F4: a flow collection half-typed above the moved `lock:` and `state:`
    /// (`from: [`, a `{` never closed) hid them; a block key at a line's start is top-level.
    @Test func aBracketLeftOpenAboveDoesNotHideThem() {
        #expect(declared("version: 1\nderivatives:\n  - {name: t, from: [\nlock: meta/g.lock\nstate: meta/st\n") == ["meta/g.lock", "meta/st"])
        #expect(declared("'version': 1\nbuckets: {src: {path: s\n'lock': 'meta/g.lock'\n") == ["meta/g.lock", nil])
    }

    @Test func onlyTopLevelScalarsCount() {
        // A key inside a bucket's mapping, an indented line, a key inside a string, an alias or a
        // nested value: none is the manifest's lock or state.
        #expect(declared("{version: 1, buckets: {out: {path: o, lock: n.lock}}, derivatives: [{state: s}]") == [nil, nil])
        #expect(declared("version: 1\nbuckets:\n  lock: n.lock\n  out: {state: s}\n") == [nil, nil])
        #expect(declared("version: 1\nnote: \"lock: n.lock\"\nlock: *anchor\nstate: {a: b}\n") == [nil, nil])
        #expect(declared("{\"version\": 1, \"x\": \"a, lock: n.lock\", \"lockx\": \"y\"}") == [nil, nil])
        #expect(declared("version: 1\nlock: a.lock\nlock: b.lock\n") == ["b.lock", nil])
    }
}
